//go:build unix

package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old content, longer than the new"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	if err := WriteFileAtomic(path, []byte("new\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != "new\n" {
		t.Fatalf("content %q, %v; want %q", data, err, "new\n")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 whatever the umask", fi.Mode().Perm())
	}
	onlyFile(t, dir, "f")
}

// A target that cannot be replaced (a directory) is left as it was, and no temporary file stays.
func TestWriteFileAtomicFails(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "d")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(target, []byte("data"), 0o600); err == nil {
		t.Fatal("replacing a non-empty directory succeeded")
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Errorf("target changed: %v %v", fi, err)
	}
	onlyFile(t, dir, "d")

	// No directory: an error, nothing created.
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want ErrNotExist", err)
	}
}

// The new content can be checked before it replaces the file; discarded, it leaves nothing.
func TestTempCheckThenCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cfg")
	if err := os.WriteFile(path, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	tmp, err := CreateTemp(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	tmp.Write([]byte("v2"))
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(tmp.Name()); string(b) != "v2" {
		t.Fatalf("temporary file holds %q", b)
	}
	if b, _ := os.ReadFile(path); string(b) != "v1" {
		t.Fatalf("target replaced before Commit: %q", b)
	}
	tmp.Discard()
	onlyFile(t, dir, "cfg")

	tmp, err = CreateTemp(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	tmp.Write([]byte("v3"))
	if err := tmp.Commit(); err != nil {
		t.Fatal(err)
	}
	tmp.Discard() // a deferred Discard after Commit does nothing
	if b, _ := os.ReadFile(path); string(b) != "v3" {
		t.Fatalf("target holds %q after Commit, want v3", b)
	}
	onlyFile(t, dir, "cfg")
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Error(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("SyncDir of a missing directory succeeded")
	}
}

func TestRetryEINTR(t *testing.T) {
	n := 0
	err := RetryEINTR(func() error {
		if n++; n < 3 {
			return &os.PathError{Op: "fsync", Path: "x", Err: syscall.EINTR}
		}
		return syscall.EIO
	})
	if n != 3 || !errors.Is(err, syscall.EIO) {
		t.Errorf("%d calls, %v; want 3 calls and EIO", n, err)
	}
}

func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Name() != name {
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only %s (no temporary file left)", names, name)
	}
}
