package store

import (
	"errors"
	"os"
	"runtime"

	"github.com/popfetch/popfetch/internal/fsutil"
)

// What the state journal needs to differ on Windows (README "Platforms"):
//
//   - A file open there (os.OpenFile shares it for reading and writing, not for deletion) cannot be
//     replaced by a rename: compaction closes the journal before it renames the snapshot over it, and
//     opens the new file after, as it does everywhere.
//   - A handle opened for appending has no right to truncate (Go grants FILE_APPEND_DATA, not
//     FILE_WRITE_DATA): the torn-tail repair truncates through the path instead. Appends still land at
//     the end of the file, as they must.
//
// renameNeedsClose and truncateByPath are variables so that the tests run the Windows way on every
// system.
var (
	renameNeedsClose = runtime.GOOS == "windows"
	truncateByPath   = runtime.GOOS == "windows"
	// writeSnapshotFile writes a compaction's snapshot durably; the tests make it fail.
	writeSnapshotFile = fsutil.WriteFileAtomic
)

// releaseBeforeRename closes f where a rename over its file would fail, and returns what the State
// should hold meanwhile: f itself elsewhere, or a journal that refuses writes and closes without
// error.
func releaseBeforeRename(f journalFile) journalFile {
	if !renameNeedsClose || f == nil {
		return f
	}
	if _, ok := f.(closedJournal); ok {
		return f
	}
	_ = f.Close()
	return closedJournal{}
}

// closedJournal stands for a journal closed for a compaction that then failed: the State refuses
// writes by then (its sticky error), and Close has nothing left to close.
type closedJournal struct{}

var errJournalClosed = errors.New("store: the state journal was closed for compaction")

func (closedJournal) Write([]byte) (int, error) { return 0, errJournalClosed }
func (closedJournal) Sync() error               { return errJournalClosed }
func (closedJournal) Truncate(int64) error      { return errJournalClosed }
func (closedJournal) Close() error              { return nil }

// platformJournal wraps the opened journal where its handle cannot truncate.
func platformJournal(f *os.File, path string) journalFile {
	if !truncateByPath {
		return f
	}
	return pathTruncating{File: f, path: path}
}

// pathTruncating truncates through the path (a second handle), for an append-only handle.
type pathTruncating struct {
	*os.File
	path string
}

func (p pathTruncating) Truncate(size int64) error { return os.Truncate(p.path, size) }
