package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// load parses a configuration given as text, as if from a private file.
func load(t *testing.T, text string) (*Config, error) {
	t.Helper()
	return parse("test.yaml", []byte(text), 0o600, os.LookupEnv)
}

func mustLoad(t *testing.T, text string) *Config {
	t.Helper()
	cfg, err := load(t, text)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return cfg
}

// TestBadConfigs loads each file of testdata/bad and compares the whole error with the file's
// "# want:" lines, in which FILE stands for the file's path.
func TestBadConfigs(t *testing.T) {
	t.Setenv("HOME", "/home/alice")
	t.Setenv("POPFETCH_TEST_UNSET", "")
	os.Unsetenv("POPFETCH_TEST_UNSET")
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	dir := t.TempDir()
	for _, src := range files {
		t.Run(strings.TrimSuffix(filepath.Base(src), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			if len(want) == 0 {
				t.Fatalf("%s has no # want: line", src)
			}
			// A copy with a known mode: the inline-password check depends on it.
			path := filepath.Join(dir, filepath.Base(src))
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("Load accepted it: %+v", cfg)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error is %T, not *config.Error: %v", err, err)
			}
			got := strings.ReplaceAll(err.Error(), path, "FILE")
			if w := strings.Join(want, "\n"); got != w {
				t.Errorf("error:\n%s\nwant:\n%s", got, w)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	var ce *Error
	if !errors.As(err, &ce) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v (%T), want a *config.Error wrapping fs.ErrNotExist", err, err)
	}
	for _, s := range []string{path + ": no such file", "README", "--config"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

// TestExample loads the README's example (testdata/example.yaml) and checks what every key became.
func TestExample(t *testing.T) {
	t.Setenv("HOME", "/home/alice")
	t.Setenv("XDG_STATE_HOME", "")
	cfg, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Names(), []string{"archive", "forward", "home", "isp", "isp-imap", "lists", "office", "work"}; !slices.Equal(got, want) {
		t.Fatalf("accounts %v, want %v", got, want)
	}
	if cfg.StateDir != "/home/alice/.local/state/popfetch" {
		t.Errorf("StateDir %q", cfg.StateDir)
	}
	work := cfg.Account("work")
	want := Account{
		Name: "work", Host: "pop.example.com", Port: 995, TLS: TLSImplicit,
		CAFile:      "/etc/ssl/certs/ca-certificates.crt",
		Fingerprint: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		User:        "alice@example.com", Auth: "auto",
		Password: PasswordSource{Kind: SourceCommand, Command: []string{"pass", "show", "mail/work"},
			Timeout: 60 * time.Second},
		Keep: true, KeepDays: 30, MaxSize: 10_000_000, Oversize: OversizeSkip, Timeout: 2 * time.Minute,
		Interval: 10 * time.Minute, MaxConnections: 8,
		Deliver:     Destination{Kind: DeliverMaildir, Path: "/home/alice/Maildir"},
		TraceHeader: true, configPath: "testdata/example.yaml", stateDir: "/home/alice/.local/state/popfetch",
		secretEnv: []string{"HOME_PASSWORD", "ISP_PASSWORD"}, // SecretEnv: every password_env of the file
	}
	if !reflect.DeepEqual(*work, want) {
		t.Errorf("work:\n got %+v\nwant %+v", *work, want)
	}

	home := cfg.Account("home")
	if home.Port != 110 || home.TLS != TLSStartTLS || home.Password.Kind != SourceEnv || home.Password.Env != "HOME_PASSWORD" {
		t.Errorf("home: %+v", home)
	}
	if d := home.Deliver; d.Kind != DeliverMDA || !d.Shell || !slices.Equal(d.Command, []string{"sh", "-c", "/usr/bin/procmail -d alice"}) {
		t.Errorf("home deliver: %+v", d)
	}
	// Inherited from defaults:
	if home.MaxSize != 25_000_000 || home.Timeout != time.Minute {
		t.Errorf("home did not inherit defaults: max_size %d timeout %v", home.MaxSize, home.Timeout)
	}

	lists := cfg.Account("lists")
	if lists.Auth != "scram-sha-256" || !lists.Password.Shell || lists.Password.String() != "(command: pass show mail/lists | head -n1)" {
		t.Errorf("lists: %+v %v", lists, lists.Password)
	}
	if n, a := lists.Deliver.Network(); lists.Deliver.Kind != DeliverLMTP || n != "unix" || a != "/run/dovecot/lmtp" || lists.Deliver.Recipient != "alice" {
		t.Errorf("lists deliver: %+v", lists.Deliver)
	}

	archive := cfg.Account("archive")
	if archive.TLS != TLSNone || archive.Port != 1110 || archive.MaxSize != 512*1024 || archive.Oversize != OversizeDelete ||
		!reflect.DeepEqual(archive.Deliver, Destination{Kind: DeliverMbox, Path: "/home/alice/mail/archive"}) || archive.Password.Kind != SourceKeyring {
		t.Errorf("archive: %+v", archive)
	}
	office := cfg.Account("office")
	wantOAuth2 := OAuth2{Provider: OAuth2Microsoft, ClientID: "00001111-aaaa-2222-bbbb-3333cccc4444", Tenant: "common",
		AuthURL:       "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
		TokenURL:      "https://login.microsoftonline.com/common/oauth2/v2.0/token",
		DeviceAuthURL: "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
		Scopes:        []string{"https://outlook.office.com/POP.AccessAsUser.All", "offline_access"}}
	if office.Auth != "xoauth2" || office.Password.Kind != SourceOAuth2 || office.OAuth2 == nil || !reflect.DeepEqual(*office.OAuth2, wantOAuth2) {
		t.Errorf("office: auth %s, password %v, oauth2 %+v", office.Auth, office.Password, office.OAuth2)
	}
	fwd := cfg.Account("forward")
	if n, a := fwd.Deliver.Network(); fwd.Deliver.Kind != DeliverSMTP || n != "tcp" || a != "localhost:25" || fwd.Deliver.Recipient != "bob@localhost" {
		t.Errorf("forward deliver: %+v", fwd.Deliver)
	}
}

// TestReadmeExample checks that the README's "## Configuration" section shows testdata/example.yaml
// verbatim, and that the example and the README use every key Load knows.
func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Configuration\n")
	if !ok {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	_, block, ok := strings.Cut(section, "```yaml\n")
	block, _, ok2 := strings.Cut(block, "```\n")
	if !ok || !ok2 {
		t.Fatal("the Configuration section has no ```yaml block")
	}
	if block != string(example) {
		t.Errorf("the README's example differs from testdata/example.yaml; copy one to the other")
	}
	keys := slices.Concat(topKeys, accountKeys, deliverKeys, addressKeys, oauth2Keys, gmailKeys)
	for _, k := range keys {
		if !strings.Contains(string(example), k+":") {
			t.Errorf("the example does not show the key %q", k)
		}
		if !strings.Contains(section, "`"+k+"`") {
			t.Errorf("the README's Configuration section does not document the key `%s`", k)
		}
	}
}

func TestDefaultsAndInheritance(t *testing.T) {
	cfg := mustLoad(t, `
defaults:
  password_env: SHARED
  tls: starttls
  keep: true
  deliver: {maildir: /m}
accounts:
  a: {host: h, user: u}
  b: {host: h, user: u, password_command: [get, b], tls: implicit, deliver: {mbox: /mb}, received_header: false}
  c: {host: h, user: u, tls: none, auth: apop, allow_plaintext_auth: true}
`)
	a, b, c := cfg.Account("a"), cfg.Account("b"), cfg.Account("c")
	if a.Password.Kind != SourceEnv || a.Port != 110 || !a.Keep || a.Deliver.Path != "/m" || !a.TraceHeader {
		t.Errorf("a: %+v", a)
	}
	if b.Password.Kind != SourceCommand || b.Password.Env != "" || b.Port != 995 || b.Deliver.Kind != DeliverMbox || b.TraceHeader {
		t.Errorf("b: %+v", b)
	}
	if c.Port != 110 || c.Auth != "apop" {
		t.Errorf("c: %+v", c)
	}
	// Errors in defaults: are reported once, not once per account.
	_, err := load(t, "defaults: {port: x}\naccounts:\n  a: {host: h, user: u, deliver: {maildir: /m}}\n  b: {host: h, user: u, deliver: {maildir: /m}}\n")
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), "test.yaml:1:18: defaults: key \"port\"") {
		t.Errorf("defaults error: %v", err)
	}
}

func TestPaths(t *testing.T) {
	t.Setenv("HOME", "/home/alice")
	t.Setenv("MAILROOT", "/srv/mail")
	t.Setenv("XDG_STATE_HOME", "/xdg/state")
	cfg := mustLoad(t, `
accounts:
  a: {host: h, user: u, deliver: {maildir: ~/Mail/}}
  b: {host: h, user: u, deliver: {mbox: "${MAILROOT}/b"}}
  c: {host: h, user: u, deliver: {lmtp: {address: "unix:~/lmtp", recipient: u}}}
`)
	for name, want := range map[string]string{"a": "/home/alice/Mail", "b": "/srv/mail/b"} {
		if got := cfg.Account(name).Deliver.Path; got != want {
			t.Errorf("%s: path %q, want %q", name, got, want)
		}
	}
	if got := cfg.Account("c").Deliver.Address; got != "unix:/home/alice/lmtp" {
		t.Errorf("c: address %q", got)
	}
	if cfg.StateDir != "/xdg/state/popfetch" {
		t.Errorf("StateDir %q", cfg.StateDir)
	}
	t.Setenv("XDG_CONFIG_HOME", "/xdg/config")
	if p, _ := DefaultPath(); p != "/xdg/config/popfetch/config.yaml" {
		t.Errorf("DefaultPath %q", p)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	if p, _ := DefaultPath(); p != "/home/alice/.config/popfetch/config.yaml" {
		t.Errorf("DefaultPath without XDG_CONFIG_HOME %q", p)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1234": 1234, "10MB": 10_000_000, "10 mb": 10_000_000,
		"512KiB": 524288, "1.5GiB": 1610612736, "2kB": 2000, "7B": 7, "1GB": 1e9} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "10M", "-1", "1e3", "10 MBs", "99999999999999999999"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

// TestInlinePasswordNeverShown: the inline password is usable but never printed, whatever the verb.
func TestInlinePasswordNeverShown(t *testing.T) {
	const secret = "hunter2-inline"
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	text := "accounts:\n  w: {host: h, user: u, password: " + secret + ", deliver: {maildir: /m}}\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Account("w")
	if s, err := a.Secret(t.Context(), nil); err != nil || s != secret {
		t.Fatalf("Secret = %q, %v", s, err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%v %+v %#v %s %v", a, *a, *a, a.Password, a.Password)
	if strings.Contains(b.String(), secret) {
		t.Errorf("formatting shows the password: %s", b.String())
	}
	if !strings.Contains(b.String(), "(inline)") {
		t.Errorf("formatting does not say (inline): %s", b.String())
	}

	// The same file readable by others is refused, without showing the password.
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Errorf("Load(0640 file with password) = %v", err)
	}
}

func TestSecretNeverInErrors(t *testing.T) {
	for _, text := range []string{
		"accounts:\n  w: {host: h, user: u, password: [hunter2-list], deliver: {maildir: /m}}\n",
		"accounts:\n  w: {host: h, user: u, password: {hunter2-map: 1}, deliver: {maildir: /m}}\n",
		"accounts:\n  w: {host: h, user: u, password: hunter2-x, password_env: X, deliver: {maildir: /m}}\n",
		"accounts:\n  w: {host: h, user: u, pasword: hunter2-typo, deliver: {maildir: /m}}\n",
	} {
		_, err := load(t, text)
		if err == nil {
			t.Errorf("accepted %q", text)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

// TestInterval: the daemon's poll interval defaults to 5m, is inherited from defaults:, and must be
// a duration of at least 1s.
func TestInterval(t *testing.T) {
	cfg := mustLoad(t, `
defaults: {interval: 90s, deliver: {maildir: /m}}
accounts:
  a: {host: h, user: u}
  b: {host: h, user: u, interval: 1s}
`)
	if a, b := cfg.Account("a").Interval, cfg.Account("b").Interval; a != 90*time.Second || b != time.Second {
		t.Errorf("intervals %v, %v; want 1m30s, 1s", a, b)
	}
	cfg = mustLoad(t, "accounts:\n  a: {host: h, user: u, deliver: {maildir: /m}}\n")
	if got := cfg.Account("a").Interval; got != 5*time.Minute {
		t.Errorf("default interval %v, want 5m", got)
	}
	for text, want := range map[string]string{
		"500ms": `test.yaml:2:59: account "a": key "interval": 500ms is too short; poll at most once a second (1s or more)`,
		"0s":    `test.yaml:2:59: account "a": key "interval": must be more than 0`,
		"5":     `test.yaml:2:59: account "a": key "interval": must be a duration such as 60s, 2m or 1m30s, not "5"`,
		"often": `test.yaml:2:59: account "a": key "interval": must be a duration such as 60s, 2m or 1m30s, not "often"`,
	} {
		_, err := load(t, "accounts:\n  a: {host: h, user: u, deliver: {maildir: /m}, interval: "+text+"}\n")
		if err == nil || err.Error() != want {
			t.Errorf("interval: %s: error %v\nwant %s", text, err, want)
		}
	}
}
