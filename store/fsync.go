package store

import (
	"errors"
	"os"
	"runtime"
	"syscall"
)

// syncDir makes the entries of directory path durable (fsync on the directory): the last step of
// "temp, fsync, rename, fsync the directory" (STYLE #14, DESIGN §2 and §3).
//
// On Windows it does nothing, as restic's does: a directory cannot be opened for FlushFileBuffers
// (access denied), and NTFS journals its metadata, renames included.
func syncDir(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
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
