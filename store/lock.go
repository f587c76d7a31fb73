package store

import (
	"os"
	"path/filepath"
	"strconv"
)

// Lockfile is a held per-account lock (DESIGN §2 step 1): an flock(2) on "<dir>/<account>.lock", so
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
// is true. Local failures are *IOError.
func Lock(dir, account string, wait bool) (*Lockfile, error) {
	if err := validAccount(account); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, ioErr("mkdir", dir, err)
	}
	path := filepath.Join(dir, account+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, ioErr("open", path, err)
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

// writePID records the holder's pid in the lock file, best effort.
func writePID(f *os.File) {
	if err := f.Truncate(0); err != nil {
		return
	}
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
}

// readPID reads the holder's pid from the lock file, 0 if unknown.
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range b {
		if c == '\n' {
			break
		}
		if c < '0' || c > '9' || n > 1<<30 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
