package config

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

func account(t *testing.T, keys string) *Account {
	t.Helper()
	cfg := mustLoad(t, "accounts:\n  work: {host: pop.example.com, user: alice, deliver: {maildir: /m}, "+keys+"}\n")
	return cfg.Accounts[0]
}

func TestPasswordCommand(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		keys    string
		want    string
		wantErr string // substring of the error
		stderr  string // substring of what reaches stderr
	}{
		{keys: `password_command: [printf, "s3cret\nsecond line\n"]`, want: "s3cret"},
		{keys: `password_command: "echo s3cret; echo other"`, want: "s3cret"},
		{keys: `password_command: "printf 'crlf\r\n'"`, want: "crlf"},
		{keys: `password_command: "printf no-newline"`, want: "no-newline"},
		{keys: `password_command: "echo $POPFETCH_ACCOUNT-$POPFETCH_USER"`, want: "work-alice"},
		{keys: `password_command: "echo unlocking >&2; echo pw"`, want: "pw", stderr: "unlocking"},
		{keys: `password_command: "echo leaked-secret; echo nope >&2; exit 3"`,
			wantErr: "password_command: `echo leaked-secret; echo nope >&2; exit 3` failed with exit status 3", stderr: "nope"},
		{keys: `password_command: "echo"`, wantErr: "printed no password"},
		{keys: `password_command: [/nonexistent/pass, show]`, wantErr: "/nonexistent/pass"},
		{keys: `password_command: [popfetch-no-such-program]`, wantErr: `program "popfetch-no-such-program" not found in $PATH`},
		{keys: `password_command: "exec sleep 30", password_timeout: 100ms`, wantErr: "password_command: timed out: `exec sleep 30` did not finish within 100ms (password_timeout)"},
	}
	for _, tt := range tests {
		t.Run(tt.keys, func(t *testing.T) {
			a := account(t, tt.keys)
			var stderr bytes.Buffer
			got, err := a.Secret(ctx, &SecretOptions{Stderr: &stderr})
			if tt.wantErr != "" {
				var se *SecretError
				if err == nil || !errors.As(err, &se) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Secret = %q, %v; want a *SecretError containing %q", got, err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), `account "work": password_command: `) {
					t.Errorf("error %q does not name the account and source", err)
				}
			} else if err != nil || got != tt.want {
				t.Fatalf("Secret = %q, %v; want %q", got, err, tt.want)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.stderr)
			}
			if err != nil && strings.Contains(err.Error(), "leaked-secret\n") {
				t.Errorf("error shows the command's output: %v", err)
			}
		})
	}
}

func TestPasswordCommandCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	a := account(t, `password_command: "exec sleep 30"`)
	if _, err := a.Secret(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Secret(cancelled) = %v", err)
	}
}

func TestPasswordEnv(t *testing.T) {
	a := account(t, "password_env: POPFETCH_TEST_PW")
	t.Setenv("POPFETCH_TEST_PW", "from-env")
	if s, err := a.Secret(t.Context(), nil); err != nil || s != "from-env" {
		t.Fatalf("Secret = %q, %v", s, err)
	}
	os.Unsetenv("POPFETCH_TEST_PW")
	_, err := a.Secret(t.Context(), nil)
	if err == nil || err.Error() != `account "work": password_env: $POPFETCH_TEST_PW is not set or empty` {
		t.Fatalf("Secret(unset) = %v", err)
	}
}

// The keyring tests below use keyring.MockInit, which replaces a process-global provider: no t.Parallel.

func TestKeyringMock(t *testing.T) {
	keyring.MockInit()
	ctx := t.Context()
	a := account(t, "")
	if a.Password.String() != "(keyring)" {
		t.Fatalf("source %v", a.Password)
	}
	_, err := a.Secret(ctx, nil)
	if !errors.Is(err, ErrKeyringNotFound) || !strings.Contains(err.Error(), "popfetch password set work") ||
		!strings.Contains(err.Error(), "password_command") {
		t.Fatalf("Secret(empty keyring) = %v", err)
	}
	if err := KeyringSet(ctx, nil, "work", "from-keyring", 0); err != nil {
		t.Fatal(err)
	}
	if s, err := a.Secret(ctx, nil); err != nil || s != "from-keyring" {
		t.Fatalf("Secret = %q, %v", s, err)
	}
	if s, err := KeyringGet(ctx, nil, "work", 0); err != nil || s != "from-keyring" {
		t.Fatalf("KeyringGet = %q, %v", s, err)
	}
	if err := KeyringDelete(ctx, nil, "work", 0); err != nil {
		t.Fatal(err)
	}
	if err := KeyringDelete(ctx, nil, "work", 0); !errors.Is(err, ErrKeyringNotFound) {
		t.Fatalf("second delete = %v", err)
	}

	keyring.MockInitWithError(errors.New(`exec: "dbus-launch": executable file not found in $PATH`))
	_, err = a.Secret(ctx, nil)
	if !errors.Is(err, ErrKeyringUnavailable) || !strings.Contains(err.Error(), "password_command") ||
		!strings.Contains(err.Error(), "dbus-launch") {
		t.Fatalf("Secret(no bus) = %v", err)
	}
}

// stuckKeyring never answers, like a Secret Service showing an unlock prompt nobody sees.
type stuckKeyring struct{ release chan struct{} }

func (k stuckKeyring) Get(string, string) (string, error) {
	<-k.release
	return "", errors.New("released")
}
func (k stuckKeyring) Set(string, string, string) error { <-k.release; return errors.New("released") }
func (k stuckKeyring) Delete(string, string) error      { <-k.release; return errors.New("released") }

func TestKeyringTimeout(t *testing.T) {
	k := stuckKeyring{release: make(chan struct{})}
	t.Cleanup(func() { close(k.release) })
	a := account(t, "password_timeout: 50ms")
	_, err := a.Secret(t.Context(), &SecretOptions{Keyring: k})
	if !errors.Is(err, ErrKeyringTimeout) || !strings.Contains(err.Error(), "within 50ms") ||
		!strings.Contains(err.Error(), "password_command") {
		t.Fatalf("Secret(stuck keyring) = %v", err)
	}
	if err := KeyringSet(t.Context(), k, "work", "x", 50*time.Millisecond); !errors.Is(err, ErrKeyringTimeout) {
		t.Fatalf("KeyringSet(stuck keyring) = %v", err)
	}
}

// helperEnv marks a re-executed test binary: its value names the test to act as.
const helperEnv = "POPFETCH_KEYRING_HELPER"

// reexec runs this test binary again for test name, with env added, and returns its output.
func reexec(t *testing.T, ctx context.Context, wrapper []string, name string, env ...string) (string, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := append(wrapper, exe, "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), append(env, helperEnv+"="+name)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestKeyringNoAnswer points the real keyring library at a D-Bus address whose socket accepts but never
// says a word: popfetch must give up after its timeout, pointing at password_command. It runs in a
// child process because the D-Bus library keeps a process-global connection.
func TestKeyringNoAnswer(t *testing.T) {
	if os.Getenv(helperEnv) == t.Name() {
		a := account(t, "password_timeout: 300ms")
		_, err := a.Secret(t.Context(), nil)
		fmt.Printf("ERROR: %v\n", err)
		if !errors.Is(err, ErrKeyringTimeout) {
			t.Fatalf("Secret = %v, want ErrKeyringTimeout", err)
		}
		return
	}
	sock := filepath.Join(t.TempDir(), "bus")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := reexec(t, ctx, nil, t.Name(), "DBUS_SESSION_BUS_ADDRESS=unix:path="+sock)
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, s := range []string{"did not answer within 300ms", "password_command", "unlock"} {
		if !strings.Contains(out, s) {
			t.Errorf("message does not mention %q:\n%s", s, out)
		}
	}
}

// TestKeyringNoSessionBus: without a session bus (cron, ssh) the error explains the alternatives.
func TestKeyringNoSessionBus(t *testing.T) {
	if os.Getenv(helperEnv) == t.Name() {
		_, err := account(t, "").Secret(t.Context(), nil)
		fmt.Printf("ERROR: %v\n", err)
		if !errors.Is(err, ErrKeyringUnavailable) {
			t.Fatalf("Secret = %v, want ErrKeyringUnavailable", err)
		}
		return
	}
	empty := t.TempDir()
	out, err := reexec(t, t.Context(), nil, t.Name(), "DBUS_SESSION_BUS_ADDRESS=", "PATH="+empty, "XDG_RUNTIME_DIR="+empty)
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(out, "password_command") || !strings.Contains(out, "password_env") {
		t.Errorf("message does not explain the alternatives:\n%s", out)
	}
}

// TestKeyringSecretService stores, reads and deletes a password through a real Secret Service: a
// private gnome-keyring-daemon on a private D-Bus session (dbus-run-session), with its own HOME.
func TestKeyringSecretService(t *testing.T) {
	if os.Getenv(helperEnv) == t.Name() {
		secretServiceChild(t)
		return
	}
	for _, bin := range []string{"dbus-run-session", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("POPFETCH_REQUIRE_KEYRING") == "1" {
				t.Fatalf("%s not found and POPFETCH_REQUIRE_KEYRING=1: %v", bin, err)
			}
			t.Skipf("%s not found (apt-get install --no-install-recommends gnome-keyring dbus)", bin)
		}
	}
	home := t.TempDir()
	run := filepath.Join(home, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := reexec(t, ctx, []string{"dbus-run-session", "--"}, t.Name(),
		"HOME="+home, "XDG_RUNTIME_DIR="+run, "XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	if err != nil || !strings.Contains(out, "--- PASS") {
		t.Fatalf("inside dbus-run-session: %v\n%s", err, out)
	}
}

func secretServiceChild(t *testing.T) {
	ctx := t.Context()
	// Never touch the real user's keyring: only run inside the private session the parent set up.
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" || !strings.HasPrefix(os.Getenv("HOME"), os.TempDir()) {
		t.Fatal("not inside the private dbus-run-session with a temporary HOME; refusing to start gnome-keyring-daemon")
	}
	// --unlock creates and unlocks the login keyring with the password on stdin; --start then makes
	// sure the secrets component runs. Each prints variables to export.
	for _, args := range [][]string{{"--unlock", "--components=secrets"}, {"--start", "--components=secrets"}} {
		cmd := exec.CommandContext(ctx, "gnome-keyring-daemon", args...)
		cmd.Stdin = strings.NewReader("test-keyring-password")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gnome-keyring-daemon %v: %v", args, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				t.Setenv(k, v)
			}
		}
	}
	const secret = "real-keyring-secret"
	if err := KeyringSet(ctx, nil, "work", secret, 20*time.Second); err != nil {
		t.Fatalf("KeyringSet: %v", err)
	}
	a := account(t, "password_timeout: 20s")
	if s, err := a.Secret(ctx, nil); err != nil || s != secret {
		t.Fatalf("Secret = %q, %v", s, err)
	}
	if err := KeyringDelete(ctx, nil, "work", 20*time.Second); err != nil {
		t.Fatalf("KeyringDelete: %v", err)
	}
	if _, err := a.Secret(ctx, nil); !errors.Is(err, ErrKeyringNotFound) {
		t.Fatalf("Secret after delete = %v, want ErrKeyringNotFound", err)
	}
	if err := KeyringDelete(ctx, nil, "work", 20*time.Second); !errors.Is(err, ErrKeyringNotFound) {
		t.Fatalf("second KeyringDelete = %v, want ErrKeyringNotFound", err)
	}
}
