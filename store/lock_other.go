//go:build !unix && !windows

package store

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("lock held")

// lockFile: popfetch supports per-account locks on Unix (flock) and Windows (LockFileEx) only.
func lockFile(f *os.File, wait bool) error {
	return errors.New("account locks are not supported on this system")
}

func unlockFile(f *os.File) error { return nil }
