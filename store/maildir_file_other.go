//go:build !unix

package store

import (
	"os"

	"github.com/popfetch/popfetch/internal/fsutil"
)

// createTmpFile creates path exclusively (mode 0600) for Deliver.
func createTmpFile(path string) (tmpFile, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|fsutil.NoFollow, 0o600)
}

// renameFile renames a message file into new/.
func renameFile(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
