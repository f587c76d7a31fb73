package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Fault injection through the maildirFS and journalFile seams: a disk that fills up (ENOSPC) or
// fails (EIO) in the middle of a message, of the batch's sync, of its renames, or of the state's
// append. Each time the caller gets an *IOError (exit 74) that still says which errno it was, no
// partial file stays behind, and the state is unchanged.

// faultFile is a real file that fails with err once limit bytes have been written.
type faultFile struct {
	f     *os.File
	limit int
	err   error
}

func (w *faultFile) Write(p []byte) (int, error) {
	if len(p) <= w.limit {
		w.limit -= len(p)
		return w.f.Write(p)
	}
	n, _ := w.f.Write(p[:w.limit])
	w.limit = 0
	return n, w.err
}

func (w *faultFile) Close() error { return w.f.Close() }

// faultyCreate makes the nth file created (0-based) fail after limit bytes.
func faultyCreate(nth, limit int, err error) func(string) (tmpFile, error) {
	count := 0
	return func(path string) (tmpFile, error) {
		f, cerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if cerr != nil {
			return nil, cerr
		}
		count++
		if count-1 == nth {
			return &faultFile{f: f, limit: limit, err: err}, nil
		}
		return f, nil
	}
}

// faultEnv is a maildir and a state side by side, as the engine uses them.
type faultEnv struct {
	md       *Maildir
	st       *State
	stateDir string
	before   []byte // the state file before the faulty batch
}

func newFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	e := &faultEnv{md: newTestMaildir(t, MaildirOptions{}), stateDir: t.TempDir()}
	e.st = openTestState(t, e.stateDir, &testClock{t0})
	if err := e.st.MarkDelivered([]string{"old"}, t0); err != nil {
		t.Fatal(err)
	}
	e.before = e.stateBytes(t)
	return e
}

func (e *faultEnv) stateBytes(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(e.st.Path())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deliverBatch delivers n messages of size bytes, stopping at the first error.
func (e *faultEnv) deliverBatch(n, size int) ([]string, error) {
	var uids []string
	for i := range n {
		uid := fmt.Sprintf("uid%d", i)
		body := "Subject: " + uid + "\r\n\r\n" + strings.Repeat("0123456789abcde\r\n", size/17)
		if _, err := e.md.Deliver(context.Background(), Envelope{UID: uid}, strings.NewReader(body)); err != nil {
			return uids, err
		}
		uids = append(uids, uid)
	}
	return uids, nil
}

// wantIOError checks err is an *IOError wrapping errno with exit code 74.
func wantIOError(t *testing.T, err error, errno syscall.Errno) {
	t.Helper()
	var ioe *IOError
	if !errors.As(err, &ioe) || !errors.Is(err, errno) || !errors.Is(err, ErrLocalIO) {
		t.Fatalf("error %v (%T): want an *IOError for %v with exit code 74", err, err, errno)
	}
}

// wantUnchanged checks that the maildir shows nothing and the state is as before.
func (e *faultEnv) wantUnchanged(t *testing.T) {
	t.Helper()
	for _, sub := range []string{"tmp", "new", "cur"} {
		if got := dirNames(t, e.md, sub); len(got) != 0 {
			t.Errorf("%s/ = %v, want empty", sub, got)
		}
	}
	if got := e.stateBytes(t); !bytes.Equal(got, e.before) {
		t.Errorf("state file changed:\n%s\nwas:\n%s", got, e.before)
	}
	if e.st.Len() != 1 {
		t.Errorf("state has %d entries, want 1", e.st.Len())
	}
}

func TestDeliverDiskFullOrEIO(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EIO} {
		t.Run(errno.Error(), func(t *testing.T) {
			e := newFaultEnv(t)
			// The third message fails 100 KB in, after bufio has flushed part of it.
			e.md.fs.create = faultyCreate(2, 100<<10, errno)
			uids, err := e.deliverBatch(5, 300<<10)
			wantIOError(t, err, errno)
			if len(uids) != 2 {
				t.Fatalf("delivered %d before the failure", len(uids))
			}
			if got := dirNames(t, e.md, "tmp"); len(got) != 2 {
				t.Errorf("tmp/ = %v: the partial file should be gone, the two complete ones still there", got)
			}
			// The engine abandons the batch.
			if err := e.md.Abort(); err != nil {
				t.Fatal(err)
			}
			e.wantUnchanged(t)
		})
	}
}

func TestCommitSyncFails(t *testing.T) {
	e := newFaultEnv(t)
	e.md.fs.syncFiles = func(*os.File, []string) error { return syscall.EIO }
	if _, err := e.deliverBatch(3, 1000); err != nil {
		t.Fatal(err)
	}
	err := e.md.Commit(context.Background(), func(ps []Pending) error {
		t.Error("journal called although the batch is not durable")
		return e.st.RecordPending(ps)
	})
	wantIOError(t, err, syscall.EIO)
	e.wantUnchanged(t)
}

// TestStateUnwritable: the state's append fails (ENOSPC half way through the records, or EIO at
// fsync): nothing becomes visible, the half-written records are cut, the state refuses further
// writes, and the file reopens clean.
func TestStateUnwritable(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EIO} {
		t.Run(errno.Error(), func(t *testing.T) {
			e := newFaultEnv(t)
			real := e.st.f.(*os.File)
			e.st.f = &faultJournal{f: real, err: errno, half: errno == syscall.ENOSPC}
			if _, err := e.deliverBatch(3, 1000); err != nil {
				t.Fatal(err)
			}
			err := e.md.Commit(context.Background(), e.st.RecordPending)
			wantIOError(t, err, errno)
			e.wantUnchanged(t)
			// Sticky: the state's content after a failed fsync is unknown, so no more writes.
			if err := e.st.MarkDelivered([]string{"x"}, t0); err == nil {
				t.Error("write after a failed append succeeded")
			}
			e.st.Close()
			st, err := OpenState(e.stateDir, "acct")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if st.Len() != 1 || st.TornBytes() != 0 {
				t.Errorf("reopened: %d entries, %d torn bytes", st.Len(), st.TornBytes())
			}
		})
	}
}

// faultJournal fails every write: with half, after writing half of it (a full disk); else at fsync.
type faultJournal struct {
	f    *os.File
	err  error
	half bool
}

func (j *faultJournal) Write(p []byte) (int, error) {
	if j.half {
		n, _ := j.f.Write(p[:len(p)/2])
		return n, j.err
	}
	return j.f.Write(p)
}

func (j *faultJournal) Sync() error {
	if j.half {
		return j.f.Sync()
	}
	return j.err
}

func (j *faultJournal) Truncate(size int64) error { return j.f.Truncate(size) }
func (j *faultJournal) Close() error              { return j.f.Close() }

// TestCommitRenameFails: the second rename fails. One message is visible, all three are pending in
// the state; the engine stops; the next run's Recover keeps the visible one and refetches the rest.
func TestCommitRenameFails(t *testing.T) {
	e := newFaultEnv(t)
	n := 0
	e.md.fs.rename = func(o, nw string) error {
		if n++; n == 2 {
			return &os.LinkError{Op: "rename", Old: o, New: nw, Err: syscall.EIO}
		}
		return os.Rename(o, nw)
	}
	if _, err := e.deliverBatch(3, 1000); err != nil {
		t.Fatal(err)
	}
	err := e.md.Commit(context.Background(), e.st.RecordPending)
	wantIOError(t, err, syscall.EIO)
	if got := dirNames(t, e.md, "new"); len(got) != 1 {
		t.Fatalf("new/ = %v", got)
	}
	if got := dirNames(t, e.md, "tmp"); len(got) != 0 {
		t.Errorf("tmp/ = %v", got)
	}
	del, disc, err := e.st.Recover(e.md)
	if err != nil {
		t.Fatal(err)
	}
	if len(del) != 1 || len(disc) != 2 || del[0] != "uid0" {
		t.Errorf("Recover = %v, %v", del, disc)
	}
}

// TestCommitDirSyncFails: the fsync of new/ fails after every rename: the batch is pending, and
// Recover finds all of it visible.
func TestCommitDirSyncFails(t *testing.T) {
	e := newFaultEnv(t)
	e.md.fs.syncDir = func(string) error { return syscall.EIO }
	if _, err := e.deliverBatch(3, 1000); err != nil {
		t.Fatal(err)
	}
	wantIOError(t, e.md.Commit(context.Background(), e.st.RecordPending), syscall.EIO)
	del, disc, err := e.st.Recover(e.md)
	if err != nil || len(del) != 3 || len(disc) != 0 {
		t.Errorf("Recover = %v, %v, %v", del, disc, err)
	}
}

// TestMaildirUnwritable: a maildir whose tmp/ the user cannot write. Root ignores permissions, so
// the real case runs only as another user; the seam shows the same error path everywhere.
func TestMaildirUnwritable(t *testing.T) {
	t.Run("seam", func(t *testing.T) {
		e := newFaultEnv(t)
		e.md.fs.create = func(path string) (tmpFile, error) {
			return nil, &os.PathError{Op: "open", Path: path, Err: syscall.EACCES}
		}
		_, err := e.deliverBatch(1, 100)
		wantIOError(t, err, syscall.EACCES)
		e.wantUnchanged(t)
	})
	t.Run("chmod", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: permissions do not apply (the seam subtest covers the error path)")
		}
		e := newFaultEnv(t)
		tmp := filepath.Join(e.md.Path(), "tmp")
		if err := os.Chmod(tmp, 0o500); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(tmp, 0o700)
		_, err := e.deliverBatch(1, 100)
		wantIOError(t, err, syscall.EACCES)
	})
}

func TestIOErrorMessage(t *testing.T) {
	path := "/m/tmp/1.x.h"
	err := ioErr("write", path, &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC})
	if got, want := err.Error(), "store: write /m/tmp/1.x.h: no space left on device"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Error("errno lost")
	}
	if ioErr("x", "", nil) != nil {
		t.Error("ioErr(nil) != nil")
	}
	if again := ioErr("y", "p", err); again != err {
		t.Error("an *IOError was wrapped twice")
	}
}
