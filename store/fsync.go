package store

import (
	"errors"
	"os"
	"syscall"
)

// syncDir makes the entries of directory path durable (fsync on the directory): the last step of
// "temp, fsync, rename, fsync the directory" (STYLE #14, DESIGN §2 and §3).
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = retryEINTR(d.Sync)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// retryEINTR calls f again while it fails with EINTR (the Go runtime's preemption signals can
// interrupt a long sync on some systems).
func retryEINTR(f func() error) error {
	for {
		err := f()
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
