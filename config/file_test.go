//go:build unix

package config

import (
	"bytes"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/config/oauth2test"
	"github.com/popfetch/popfetch/internal/fsutil"
)

// Issue 17 point 3: a configuration file that another user can change is refused (exit 78), and so
// is an OAuth2 token file that others may read or that is not the user's.

func nobody(t *testing.T) (int, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test creates files owned by another user (nobody)")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody:", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

const permProfile = "accounts:\n  a:\n    host: h\n    user: u\n    password_command: touch /nonexistent/ran\n    deliver: {maildir: /m}\n"

func writeProfile(t *testing.T, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(permProfile), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // not subject to the umask
		t.Fatal(err)
	}
	return p
}

func wantUnsafe(t *testing.T, err error, path, fix string) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) || !errors.As(err, new(*fsutil.UnsafeError)) ||
		!strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), fix) || strings.Contains(err.Error(), "\n") {
		t.Errorf("Load = %v; want one exit-78 line naming %s and %q", err, path, fix)
	}
}

func TestLoadRefusesConfigOthersCanWrite(t *testing.T) {
	for _, mode := range []os.FileMode{0o666, 0o602} {
		p := writeProfile(t, mode)
		_, err := Load(p)
		wantUnsafe(t, err, p, "chmod go-w "+p)
	}
	// Group-writable: refused for a group of others; root's group here is its private group, as
	// a umask of 002 would leave a user's file on Debian, which is fine.
	p := writeProfile(t, 0o660)
	if _, err := Load(p); os.Geteuid() == 0 && err != nil {
		t.Errorf("0660 with the owner's private group: %v", err)
	}
	if os.Geteuid() == 0 {
		_, gid := nobody(t)
		os.Chown(p, -1, gid)
		_, err := Load(p)
		wantUnsafe(t, err, p, "chmod go-w "+p)
	}
	for _, mode := range []os.FileMode{0o600, 0o644, 0o444} { // readable by others is fine without an inline password
		if _, err := Load(writeProfile(t, mode)); err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
}

func TestLoadRefusesConfigOfAnotherUser(t *testing.T) {
	uid, gid := nobody(t)
	p := writeProfile(t, 0o644)
	if err := os.Chown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	wantUnsafe(t, err, p, "owned by uid "+strconv.Itoa(uid))
	// Through a symbolic link of ours: the target is what counts.
	link := filepath.Join(t.TempDir(), "link.yaml")
	os.Symlink(p, link)
	_, err = Load(link)
	wantUnsafe(t, err, link, "owned by uid "+strconv.Itoa(uid))
	// Owned by root (we are root here): fine, like a system-wide file in /etc.
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Errorf("root-owned: %v", err)
	}
}

func TestOAuth2TokenFileModeChecked(t *testing.T) {
	srv := oauth2test.NewServer(t, &oauth2test.Options{ExpiresIn: time.Hour})
	a := oauthAccount(t, srv, "    auth: oauthbearer\n")
	kr := &memKeyring{fail: true}
	prompt, _ := browser(t)
	if _, err := a.OAuth2Login(t.Context(), &OAuth2LoginOptions{Prompt: prompt, Keyring: kr, Stderr: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	file := a.OAuth2TokenFile()
	if _, err := a.Secret(t.Context(), &SecretOptions{Keyring: kr, Stderr: &bytes.Buffer{}}); err != nil {
		t.Fatalf("0600 token file: %v", err)
	}
	os.Chmod(file, 0o644)
	_, err := a.Secret(t.Context(), &SecretOptions{Keyring: kr, Stderr: &bytes.Buffer{}})
	var ue *fsutil.UnsafeError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "chmod go-rwx "+file) {
		t.Errorf("0644 token file: %v; want exit 78 and chmod go-rwx", err)
	}
	os.Chmod(file, 0o600)
	if os.Geteuid() == 0 {
		uid, gid := nobody(t)
		os.Chown(file, uid, gid)
		_, err = a.Secret(t.Context(), &SecretOptions{Keyring: kr, Stderr: &bytes.Buffer{}})
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "owned by uid "+strconv.Itoa(uid)) {
			t.Errorf("token file of nobody: %v", err)
		}
	}
}
