package main

// Secrets (issue 7, part 5): a known password and OAuth token go through every command with
// --trace -v --json, on success and on errors; they must appear in no output, no file popfetch
// wrote and no command line of popfetch or its children. Files popfetch creates are 0600,
// directories 0700.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

const (
	relToken    = "Tok-5d2e8b41-OAUTH-ACCESS-qq"
	relTokenEnv = "REL_POPFETCH_TOKEN"
)

var relBase64Run = regexp.MustCompile(`[A-Za-z0-9+/=_-]{12,}`)

// relLeak reports where a secret shows in b: as it is, or inside a base64 run (PLAIN, XOAUTH2 and
// OAUTHBEARER send it base64-encoded).
func relLeak(b []byte) string {
	for _, secret := range []string{relPassword, relToken} {
		if i := strings.Index(string(b), secret); i >= 0 {
			return fmt.Sprintf("%q in clear at offset %d", secret, i)
		}
		for _, run := range relBase64Run.FindAll(b, -1) {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
				if d, err := enc.DecodeString(string(run)); err == nil && strings.Contains(string(d), secret) {
					return fmt.Sprintf("%q base64-encoded (%.40s...)", secret, run)
				}
			}
		}
	}
	return ""
}

func TestRelSecrets(t *testing.T) {
	relTrack(t)
	if relLeak([]byte("C: AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00"+relPassword)))) == "" {
		t.Fatal("relLeak misses a base64-encoded secret")
	}
	seeded := relMessages("sec", 2)
	good, ca := relServer(t, pop3test.Options{Messages: relToServer(seeded), Token: relToken})
	wrong, _ := relServer(t, pop3test.Options{Messages: relToServer(seeded), Password: "another-password", Token: "another-token"})
	drop, _ := relServer(t, pop3test.Options{Messages: relToServer(seeded), Token: relToken, Faults: []pop3test.Fault{
		{Command: "PASS", Action: pop3test.Drop}, {Command: "AUTH", Action: pop3test.DropAfter, Bytes: 0}, {Command: "APOP", Action: pop3test.Drop}}})
	afterLogin, _ := relServer(t, pop3test.Options{Messages: relToServer(seeded), Token: relToken, Faults: []pop3test.Fault{
		{Command: "RETR", Action: pop3test.DropAfter, Bytes: 30}, {Command: "LIST", Action: pop3test.DropAfter, Bytes: 5}}})

	dir := t.TempDir()
	// The password comes from a command (the secret is in the script, the user's file: the command
	// line names the script, not the secret) or from the environment; the token from the environment.
	capture := filepath.Join(dir, "captured")
	pwScript := filepath.Join(dir, "password.sh")
	if err := os.WriteFile(pwScript, []byte(fmt.Sprintf("#!/bin/sh\ntr '\\0' ' ' < /proc/$$/cmdline >> '%s/password-command.cmdline'; echo >> '%s/password-command.cmdline'\necho '%s'\n",
		capture, capture, relPassword)), 0o700); err != nil {
		t.Fatal(err)
	}
	badScript := filepath.Join(dir, "bad-password.sh")
	if err := os.WriteFile(badScript, []byte("#!/bin/sh\necho '"+relPassword+"'\nexit 3\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	// The MDA records its own command line and popfetch's (its parent's) while it runs.
	mdaOut := filepath.Join(dir, "mda-out")
	for _, d := range []string{capture, mdaOut} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mda := filepath.Join(dir, "mda.sh")
	if err := os.WriteFile(mda, []byte(fmt.Sprintf(`#!/bin/sh
tr '\0' ' ' < /proc/$PPID/cmdline >> '%s/popfetch.cmdline'; echo >> '%s/popfetch.cmdline'
tr '\0' ' ' < /proc/$$/cmdline >> '%s/mda.cmdline'; echo >> '%s/mda.cmdline'
cat > '%s/msg.'$$
`, capture, capture, capture, capture, mdaOut)), 0o700); err != nil {
		t.Fatal(err)
	}

	type acct struct{ name, auth, source string }
	accts := []acct{
		{"user", "user", fmt.Sprintf("password_command: [%q]", pwScript)},
		{"plain", "plain", "password_env: " + relPasswordEnv},
		{"login", "login", fmt.Sprintf("password_command: %q", pwScript+" | cat")},
		{"scram", "scram-sha-256", "password_env: " + relPasswordEnv},
		{"cram", "cram-md5", "password_env: " + relPasswordEnv},
		{"apop", "apop", "password_env: " + relPasswordEnv},
		{"xoauth2", "xoauth2", "password_env: " + relTokenEnv},
		{"oauthbearer", "oauthbearer", "password_env: " + relTokenEnv},
		{"auto", "-", "password_env: " + relPasswordEnv},
	}
	setup := relNewProfile(t, dir)
	var names []string
	for _, server := range []struct {
		tag string
		srv *pop3test.Server
	}{{"", good}, {"wrong-", wrong}, {"drop-", drop}, {"broken-", afterLogin}} {
		for _, a := range accts {
			kv := []string{"ca_file: " + ca, "auth: " + a.auth, "keep: true", "password_env: -", a.source}
			if a.name == "user" {
				kv = append(kv, fmt.Sprintf("deliver: {mda: [%q]}", mda))
			}
			setup.addAt(server.tag+a.name, server.srv.Port(), kv...)
			names = append(names, server.tag+a.name)
		}
	}
	setup.addAt("badcommand", good.Port(), "ca_file: "+ca, "password_env: -", fmt.Sprintf("password_command: [%q]", badScript))
	names = append(names, "badcommand")
	setup.env = append(setup.env, relTokenEnv+"="+relToken)

	var runs []struct {
		args []string
		r    result
	}
	do := func(args ...string) result {
		r := setup.run(args...)
		runs = append(runs, struct {
			args []string
			r    result
		}{args, r})
		return r
	}
	flags := []string{"--trace", "-v", "--json"}
	r := do(append(flags, "sync")...)
	if r.code == 0 {
		t.Errorf("sync of every account: exit 0, want a failure (some accounts are refused)")
	}
	for _, a := range accts {
		if !strings.Contains(r.stdout, fmt.Sprintf(`"account":%q,"listed":2,"fetched":2`, a.name)) {
			t.Errorf("account %s did not fetch its messages:\n%s\n%s", a.name, r.stdout, r.stderr)
		}
	}
	// Each failure is the one the case wants: the secret was refused, or the connection dropped.
	codes := map[string]int{}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for {
		var sum struct {
			Account  string `json:"account"`
			ExitCode int    `json:"exit_code"`
		}
		if err := dec.Decode(&sum); err != nil {
			break
		}
		codes[sum.Account] = sum.ExitCode
	}
	for _, name := range names {
		want := 0
		switch {
		case strings.HasPrefix(name, "wrong-"):
			want = exitNoPerm
		case strings.HasPrefix(name, "drop-"), strings.HasPrefix(name, "broken-"):
			want = exitTempFail
		case name == "badcommand":
			want = exitConfig
		}
		if got, ok := codes[name]; !ok || got != want {
			t.Errorf("account %s: exit code %d (reported: %v), want %d", name, got, ok, want)
		}
	}
	do(append(flags, "sync")...) // nothing new: a second pass over the same code with a state
	do("--trace", "-v", "sync", "--no-keep", "auto")
	do(append(flags, "check")...)
	for _, name := range names {
		do(append(flags, "list", name)...)
		do(append(flags, "cat", name, "1")...)
		do(append(flags, "serverinfo", name)...)
	}
	do(append(flags, "config", "check")...)
	do("config", "check")
	do("--trace", "-v", "sync")

	for _, run := range runs {
		if where := relLeak([]byte(run.r.stdout + run.r.stderr)); where != "" {
			t.Errorf("popfetch %v shows the secret: %s", run.args, where)
		}
	}
	if !strings.Contains(runs[0].r.stderr, "AUTH") || !strings.Contains(runs[0].r.stderr, "<redacted>") {
		t.Errorf("--trace shows no redacted AUTH exchange; is it on?\n%.2000s", runs[0].r.stderr)
	}

	// Files popfetch wrote: no secret; modes 0600 and 0700 for what it created (the state directory
	// and the maildirs; the test made the rest).
	created := map[string]bool{setup.stateDir: true}
	for _, n := range names {
		created[relMaildir(dir, n)] = true
	}
	created[filepath.Join(dir, "mail")] = true
	checked := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == pwScript || path == badScript || path == mda {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		ours := false
		for c := range created {
			if path == c || strings.HasPrefix(path, c+"/") {
				ours = true
			}
		}
		if ours {
			checked++
			if d.IsDir() && info.Mode().Perm() != 0o700 || !d.IsDir() && info.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v", path, info.Mode().Perm())
			}
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if where := relLeak(b); where != "" {
			t.Errorf("%s holds the secret: %s", path, where)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Command lines, as the MDA saw them while popfetch was running it.
	cmdlines := 0
	for _, f := range []string{"popfetch.cmdline", "mda.cmdline", "password-command.cmdline"} {
		b, err := os.ReadFile(filepath.Join(capture, f))
		if err != nil {
			t.Fatalf("the MDA did not record command lines: %v", err)
		}
		if !strings.Contains(string(b), map[string]string{"popfetch.cmdline": popfetchBin, "mda.cmdline": mda, "password-command.cmdline": pwScript}[f]) {
			t.Errorf("%s does not show the expected command:\n%s", f, b)
		}
		cmdlines += strings.Count(string(b), "\n")
	}
	t.Logf("%d runs checked, %d files and directories of popfetch's checked for modes, %d command lines", len(runs), checked, cmdlines)

	var argsList []string
	for _, run := range runs[:4] {
		argsList = append(argsList, strings.Join(run.args, " "))
	}
	relRecord("secrets", fmt.Sprintf("%d runs: sync, check, list, cat, serverinfo, config check with --trace -v --json; 9 auth methods (user, plain, login, scram-sha-256, cram-md5, apop, xoauth2, oauthbearer, auto), each on a good server, a wrong password, a connection dropped at login and one dropped after login; a password_command that fails after printing the password", len(runs)),
		"the password and the token (in clear or base64) appear in no stdout or stderr, and --trace shows `<redacted>`", "0 good, 77 wrong password, 75 dropped, 78 failing password_command", 0, 0)
	relRecord("secrets", fmt.Sprintf("every file under the test's directories after those runs (%d created by popfetch)", checked),
		"no file holds a secret; popfetch's files are 0600 and its directories 0700", "-", 0, 0)
	relRecord("secrets", fmt.Sprintf("/proc/PID/cmdline of popfetch, of its MDA child and of its password_command child, read by those children while running (%d lines)", cmdlines),
		"neither holds a secret; password_command children see the command (its source), never the secret", "-", 0, 0)
}
