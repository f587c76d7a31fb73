//go:build unix

package main

// Hardening (issues 12 and 17): files no one else controls. Another local user (nobody) prepares a
// state directory, a demo directory, a configuration file or its directory, with symbolic links to
// files of root's; popfetch, run by root, must refuse (exit 78, one line naming the path and the fix)
// and leave the victims byte for byte as they were. Tests that need a second user skip unless they
// run as root.

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popfetch/popfetch/config/oauth2test"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// relNobody returns the uid and gid of nobody, skipping the test unless it runs as root.
func relNobody(t *testing.T) (int, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test plays a second user (nobody)")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody:", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// relVictim is a file of root's outside every directory popfetch uses.
type relVictim struct {
	path string
	data []byte
}

func relNewVictim(t *testing.T, name, content string) relVictim {
	t.Helper()
	v := relVictim{path: filepath.Join(t.TempDir(), name), data: []byte(content)}
	if err := os.WriteFile(v.path, v.data, 0o644); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v relVictim) intact(t *testing.T) bool {
	t.Helper()
	got, err := os.ReadFile(v.path)
	if err != nil || !bytes.Equal(got, v.data) {
		t.Errorf("victim %s changed: %q (%v), want %q", v.path, got, err, v.data)
		return false
	}
	return true
}

// relAsNobody creates dir as nobody would (mode 0755, owned by nobody) with symbolic links name ->
// target, owned by nobody too.
func relAsNobody(t *testing.T, dir string, links map[string]string) {
	t.Helper()
	uid, gid := relNobody(t)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	for name, target := range links {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}

// relSticky returns a new directory like /tmp: world-writable and sticky.
func relSticky(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRelHardeningStateDirOfAnotherUser (issue 12 point 2): state_dir in a /tmp-like directory,
// created by nobody beforehand with ACCOUNT.lock and ACCOUNT.state.new linked to root's files.
func TestRelHardeningStateDirOfAnotherUser(t *testing.T) {
	relTrack(t)
	uid, _ := relNobody(t)
	seeded := relMessages("sd", 2)
	srv, ca := relServer(t, pop3test.Options{Messages: relToServer(seeded)})
	lockVictim := relNewVictim(t, "shadow", "root:$6$precious:19000:0:99999:7:::\n")
	newVictim := relNewVictim(t, "authorized_keys", "ssh-ed25519 AAAAC3Nza precious@host\n")
	state := filepath.Join(relSticky(t), "popfetch-state")
	relAsNobody(t, state, map[string]string{"acct.lock": lockVictim.path, "acct.state.new": newVictim.path})
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("acct", srv.Port(), "ca_file: "+ca)
	text, _ := os.ReadFile(setup.path)
	os.WriteFile(setup.path, bytes.Replace(text, []byte("state_dir: "+setup.stateDir), []byte("state_dir: "+state), 1), 0o600)

	r := setup.run("sync")
	line, err := relOneLine(r.stderr, "acct")
	if err != nil {
		t.Error(err)
	}
	if r.code != exitConfig || !strings.Contains(line, "state directory "+state+" is owned by uid "+strconv.Itoa(uid)) ||
		!strings.Contains(line, "remove it") {
		t.Errorf("exit %d, %q; want 78 naming %s, its owner and the fix", r.code, line, state)
	}
	lockVictim.intact(t)
	newVictim.intact(t)
	tally := relCount(seeded, nil, relServerData(srv))
	if !tally.ok() || tally.onServer != len(seeded) || srv.Sessions() != 0 {
		t.Errorf("%v; %d session(s): popfetch must refuse before connecting", tally, srv.Sessions())
	}
	relRecord("hardening", "state directory of another user, with ACCOUNT.lock and ACCOUNT.state.new linked to root's files",
		"refused before connecting, both victims byte-identical: `"+strings.TrimPrefix(line, "popfetch: ")+"`",
		r.code, tally.lost, tally.duplicated)
}

// TestRelHardeningInitConfigDirOfAnotherUser (issue 12 point 2): `popfetch init` adds an account to
// a configuration whose directory nobody controls and whose config.yaml links to a file of root's.
func TestRelHardeningInitConfigDirOfAnotherUser(t *testing.T) {
	relTrack(t)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS})
	ca := writeFile(t, "ca.pem", string(s.CACertPEM()), 0o600)
	victim := relNewVictim(t, "system.yaml", "accounts:\n  work:\n    host: pop.example.com\n    user: alice\n    deliver: {maildir: /var/mail/alice}\n")
	dir := filepath.Join(relSticky(t), "popfetch")
	relAsNobody(t, dir, map[string]string{"config.yaml": victim.path})
	path := filepath.Join(dir, "config.yaml")
	r := popfetch(t, "", nil, "--config", path, "init", "--email", "alice@example.org", "--host", "127.0.0.1",
		"--port", initPort(s), "--ca-file", ca, "--password-command", "pass show mail/org")
	if r.code != exitConfig || !strings.Contains(r.stderr, "configuration directory "+dir+" is owned by uid") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	victim.intact(t)
	relRecord("hardening", "`init` into a configuration directory of another user whose config.yaml links to root's file",
		"refused, nothing written, the victim byte-identical: `"+strings.TrimSpace(strings.TrimPrefix(r.stderr, "popfetch: "))+"`", r.code, 0, 0)
}

// TestRelHardeningMboxStaleDotlock (issue 12 point 9): a stale dotlock (an hour old, as a crashed
// mail reader leaves it) is stolen and the mail delivered; nothing is left behind. The race of two
// programs stealing at once is TestMboxStaleDotlockStealIsRaceFree in the store package (two
// processes, the second's fresh lock must survive the first's late steal).
func TestRelHardeningMboxStaleDotlock(t *testing.T) {
	relTrack(t)
	seeded := relMessages("dl", 3)
	srv, ca := relServer(t, pop3test.Options{Messages: relToServer(seeded)})
	dir := t.TempDir()
	mbox := filepath.Join(dir, "inbox")
	setup := relNewProfile(t, dir)
	setup.addAt("acct", srv.Port(), "ca_file: "+ca, "deliver: {mbox: "+mbox+"}")
	if err := os.WriteFile(mbox+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(mbox+".lock", old, old)
	r := setup.run("sync")
	data, _ := os.ReadFile(mbox)
	n := len(regexp.MustCompile(`(?m)^From `).FindAll(data, -1))
	left, _ := filepath.Glob(mbox + ".lock*")
	if r.code != 0 || n != len(seeded) || len(left) != 0 || len(relServerData(srv)) != 0 {
		t.Errorf("exit %d, %d message(s) in the mbox, left behind %v, %d on the server; stderr:\n%s", r.code, n, left,
			len(relServerData(srv)), r.stderr)
	}
	relRecord("hardening", "mbox with a stale dotlock (an hour old); two programs stealing one at once",
		"the stale lock renamed aside, checked to be the one judged stale (inode, time stamp) and removed, the mail delivered; "+
			"a fresh lock taken by another program in between is given back (two-process test in store)",
		r.code, len(seeded)-min(n, len(seeded)), max(n-len(seeded), 0))
}

// TestRelHardeningDemo (issue 17 point 2): `popfetch demo` with popfetch-demo/ prepared by nobody
// with config.yaml and demo-ca.pem linked to root's files; then a directory of the user's own with the
// same links; then a path with " #".
func TestRelHardeningDemo(t *testing.T) {
	relTrack(t)
	cfgVictim := relNewVictim(t, "bashrc", "alias ls='ls --color'\n")
	caVictim := relNewVictim(t, "ca-certificates.crt", "-----BEGIN CERTIFICATE-----\nprecious\n")
	links := map[string]string{"config.yaml": cfgVictim.path, "demo-ca.pem": caVictim.path}
	dir := filepath.Join(relSticky(t), "popfetch-demo")
	relAsNobody(t, dir, links)
	r := popfetch(t, "", nil, "demo", "--dir", dir)
	if r.code != exitConfig || !strings.Contains(r.stderr, "demo directory "+dir+" is owned by uid") {
		t.Errorf("demo in nobody's directory: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	intact := cfgVictim.intact(t) && caVictim.intact(t)
	line := strings.TrimSpace(strings.TrimPrefix(r.stderr, "popfetch: "))
	code := r.code

	// The user's own directory (0700) with links planted in it: they are replaced, not followed.
	own := filepath.Join(t.TempDir(), "popfetch-demo")
	os.Mkdir(own, 0o700)
	for name, target := range links {
		os.Symlink(target, filepath.Join(own, name))
	}
	r = popfetch(t, "", nil, "demo", "--dir", own)
	if r.code != 0 {
		t.Errorf("demo in the user's directory with planted links: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	intact = cfgVictim.intact(t) && caVictim.intact(t) && intact
	for name := range links {
		if fi, err := os.Lstat(filepath.Join(own, name)); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want a regular file 0600", name, fi, err)
		}
	}

	// A directory whose path holds " #" (a YAML comment when unquoted).
	hash := filepath.Join(t.TempDir(), "my mail #1")
	r = popfetch(t, "", nil, "demo", "--dir", hash)
	got, _ := os.ReadDir(filepath.Join(hash, "Maildir", "new"))
	if r.code != 0 || len(got) != 3 { // popfetch demo serves 3 messages
		t.Errorf("demo --dir %q: exit %d, %d message(s); stderr:\n%s", hash, r.code, len(got), r.stderr)
	}
	relRecord("hardening", "`demo` into popfetch-demo/ of another user, with config.yaml and demo-ca.pem linked to root's files",
		fmt.Sprintf("refused, victims byte-identical (%v): `%s`; in a directory of the user's own the links are replaced, "+
			"not followed (exit %d); a --dir with \" #\" works (paths quoted in the YAML)", intact, line, r.code), code, 0, 0)
}

// TestRelHardeningConfigOthersCanChange (issue 17 point 3): a world-writable configuration with a
// password_command, one owned by nobody, one made world-writable under a running daemon, and an
// OAuth2 token file others may read.
func TestRelHardeningConfigOthersCanChange(t *testing.T) {
	relTrack(t)
	seeded := relMessages("cf", 2)
	srv, ca := relServer(t, pop3test.Options{Messages: relToServer(seeded)})
	dir := t.TempDir()
	marker := filepath.Join(dir, "password-command-ran")
	setup := relNewProfile(t, dir)
	setup.addAt("acct", srv.Port(), "ca_file: "+ca, "password_env: -", "password_command: touch "+marker+" && echo "+relPassword)
	if err := os.Chmod(setup.path, 0o666); err != nil {
		t.Fatal(err)
	}
	r := setup.run("sync")
	_, ran := os.Stat(marker)
	if r.code != exitConfig || ran == nil || !strings.Contains(r.stderr, "chmod go-w "+setup.path) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("0666 config: exit %d, the command ran: %v; stderr:\n%s", r.code, ran == nil, r.stderr)
	}
	line := strings.TrimSpace(strings.TrimPrefix(r.stderr, "popfetch: "))
	code := r.code
	tally := relCount(seeded, nil, relServerData(srv))
	if !tally.ok() || srv.Sessions() != 0 {
		t.Errorf("%v, %d session(s)", tally, srv.Sessions())
	}

	did := "refused before running anything (the password_command did not run): `" + line + "`"
	if os.Geteuid() == 0 {
		uid, gid := relNobody(t)
		os.Chmod(setup.path, 0o644)
		os.Chown(setup.path, uid, gid)
		r = setup.run("sync")
		if _, ran = os.Stat(marker); r.code != exitConfig || ran == nil || !strings.Contains(r.stderr, "is owned by uid "+strconv.Itoa(uid)) {
			t.Errorf("config of nobody: exit %d, the command ran: %v; stderr:\n%s", r.code, ran == nil, r.stderr)
		}
		did += "; owned by nobody: exit " + strconv.Itoa(r.code)
		os.Chown(setup.path, 0, 0)
	}

	// The daemon: a configuration made writable by others is not reloaded; the running one goes on.
	dsrv := daemonServer(t, pop3test.Options{})
	work := daemonAccountFor(t, "work", dsrv, "1h")
	cfg := daemonWriteConfig(t, t.TempDir(), work)
	p := daemonStart(t, cfg, "-v", "daemon")
	p.waitLog(t, "work: no new mail")
	os.Chmod(cfg, 0o666)
	p.signal(t, syscall.SIGHUP)
	hup := p.waitLog(t, "not reloaded")
	if !strings.Contains(hup, "chmod go-w "+cfg) {
		t.Errorf("daemon reload line: %q", hup)
	}
	dsrv.SetMessages([]pop3test.Message{{UID: "u1", Data: []byte(daemonMessage("one"))}})
	p.signal(t, syscall.SIGUSR1)
	daemonWaitDelivered(t, work, 1)
	if c, _ := p.stop(t); c != 0 {
		t.Errorf("daemon exit %d", c)
	}
	did += "; `daemon`: SIGHUP after chmod 666 is not reloaded (the previous profile keeps polling)"

	// The OAuth2 token file, readable by others.
	const token = "oauth-access-token-cf"
	auth := oauth2test.NewServer(t, &oauth2test.Options{AccessToken: token})
	pop := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Token: token, Messages: oauthMessages("o", 1),
		SASL: []string{"OAUTHBEARER"}})
	s := oauthNewSetup(t, auth, pop, "oauthbearer")
	if lr := s.login("--device"); lr.code != 0 {
		t.Fatalf("login: exit %d, stderr:\n%s", lr.code, lr.stderr)
	}
	tokFile := filepath.Join(s.stateDir, "work.oauth2")
	os.Chmod(tokFile, 0o644)
	or := s.run("sync")
	if or.code != exitConfig || !strings.Contains(or.stderr, "chmod go-rwx "+tokFile) || relCountCommands(pop, 0, "AUTH") != 0 {
		t.Errorf("token file 0644: exit %d, %d AUTH command(s), stderr:\n%s", or.code, relCountCommands(pop, 0, "AUTH"), or.stderr)
	}
	did += "; an OAuth2 token file of mode 0644: exit " + strconv.Itoa(or.code) + " (chmod go-rwx)"
	relRecord("hardening", "configuration file writable by others (mode 0666) with a password_command", did, code, tally.lost, tally.duplicated)
}
