//go:build unix && !linux

package store

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// mboxFcntlLock tries once to take a classic fcntl write lock on the whole of f (F_SETLK). Such a
// lock belongs to the process, so the dotlock is what excludes a second Mbox of this process. It
// reports false when another process holds it.
func mboxFcntlLock(f *os.File) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	err := retryEINTR(func() error { return unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk) })
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return false, nil
	}
	return err == nil, err
}

// mboxPidAlive reports whether process pid exists (kill(pid, 0) succeeds or is merely not
// permitted).
func mboxPidAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
