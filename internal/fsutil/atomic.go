package fsutil

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
)

// Durable replacement of a file: the new content goes to a temporary file beside the target, which
// is fsync'd and renamed over the target, and then the directory is fsync'd so that the rename
// itself survives a power cut. A reader sees the old file or the new one, never a torn one.

// WriteFileAtomic replaces the file at path with data, durably (see Temp). The file gets mode perm
// (the umask does not apply). On error the target is unchanged and no temporary file is left.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	t, err := CreateTemp(path, perm)
	if err != nil {
		return err
	}
	defer t.Discard()
	if _, err := t.Write(data); err != nil {
		return err
	}
	return t.Commit()
}

// Temp is the new content of a file, written beside it until Commit renames it over the file.
type Temp struct {
	f      *os.File
	name   string // the temporary file
	target string
	closed bool
	done   bool // renamed over the target, or removed
}

// CreateTemp creates a temporary file with mode perm in the directory of target, for target's new
// content. It is created exclusively (O_EXCL, O_NOFOLLOW) under a hidden random name, so that no
// file or symbolic link planted there is followed or truncated, and two writers do not meet.
func CreateTemp(target string, perm fs.FileMode) (*Temp, error) {
	dir, base := filepath.Split(target)
	for try := 0; ; try++ {
		name := filepath.Join(dir, "."+base+".tmp-"+strconv.FormatUint(rand.Uint64()&0xffffffffff, 36))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|NoFollow, perm)
		if errors.Is(err, fs.ErrExist) && try < 100 {
			continue
		}
		if err != nil {
			return nil, err
		}
		t := &Temp{f: f, name: name, target: target}
		if err := f.Chmod(perm); err != nil { // exactly perm, whatever the umask
			t.Discard()
			return nil, err
		}
		return t, nil
	}
}

// Name is the temporary file's path: it can be read (after Close) to check the new content.
func (t *Temp) Name() string { return t.name }

// Write appends to the new content.
func (t *Temp) Write(p []byte) (int, error) { return t.f.Write(p) }

// Close fsyncs and closes the temporary file; Commit does it if it was not done.
func (t *Temp) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	err := RetryEINTR(t.f.Sync)
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Commit closes the temporary file (fsync'd), renames it over the target and fsyncs the directory.
// An error of the directory's fsync is returned: the new content is in place, but may not survive a
// power cut.
func (t *Temp) Commit() error {
	if t.done {
		return errors.New("fsutil: temporary file already committed or discarded")
	}
	if err := t.Close(); err != nil {
		return err
	}
	if err := os.Rename(t.name, t.target); err != nil {
		return err
	}
	t.done = true
	return SyncDir(filepath.Dir(t.target))
}

// Discard closes and removes the temporary file unless Commit renamed it. It can be deferred.
func (t *Temp) Discard() {
	if t.done {
		return
	}
	t.done = true
	if !t.closed {
		t.closed = true
		t.f.Close()
	}
	os.Remove(t.name)
}

// SyncDir makes the entries of directory path durable (fsync on the directory): the last step of
// "temp, fsync, rename, fsync the directory".
//
// On Windows it does nothing, as restic's does: a directory cannot be opened for FlushFileBuffers
// (access denied), and NTFS journals its metadata, renames included.
func SyncDir(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	return SyncFile(path)
}

// SyncFile opens path, fsyncs it and closes it. A file is opened for writing on Windows, whose
// FlushFileBuffers refuses a read-only handle.
func SyncFile(path string) error {
	flag := os.O_RDONLY
	if runtime.GOOS == "windows" {
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
			flag = os.O_WRONLY
		}
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return err
	}
	err = RetryEINTR(f.Sync)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// RetryEINTR calls f again while it fails with EINTR (the Go runtime's preemption signals can
// interrupt a long sync on some systems).
func RetryEINTR(f func() error) error {
	for {
		err := f()
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
