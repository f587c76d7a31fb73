//go:build linux

package store

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// mboxFcntlLock tries once to take a write lock on the whole of f. It uses an open file description
// lock (F_OFD_SETLK, Linux 3.15): it conflicts with the classic fcntl locks of mail readers and MDAs
// like those, but belongs to this descriptor, so another descriptor of this process is excluded too
// and closing an unrelated descriptor of the same file does not release it. It reports false when
// another holder has it.
func mboxFcntlLock(f *os.File) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	err := retryEINTR(func() error { return unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk) })
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return false, nil
	}
	if errors.Is(err, unix.EINVAL) { // a kernel without OFD locks
		err = retryEINTR(func() error { return unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk) })
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return false, nil
		}
	}
	return err == nil, err
}

// mboxPidAlive reports whether process pid exists (kill(pid, 0) succeeds or is merely not
// permitted).
func mboxPidAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
