package main

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/popfetch/popfetch/config"
)

// popfetchBin is the real binary, built once by TestMain.
var popfetchBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "popfetch-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	popfetchBin = filepath.Join(dir, "popfetch")
	out, err := exec.Command("go", "build", "-o", popfetchBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if os.Getenv("POPFETCH_WRITE_RELIABILITY") == "1" {
		if err := relWriteReport(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func writeFile(t *testing.T, name, text string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodAccount = "    host: pop.example.com\n    user: alice\n    deliver: {maildir: /var/mail/alice}\n"

// TestConfigErrorsExit78 runs the real binary on broken configurations: exit status 78, and
// FILE:LINE:COL on stderr.
func TestConfigErrorsExit78(t *testing.T) {
	tests := []struct {
		name, text string
		mode       os.FileMode
		want       []string // on stderr; FILE is the file's path
	}{
		{"unknown key", "accounts:\n  work:\n" + goodAccount + "    prot: 995\n", 0o600,
			[]string{`FILE:6:5: account "work": key "prot": unknown key, did you mean "port"?`}},
		{"several errors", "accounts:\n  work:\n    port: 99999\n    tls: tls\n  b@d: {}\n", 0o600,
			[]string{`FILE:2:3: account "work": key "host": missing`, `FILE:3:11: account "work": key "port": 99999 is out of range`,
				`FILE:4:10: account "work": key "tls": "tls" is not valid`, `FILE:5:3: account name "b@d"`, "popfetch: 6 problems in FILE"}},
		{"inline password readable", "accounts:\n  work:\n" + goodAccount + "    password: hunter2-secret\n", 0o644,
			[]string{`FILE:6:5: account "work": key "password": an inline password in a file that group or others can access (mode 0644); run: chmod 600 FILE`}},
		{"syntax", "accounts:\n  work:\n    host: [\n", 0o600, []string{"FILE:3:"}},
		{"empty", "", 0o600, []string{"FILE: the file is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "bad.yaml", tt.text, tt.mode)
			for _, how := range []struct {
				env  []string
				args []string
			}{
				{nil, []string{"--config", path, "config", "check"}},
				{[]string{"POPFETCH_CONFIG=" + path}, []string{"config", "check"}},
				{nil, []string{"-c", path, "password", "set", "work"}},
			} {
				r := popfetch(t, "pw\n", how.env, how.args...)
				if r.code != exitConfig {
					t.Errorf("%v: exit %d, want 78; stderr:\n%s", how.args, r.code, r.stderr)
				}
				for _, w := range tt.want {
					if w = strings.ReplaceAll(w, "FILE", path); !strings.Contains(r.stderr, w) {
						t.Errorf("%v: stderr does not contain %q:\n%s", how.args, w, r.stderr)
					}
				}
				if strings.Contains(r.stderr+r.stdout, "hunter2") {
					t.Errorf("output shows the password:\n%s", r.stderr)
				}
			}
		})
	}
}

func TestConfigMissingExit78(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.yaml")
	r := popfetch(t, "", nil, "--config", path, "config", "check")
	if r.code != exitConfig || !strings.Contains(r.stderr, path+": no such file") || !strings.Contains(r.stderr, "README") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	// The default path, under XDG_CONFIG_HOME.
	xdg := t.TempDir()
	r = popfetch(t, "", []string{"XDG_CONFIG_HOME=" + xdg}, "config", "check")
	if want := filepath.Join(xdg, "popfetch", "config.yaml") + ": no such file"; r.code != exitConfig || !strings.Contains(r.stderr, want) {
		t.Errorf("default path: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

func TestConfigCheck(t *testing.T) {
	const secret = "hunter2-inline-secret"
	path := writeFile(t, "config.yaml", `
state_dir: /var/lib/popfetch
defaults: {tls: starttls, deliver: {maildir: /var/mail/alice}}
accounts:
  work: {host: pop.example.com, user: alice, password_command: "pass show mail/work"}
  home: {host: pop.example.net, user: alice, password: `+secret+`, max_size: 10MB}
  lists: {host: pop.example.org, user: alice, password_env: LISTS_PASSWORD, tls: implicit}
  other: {host: pop.example.org, user: bob}
`, 0o600)
	r := popfetch(t, "", nil, "--config", path, "config", "check")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"# " + path + ": OK, 4 accounts", "state_dir: /var/lib/popfetch",
		"  home:\n", "(inline)", "(command: pass show mail/work)", "(env LISTS_PASSWORD)", "(keyring)",
		"port:                 110", "port:                 995", "max_size:             10000000",
		"deliver:              maildir /var/mail/alice"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, r.stdout)
		}
	}
	if strings.Index(r.stdout, "  home:") > strings.Index(r.stdout, "  work:") {
		t.Errorf("accounts not sorted:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, secret) {
		t.Errorf("config check shows the password:\n%s", r.stdout)
	}

	r = popfetch(t, "", nil, "--config", path, "--json", "config", "check")
	var out struct {
		Accounts []struct{ Name, Password string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("--json: exit %d, %v:\n%s", r.code, err, r.stdout)
	}
	if len(out.Accounts) != 4 || out.Accounts[0].Name != "home" || out.Accounts[0].Password != "(inline)" {
		t.Errorf("--json: %+v", out)
	}
	if strings.Contains(r.stdout, secret) {
		t.Errorf("--json shows the password")
	}
}

func TestConfigPath(t *testing.T) {
	r := popfetch(t, "", []string{"XDG_CONFIG_HOME=/xdg"}, "config", "path")
	if r.code != 0 || r.stdout != "/xdg/popfetch/config.yaml\n" {
		t.Errorf("default: %+v", r)
	}
	r = popfetch(t, "", []string{"POPFETCH_CONFIG=/env.yaml"}, "config", "path")
	if r.stdout != "/env.yaml\n" {
		t.Errorf("POPFETCH_CONFIG: %+v", r)
	}
	r = popfetch(t, "", []string{"POPFETCH_CONFIG=/env.yaml"}, "--config", "/flag.yaml", "config", "path")
	if r.stdout != "/flag.yaml\n" {
		t.Errorf("--config over POPFETCH_CONFIG: %+v", r)
	}
}

// runInProcess runs popfetch in this process (so that keyring.MockInit applies).
func runInProcess(stdin string, args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"popfetch"}, args...), strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestPasswordSetDelete uses keyring.MockInit (process-global: no t.Parallel).
func TestPasswordSetDelete(t *testing.T) {
	keyring.MockInit()
	path := writeFile(t, "config.yaml", "accounts:\n  work:\n"+goodAccount+
		"  cmd:\n"+goodAccount+"    password_command: [pass, show, x]\n", 0o600)
	ctx := t.Context()

	r := runInProcess("s3cret-from-stdin\r\nignored\n", "--config", path, "password", "set", "work")
	if r.code != 0 || !strings.Contains(r.stderr, `stored the password of account "work"`) {
		t.Fatalf("set: %+v", r)
	}
	if s, err := config.KeyringGet(ctx, nil, "work", 0); err != nil || s != "s3cret-from-stdin" {
		t.Fatalf("keyring holds %q, %v", s, err)
	}
	if strings.Contains(r.stderr+r.stdout, "s3cret") {
		t.Errorf("set shows the secret: %+v", r)
	}

	r = runInProcess("x\n", "--config", path, "password", "set", "cmd")
	if r.code != 0 || !strings.Contains(r.stderr, "warning: account \"cmd\" takes its password from (command: pass show x)") {
		t.Errorf("set for a password_command account: %+v", r)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"pw\n", []string{"password", "set", "nope"}, exitUsage, `no account "nope" in ` + path + " (accounts: cmd, work)"},
		{"", []string{"password", "set", "work"}, exitUsage, "stdin held no password"},
		{"\n", []string{"password", "set", "work"}, exitUsage, "stdin held no password"},
		{"pw\n", []string{"password", "set"}, exitUsage, "usage: popfetch password set ACCOUNT"},
		{"", []string{"password", "delete", "a", "b"}, exitUsage, "usage: popfetch password delete ACCOUNT"},
		{"", []string{"password", "delete", "../x"}, exitUsage, "not an account name"},
		{"", []string{"password", "delete", "work"}, 0, `removed the password of account "work"`},
		{"", []string{"password", "delete", "work"}, 0, `no password was stored for account "work"`},
	} {
		r := runInProcess(tc.stdin, append([]string{"--config", path}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d; stderr %q, want %q", tc.args, r.code, tc.code, r.stderr, tc.want)
		}
	}
	if _, err := config.KeyringGet(ctx, nil, "work", 0); !errors.Is(err, config.ErrKeyringNotFound) {
		t.Errorf("after delete: %v", err)
	}
}

// TestPasswordKeyringNoAnswer: a session bus that accepts the connection and never answers (like a
// keyring stuck on an unlock prompt): the real binary gives up after password_timeout, exit 75.
func TestPasswordKeyringNoAnswer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "bus")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	go func() {
		defer close(conns)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range conns {
			c.Close()
		}
	})
	path := writeFile(t, "config.yaml", "accounts:\n  work:\n"+goodAccount+"    password_timeout: 300ms\n", 0o600)
	r := popfetch(t, "pw\n", []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=" + sock}, "--config", path, "password", "set", "work")
	if r.code != exitTempFail {
		t.Errorf("exit %d, want 75; stderr:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{`account "work": keyring: the system keyring did not answer within 300ms`, "password_command"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, r.stderr)
		}
	}
}

// TestPasswordNoSessionBus: no D-Bus session (cron, ssh): exit 69 with the alternatives.
func TestPasswordNoSessionBus(t *testing.T) {
	path := writeFile(t, "config.yaml", "accounts:\n  work:\n"+goodAccount, 0o600)
	r := popfetch(t, "pw\n", []string{"PATH=" + t.TempDir()}, "--config", path, "password", "set", "work")
	if r.code != exitUnavailable || !strings.Contains(r.stderr, "no system keyring available") ||
		!strings.Contains(r.stderr, "password_command") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestPasswordSecretService runs `popfetch password set/delete` against a real Secret Service: a
// private gnome-keyring-daemon inside dbus-run-session, with a private HOME.
func TestPasswordSecretService(t *testing.T) {
	for _, bin := range []string{"dbus-run-session", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("POPFETCH_REQUIRE_KEYRING") == "1" {
				t.Fatalf("%s not found and POPFETCH_REQUIRE_KEYRING=1: %v", bin, err)
			}
			t.Skipf("%s not found (apt-get install --no-install-recommends gnome-keyring dbus)", bin)
		}
	}
	cfg := writeFile(t, "config.yaml", "accounts:\n  work:\n"+goodAccount+"    password_timeout: 20s\n", 0o600)
	home := t.TempDir()
	run := filepath.Join(home, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	script := `set -e
eval "$(printf keyring-pw | gnome-keyring-daemon --unlock --components=secrets | sed 's/^/export /')"
eval "$(gnome-keyring-daemon --start --components=secrets | sed 's/^/export /')"
printf 'real-secret\n' | "$POPFETCH" --config "$CFG" password set work
"$POPFETCH" --config "$CFG" password delete work
"$POPFETCH" --config "$CFG" password delete work
`
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dbus-run-session", "--", "sh", "-c", script)
	cmd.Env = []string{"HOME=" + home, "XDG_RUNTIME_DIR=" + run, "PATH=" + os.Getenv("PATH"),
		"POPFETCH=" + popfetchBin, "CFG=" + cfg}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	for _, want := range []string{`stored the password of account "work"`, `removed the password of account "work"`,
		`no password was stored for account "work"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not contain %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "real-secret") {
		t.Errorf("output shows the secret:\n%s", out)
	}
}

// TestNoTestingInBinary: the shipped binary does not link package testing (popfetch demo uses the
// pop3test server, which must not pull it in).
func TestNoTestingInBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || strings.HasPrefix(pkg, "testing/") {
			t.Errorf("cmd/popfetch links %s", pkg)
		}
	}
}
