//go:build unix

package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckDir(t *testing.T) {
	base := t.TempDir()
	ok := filepath.Join(base, "a", "b")
	if err := MkdirPrivate(ok, "state directory"); err != nil {
		t.Fatalf("MkdirPrivate: %v", err)
	}
	if fi, _ := os.Stat(ok); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", fi.Mode().Perm())
	}
	// A link of ours to a good directory is fine.
	link := filepath.Join(base, "link")
	os.Symlink(ok, link)
	if err := CheckDir(link, "state directory"); err != nil {
		t.Errorf("link to a good directory: %v", err)
	}
	// Group-writable: refused, with the fix; unless the group is the user's private group (the
	// umask-002 convention of Debian and others).
	os.Chmod(ok, 0o770)
	if fi, _ := os.Stat(ok); privateGroup(fi) {
		if err := CheckDir(ok, "state directory"); err != nil {
			t.Errorf("group-writable for the user's private group: %v", err)
		}
		if os.Geteuid() != 0 {
			t.Log("cannot give the directory a group of others")
			os.Chmod(ok, 0o700)
			return
		}
		os.Chown(ok, -1, 65534)
	}
	var ue *UnsafeError
	if err := CheckDir(ok, "state directory"); !errors.As(err, &ue) ||
		!strings.Contains(err.Error(), "chmod go-w "+ok) {
		t.Errorf("group-writable: %v", err)
	}
	os.Chmod(ok, 0o700)
	// A world-writable parent without the sticky bit: refused; with it (like /tmp): fine.
	parent := filepath.Dir(ok)
	os.Chmod(parent, 0o777)
	if err := CheckDir(ok, "state directory"); err == nil || !strings.Contains(err.Error(), "is inside "+parent) {
		t.Errorf("world-writable parent: %v", err)
	}
	os.Chmod(parent, 0o777|os.ModeSticky)
	if err := CheckDir(ok, "state directory"); err != nil {
		t.Errorf("sticky parent: %v", err)
	}
	// Not a directory.
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if err := CheckDir(file, "state directory"); err == nil {
		t.Error("a file passed as a directory")
	}
}

func TestCheckFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(p, nil, 0o644)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := CheckFile(f, p, "configuration file", true, 0o022); err != nil {
		t.Errorf("0644: %v", err)
	}
	if err := CheckFile(f, p, "token file", false, 0o077); err == nil || !strings.Contains(err.Error(), "chmod go-rwx "+p) {
		t.Errorf("0644 token file: %v", err)
	}
	os.Chmod(p, 0o660)
	if fi, _ := os.Stat(p); privateGroup(fi) {
		if err := CheckFile(f, p, "configuration file", true, 0o022); err != nil {
			t.Errorf("0660, the user's private group: %v", err)
		}
	}
	os.Chmod(p, 0o666)
	if err := CheckFile(f, p, "configuration file", true, 0o022); err == nil || !strings.Contains(err.Error(), "chmod go-w "+p) {
		t.Errorf("0666: %v", err)
	}
}
