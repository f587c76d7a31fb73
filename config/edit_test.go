package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testProfile(name string) Profile {
	return Profile{Name: name, Host: "pop.example.org", Port: 995, TLS: TLSImplicit, User: "alice@example.org",
		PasswordCommand: "pass show mail/org", Maildir: "/var/mail/org", Comments: []string{"found by a test"}}
}

// onlyEntries checks that dir holds exactly names: no temporary file is left behind.
func onlyEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	es, _ := os.ReadDir(dir)
	var got []string
	for _, e := range es {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func TestAddAccountCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "popfetch")
	path := filepath.Join(dir, "config.yaml")
	created, err := AddAccount(path, nil, testProfile("org"), false)
	if err != nil || !created {
		t.Fatalf("created %v, %v", created, err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Account("org")
	if a == nil || a.Host != "pop.example.org" || a.Port != 995 || a.Password.CommandString() != "pass show mail/org" ||
		a.Deliver.Path != "/var/mail/org" {
		t.Fatalf("account %+v", a)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "# popfetch configuration") || !strings.Contains(string(data), "# found by a test\n") {
		t.Errorf("file:\n%s", data)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	onlyEntries(t, dir, "config.yaml")
}

// Extending a file keeps every byte of it, through a symbolic link to the real file; the other
// accounts are unchanged (Equal); the same name needs force.
func TestAddAccountExtends(t *testing.T) {
	dir := t.TempDir()
	const before = "# mine\naccounts:\n  work:   # the office\n    host: pop.example.com\n    user: alice\n    deliver: {maildir: /m}\n\n# the end\ndefaults:\n  keep: true\n"
	real := filepath.Join(dir, "real.yaml")
	if err := os.WriteFile(real, []byte(before), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config.yaml")
	if err := os.Symlink("real.yaml", link); err != nil {
		t.Fatal(err)
	}
	old, err := Load(link)
	if err != nil {
		t.Fatal(err)
	}
	if created, err := AddAccount(link, old, testProfile("org"), false); err != nil || created {
		t.Fatalf("created %v, %v", created, err)
	}
	data, _ := os.ReadFile(real)
	after := string(data)
	if !strings.HasPrefix(after, before[:strings.Index(before, "\n# the end")]) || !strings.HasSuffix(after, "\n# the end\ndefaults:\n  keep: true\n") ||
		!strings.Contains(after, "    deliver: {maildir: /m}\n  org:\n    # found by a test\n    host: pop.example.org\n") {
		t.Errorf("file:\n%s", after)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the symbolic link was replaced")
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's 0640", fi.Mode().Perm())
	}
	cfg, err := Load(link)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Account("work").Equal(old.Account("work")) || !cfg.Account("org").Keep {
		t.Errorf("accounts after: %v", cfg.Names())
	}

	// Again: refused without force, the file untouched; with force the account is replaced.
	if _, err := AddAccount(link, cfg, testProfile("org"), false); !errors.Is(err, ErrAccountExists) {
		t.Errorf("same name: %v, want ErrAccountExists", err)
	}
	if data, _ := os.ReadFile(real); string(data) != after {
		t.Error("a refused AddAccount changed the file")
	}
	p := testProfile("work")
	p.User = "bob"
	if _, err := AddAccount(link, cfg, p, true); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load(link)
	if err != nil || cfg.Account("work").User != "bob" || len(cfg.Accounts) != 2 {
		t.Errorf("after force: %v %v", cfg, err)
	}
	onlyEntries(t, dir, "config.yaml", "real.yaml")
}

// A flow-style file is rewritten by node editing, comments kept.
func TestAddAccountFlowStyle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flow.yaml")
	if err := os.WriteFile(path, []byte("accounts: {work: {host: pop.example.com, user: alice, deliver: {maildir: /m}}}  # one line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AddAccount(path, old, testProfile("org"), false); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	cfg, err := Load(path)
	if err != nil || len(cfg.Accounts) != 2 || !strings.Contains(string(data), "# one line") {
		t.Errorf("%v\n%s", err, data)
	}
}

// A file AddAccount cannot extend without breaking it: nothing written, ErrCannotAdd.
func TestAddAccountCannot(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	const before = "accounts:\n  work:\n    host: h\n    user: u\n    deliver: {maildir: /m}\ndefaults:\n  password_env: PW\n"
	if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p := testProfile("org")
	p.Port = 0 // port: 0 does not load: neither way of adding the account gives a valid file
	if _, err := AddAccount(path, old, p, false); !errors.Is(err, ErrCannotAdd) || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("got %v, want ErrCannotAdd", err)
	}
	if data, _ := os.ReadFile(path); string(data) != before {
		t.Errorf("file changed:\n%s", data)
	}
	onlyEntries(t, dir, "config.yaml")
}

func TestCheckProfile(t *testing.T) {
	good, err := testProfile("org").Document()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckProfile(good); err != nil {
		t.Errorf("good profile: %v", err)
	}
	p := testProfile("org")
	p.Maildir = "relative/dir"
	bad, _ := p.Document()
	if err := CheckProfile(bad); err == nil || !strings.HasPrefix(err.Error(), "the new profile would not load: profile:") ||
		!strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("bad profile: %v", err)
	}
}

func TestIsBlank(t *testing.T) {
	dir := t.TempDir()
	for text, want := range map[string]bool{"": true, "# only\n\n---\n": true, "accounts:\n": false} {
		path := filepath.Join(dir, "f")
		os.WriteFile(path, []byte(text), 0o600)
		if got := IsBlank(path); got != want {
			t.Errorf("IsBlank(%q) = %v", text, got)
		}
	}
	if IsBlank(filepath.Join(dir, "missing")) {
		t.Error("a missing file is blank")
	}
}

// Equal: the same settings read from two files are equal; any setting differing makes them unequal.
func TestAccountEqual(t *testing.T) {
	dir := t.TempDir()
	load := func(name, text string) *Account {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Account("a")
	}
	const base = "accounts:\n  a:\n    host: h\n    user: u\n    password: secret1\n    deliver: {maildir: /m}\n"
	a := load("1.yaml", base)
	b := load("2.yaml", base+"  b:\n    host: h\n    user: u\n    password_env: OTHER\n    deliver: {maildir: /m}\n")
	if !a.Equal(b) || !a.Equal(a) {
		t.Error("the same account in two files is not Equal")
	}
	for _, change := range [][2]string{{"host: h", "host: h2"}, {"password: secret1", "password: secret2"},
		{"deliver: {maildir: /m}", "deliver: {maildir: /n}"}, {"user: u", "user: u\n    keep: true"}} {
		c := load("3.yaml", strings.Replace(base, change[0], change[1], 1))
		if a.Equal(c) || c.Equal(a) {
			t.Errorf("%q -> %q: still Equal", change[0], change[1])
		}
	}
	var nilAcct *Account
	if !nilAcct.Equal(nil) || a.Equal(nil) || nilAcct.Equal(a) {
		t.Error("nil handling")
	}
}
