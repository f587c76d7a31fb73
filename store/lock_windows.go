//go:build windows

package store

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// errWouldBlock: the lock is held by someone else.
var errWouldBlock = errors.New("lock held")

// lockRange is the byte range LockFileEx locks: one byte at 4 GiB, far past the pid at the start of
// the file, so that another run can still read who holds the lock (Windows byte-range locks are
// mandatory: a locked range cannot be read by other handles). Windows releases the lock when the
// handle is closed, also when the process dies, as flock(2) does on Unix.
func lockRange() *windows.Overlapped { return &windows.Overlapped{OffsetHigh: 1} }

// lockFile takes an exclusive LockFileEx lock on f, waiting for it if wait.
func lockFile(f *os.File, wait bool) error {
	flags := uint32(windows.LOCKFILE_EXCLUSIVE_LOCK)
	if !wait {
		flags |= windows.LOCKFILE_FAIL_IMMEDIATELY
	}
	err := windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, lockRange())
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
		return errWouldBlock
	}
	return err
}

// unlockFile releases the lock on f.
func unlockFile(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, lockRange())
}
