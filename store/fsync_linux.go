//go:build linux

package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFiles makes the files of a batch durable. On Linux one syncfs(2) on the maildir's tmp/
// directory flushes the whole filesystem once: two device flushes per batch (this and the fsync of
// new/) instead of one per message, the order measured cheapest on ext4 (ARCHITECTURE.md §4). paths is unused
// here; other systems fsync each file (fsync_other.go).
//
// Since Linux 5.8 syncfs reports writeback errors (EIO, ENOSPC on thin storage) of the filesystem
// since the descriptor was opened; older kernels return 0 regardless. We open tmp/ when the Maildir
// is created, before any message is written.
func syncFiles(dir *os.File, paths []string) error {
	fd := int(dir.Fd())
	return retryEINTR(func() error { return unix.Syncfs(fd) })
}
