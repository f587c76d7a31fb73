package store

import (
	"bytes"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/internal/fsutil"
)

// Issue 12 point 2: a state directory another user controls is refused (exit 78), and no file popfetch
// writes there follows a symbolic link or is truncated.

// nobodyIDs returns the uid and gid of the user nobody; the test is skipped unless it runs as root
// (only root can create files owned by another user).
func nobodyIDs(t *testing.T) (int, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test creates files owned by another user (nobody)")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody:", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// victim writes a root-owned file with known content outside the state directory.
func victim(t *testing.T, name string) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	content := []byte("precious content of " + name + "\n")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, content
}

func checkVictim(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("victim %s changed: %q (%v), want %q", path, got, err, want)
	}
}

func TestStateDirOfAnotherUserRefused(t *testing.T) {
	uid, gid := nobodyIDs(t)
	base := t.TempDir()
	if err := os.Chmod(base, 0o777|os.ModeSticky); err != nil { // like /tmp
		t.Fatal(err)
	}
	dir := filepath.Join(base, "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	lockVictim, lockContent := victim(t, "lock-victim")
	newVictim, newContent := victim(t, "new-victim")
	if err := os.Symlink(lockVictim, filepath.Join(dir, "acct.lock")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(newVictim, filepath.Join(dir, "acct.state.new")); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"acct.lock", "acct.state.new"} {
		if err := os.Lchown(filepath.Join(dir, l), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	_, lerr := Lock(dir, "acct", false)
	_, serr := OpenState(dir, "acct")
	for _, err := range []error{lerr, serr} {
		var ue *fsutil.UnsafeError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), dir) ||
			!strings.Contains(err.Error(), "owned by uid "+strconv.Itoa(uid)) {
			t.Errorf("got %v, want an exit-78 error naming %s and its owner", err, dir)
		}
	}
	checkVictim(t, lockVictim, lockContent)
	checkVictim(t, newVictim, newContent)

	// Mine, but group-writable: refused too, naming the fix.
	mine := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(mine, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(mine, 0o770)
	os.Chown(mine, -1, gid) // a group of others (the user's private group would be harmless)
	if _, err := Lock(mine, "acct", false); err == nil || !strings.Contains(err.Error(), "chmod go-w "+mine) {
		t.Errorf("group-writable state directory: %v", err)
	}
	// Inside a directory of another user: refused (nobody could rename the state directory away).
	foreign := filepath.Join(t.TempDir(), "foreign")
	os.Mkdir(foreign, 0o755)
	os.Chown(foreign, uid, gid)
	if _, err := Lock(filepath.Join(foreign, "state"), "acct", false); err == nil || !strings.Contains(err.Error(), "is inside "+foreign) {
		t.Errorf("state directory inside another user's directory: %v", err)
	}
}

// TestStateFilesDoNotFollowSymlinks: in a state directory of our own, symbolic links where the lock,
// the journal and the compaction's temporary file go are not followed (defence in depth, for a user who
// once let another write there).
func TestStateFilesDoNotFollowSymlinks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lockVictim, lockContent := victim(t, "lock-victim")
	if err := os.Symlink(lockVictim, filepath.Join(dir, "acct.lock")); err != nil {
		t.Fatal(err)
	}
	l, err := Lock(dir, "acct", false)
	if err == nil {
		l.Unlock()
		t.Error("Lock followed a symbolic link")
	} else if !strings.Contains(err.Error(), "is a symbolic link") || exitCodeOf(err) != 78 {
		t.Errorf("Lock on a link: %v (exit %d), want exit 78 saying it is a link", err, exitCodeOf(err))
	}
	checkVictim(t, lockVictim, lockContent)

	stateVictim, stateContent := victim(t, "state-victim")
	if err := os.Symlink(stateVictim, filepath.Join(dir, "acct.state")); err != nil {
		t.Fatal(err)
	}
	if st, err := OpenState(dir, "acct"); err == nil {
		st.Close()
		t.Error("OpenState followed a symbolic link")
	} else if !strings.Contains(err.Error(), "is a symbolic link") || exitCodeOf(err) != 78 {
		t.Errorf("OpenState on a link: %v (exit %d), want exit 78 saying it is a link", err, exitCodeOf(err))
	}
	checkVictim(t, stateVictim, stateContent)

	// The compaction's ".new": a link planted there is replaced, its target untouched.
	newVictim, newContent := victim(t, "new-victim")
	if err := os.Symlink(newVictim, filepath.Join(dir, "other.state.new")); err != nil {
		t.Fatal(err)
	}
	st, err := OpenState(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Compact(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	checkVictim(t, newVictim, newContent)

	// A hard link to another file as the lock: refused, not written.
	hardVictim, hardContent := victim(t, "hard-victim")
	if err := os.Link(hardVictim, filepath.Join(dir, "hard.lock")); err != nil {
		t.Fatal(err)
	}
	if l, err := Lock(dir, "hard", false); err == nil {
		l.Unlock()
		t.Error("Lock wrote through a hard link")
	}
	checkVictim(t, hardVictim, hardContent)
}

// exitCodeOf is 78 for an *fsutil.UnsafeError (the CLI's exit code for it), -1 for anything else.
// exitCodeOf is the exit code the CLI gives err, from what it means (the table is
// cmd/popfetch/classify.go; TestExitCodeOfStoreErrors there checks the same mapping).
func exitCodeOf(err error) int {
	switch {
	case errors.As(err, new(*fsutil.UnsafeError)):
		return 78
	case errors.Is(err, ErrConfig):
		return 78
	case errors.Is(err, ErrTLS):
		return 69
	case errors.Is(err, ErrAuth):
		return 77
	case errors.Is(err, ErrTemporary):
		return 75
	case errors.Is(err, ErrRefused), errors.Is(err, ErrLocalIO):
		return 74
	}
	return -1
}

// TestLockNeverTruncates: taking a lock writes the pid over the start of the file, never truncating
// it; a later holder's shorter pid still reads back.
func TestLockNeverTruncates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "acct.lock")
	if err := os.WriteFile(path, []byte("1234567890123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Lock(dir, "acct", false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	fi, _ := os.Stat(path)
	if fi.Size() != 14 {
		t.Errorf("lock file is %d bytes, want 14 (not truncated)", fi.Size())
	}
	if got := readPID(path); got != os.Getpid() {
		t.Errorf("readPID = %d, want %d", got, os.Getpid())
	}
}
