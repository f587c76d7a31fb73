//go:build !unix

package fsutil

import (
	"io/fs"
	"os"
)

// NoFollow is 0 where there is no O_NOFOLLOW.
const NoFollow = 0

// MkdirPrivate creates dir and its missing parents with mode 0700; ownership is not checked here.
func MkdirPrivate(dir, what string) error { return os.MkdirAll(dir, 0o700) }

// CheckDir checks nothing where there are no Unix owners and modes.
func CheckDir(dir, what string) error { return nil }

// CheckFile checks nothing where there are no Unix owners and modes.
func CheckFile(f *os.File, path, what string, rootOK bool, forbid fs.FileMode) error { return nil }

// CheckOpened checks that f is a regular file.
func CheckOpened(f *os.File, path string) error { return nil }

// Symlink returns err.
func Symlink(path string, err error) error { return err }
