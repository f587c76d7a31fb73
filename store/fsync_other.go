//go:build !linux

package store

import "os"

// syncFiles makes the files of a batch durable where syncfs(2) does not exist: fsync each file
// (DESIGN §2). dir is unused here.
func syncFiles(dir *os.File, paths []string) error {
	for _, p := range paths {
		// Opened for writing: Windows' FlushFileBuffers refuses a read-only handle.
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = retryEINTR(f.Sync)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
