//go:build !unix

package store

import "os"

// mboxFcntlLock does nothing where there is no fcntl: the dotlock alone protects the mbox.
func mboxFcntlLock(f *os.File) (bool, error) { return true, nil }
