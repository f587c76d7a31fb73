//go:build unix

package store

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// errWouldBlock: the lock is held by someone else.
var errWouldBlock = errors.New("lock held")

// lockFile takes an exclusive flock on f, waiting for it if wait.
func lockFile(f *os.File, wait bool) error {
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	fd := int(f.Fd())
	for {
		err := unix.Flock(fd, how)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return errWouldBlock
		default:
			return err
		}
	}
}

// unlockFile releases the flock on f.
func unlockFile(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_UN)
}
