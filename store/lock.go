package store

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/popfetch/popfetch/internal/fsutil"
)

// Lockfile is a held per-account lock (ARCHITECTURE.md §2 step 1): an flock(2) on "<dir>/<account>.lock", so
// that two runs never fetch the same account at once. The kernel releases it when the process dies,
// even by kill -9, so a crash never leaves a stale lock behind. The file holds the holder's pid, for
// the error message only; it is not removed on Unlock (removing it would let a third run lock a new
// file while a second one waits on the old).
type Lockfile struct {
	f    *os.File
	path string
}

// Lock takes the lock of account in dir (created with mode 0700 if needed). If another run holds it,
// Lock returns a *LockedError (errors.Is(err, ErrLocked), exit 75) at once, or waits for it when wait
// is true. A state directory another user could change (see MkdirState) is an *fsutil.UnsafeError
// (exit 78). The lock file is opened without following a symbolic link and is never truncated; a
// lock file that is not a regular file of ours with one link is refused. Local failures are
// *IOError.
func Lock(dir, account string, wait bool) (*Lockfile, error) {
	if err := validAccount(account); err != nil {
		return nil, err
	}
	if err := MkdirState(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, account+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|fsutil.NoFollow, 0o600)
	if err != nil {
		return nil, stateErr("open", path, fsutil.Symlink(path, err))
	}
	if err := fsutil.CheckOpened(f, path); err != nil {
		f.Close()
		return nil, stateErr("open", path, err)
	}
	if err := lockFile(f, wait); err != nil {
		f.Close()
		if err == errWouldBlock {
			return nil, &LockedError{Path: path, PID: readPID(path)}
		}
		return nil, ioErr("lock", path, err)
	}
	writePID(f)
	return &Lockfile{f: f, path: path}, nil
}

// Path returns the lock file's path.
func (l *Lockfile) Path() string { return l.path }

// Unlock releases the lock. Calling it again does nothing.
func (l *Lockfile) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlockFile(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return ioErr("unlock", l.path, err)
	}
	return nil
}

// writePID records the holder's pid in the lock file, best effort. It overwrites the first bytes with
// a fixed-width line (the pid padded with spaces) and never truncates the file.
func writePID(f *os.File) {
	_, _ = f.WriteAt([]byte(pidLine(os.Getpid())), 0)
}

// pidLine is pid as a line of a fixed width, so that a shorter pid covers a longer one.
func pidLine(pid int) string {
	s := strconv.Itoa(pid)
	if len(s) < 10 {
		s += strings.Repeat(" ", 10-len(s))
	}
	return s + "\n"
}

// MkdirState creates the state directory dir (and missing parents, mode 0700) and refuses it with an
// *fsutil.UnsafeError (exit 78) when another user could change it: owned by someone else, writable by
// group or others, or below a directory that is (ssh's StrictModes). Other failures are *IOError.
func MkdirState(dir string) error {
	return stateErr("mkdir", dir, fsutil.MkdirPrivate(dir, "state directory"))
}

// stateErr is ioErr, except that an *fsutil.UnsafeError is returned as it is (exit 78, not 74).
func stateErr(op, path string, err error) error {
	var ue *fsutil.UnsafeError
	if errors.As(err, &ue) {
		return err
	}
	return ioErr(op, path, err)
}

// readPID reads the holder's pid from the lock file, 0 if unknown.
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range b {
		if c == '\n' || c == ' ' {
			break
		}
		if c < '0' || c > '9' || n > 1<<30 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
