//go:build linux

package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMboxFcntlExcludesOtherProcess checks the fcntl lock against a classic POSIX lock
// (lockf/F_SETLK, what mail readers take) from another process, in both directions.
func TestMboxFcntlExcludesOtherProcess(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	path := filepath.Join(t.TempDir(), "inbox")
	tryLock := func() string {
		out, err := exec.Command(py, "-c", `
import fcntl, sys
f = open(sys.argv[1], "r+")
try:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("locked")
except OSError:
    print("busy")
`, path).CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	m := openMbox(t, path, MboxOptions{})
	if got := tryLock(); got != "busy" {
		t.Errorf("another process while the mbox is open: %s", got)
	}
	m.Close()
	if got := tryLock(); got != "locked" {
		t.Errorf("another process after Close: %s", got)
	}

	// And the other way round: a classic lock held by this process's own fd still excludes an OFD
	// lock taken through another descriptor.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMbox(path, MboxOptions{LockTimeout: -1}); err == nil {
		t.Fatal("NewMbox ignored an fcntl lock")
	}
}

// TestMboxENOSPCTruncates appends to an mbox on a tiny tmpfs until the disk is full: the append fails
// with an IOError and the mbox is truncated back. Needs CAP_SYS_ADMIN (mount); skipped otherwise.
func TestMboxENOSPCTruncates(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	path := filepath.Join(dir, "inbox")
	m := openMbox(t, path, MboxOptions{})
	dstDeliver(t, m, "u0", msgQuoting)
	if err := m.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	before := dstReadFile(t, path)
	// 150 KiB spools fine, but spool + mbox do not fit in 256 KiB.
	dstDeliver(t, m, "u1", "Subject: big\n\n"+strings.Repeat(strings.Repeat("y", 99)+"\n", 1500))
	err := m.Commit(context.Background(), nil)
	var ioe *IOError
	if !errors.As(err, &ioe) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Commit = %v, want an IOError with ENOSPC", err)
	}
	if after := dstReadFile(t, path); !bytes.Equal(before, after) {
		t.Fatalf("mbox not truncated back: %d -> %d bytes", len(before), len(after))
	}
	if err := m.Abort(); err != nil {
		t.Fatal(err)
	}
	dstDeliver(t, m, "u2", msgNoEOL)
	if err := m.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := mboxMessages(t, path); len(got) != 2 || got[1] != msgNoEOL {
		t.Fatalf("mbox holds %q", got)
	}
}
