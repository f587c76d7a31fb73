//go:build !linux

package store

import (
	"os"

	"github.com/popfetch/popfetch/internal/fsutil"
)

// syncFiles makes the files of a batch durable where syncfs(2) does not exist: fsync each file
// (ARCHITECTURE.md §4). dir is unused here.
func syncFiles(dir *os.File, paths []string) error {
	for _, p := range paths {
		if err := fsutil.SyncFile(p); err != nil {
			return err
		}
	}
	return nil
}
