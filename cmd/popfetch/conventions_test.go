package main

// CLI conventions a user reaches for: --version and version, global flags after the command, usage
// errors with a suggestion, and every error line naming its account.

import (
	"encoding/json"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := popfetch(t, "", nil, args...)
		expectCode(t, r, 0)
		if !regexp.MustCompile(`(?m)^popfetch \S+\n(revision [0-9a-f]+.*\n)?built with go\S+ for \w+/\w+\n$`).MatchString(r.stdout) || r.stderr != "" {
			t.Errorf("%v: stdout %q stderr %q", args, r.stdout, r.stderr)
		}
	}
	for _, args := range [][]string{{"version", "--json"}, {"--json", "version"}, {"--version", "--json"}} {
		r := popfetch(t, "", nil, args...)
		expectCode(t, r, 0)
		var v map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("%v: not JSON: %q", args, r.stdout)
		}
		for _, k := range []string{"version", "go", "os", "arch", "modified"} {
			if _, ok := v[k]; !ok {
				t.Errorf("%v: no %q in %s", args, k, r.stdout)
			}
		}
	}
	expectCode(t, popfetch(t, "", nil, "version", "extra"), exitUsage)
}

// TestGlobalFlagsAfterCommand: a global flag means the same before and after the command's name.
func TestGlobalFlagsAfterCommand(t *testing.T) {
	t.Parallel()
	s := newServer(t, numbered(2), nil)
	p := newProfile(t)
	p.add("work", s, "keep: true")

	// -v after the command: a summary line that a run without -v does not print.
	r := p.run("sync", "-v")
	expectCode(t, r, 0)
	if !strings.HasPrefix(r.stderr, "work: 2 fetched") {
		t.Errorf("sync -v: stderr %q, want the summary line", r.stderr)
	}
	r = p.run("sync")
	expectCode(t, r, 0)
	if r.stderr != "" {
		t.Errorf("sync without -v: stderr %q", r.stderr)
	}
	before, after := p.run("-v", "sync"), p.run("sync", "-v")
	if before.stderr != "work: no new mail (2 on the server)\n" || !before.same(after) {
		t.Errorf("-v sync and sync -v differ: %+v, %+v", before, after)
	}

	// --config after the command, also for a command with an argument.
	r = popfetch(t, "", nil, "list", "-c", p.path, "work")
	expectCode(t, r, 0)
	if !strings.Contains(r.stdout, "uid-2") {
		t.Errorf("list -c FILE work: %q", r.stdout)
	}
	// --json after the command: one JSON object per account (check: exit 1, no new mail).
	r = popfetch(t, "", nil, "check", "--json", "--config", p.path)
	expectCode(t, r, exitNoMail)
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["account"] != "work" {
		t.Errorf("check --json: %q (%v)", r.stdout, err)
	}
	// A subcommand too.
	r = popfetch(t, "", nil, "config", "check", "-c", p.path)
	expectCode(t, r, 0)
}

func TestUsageErrorsSuggest(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"synk"}, `unknown command "synk"; did you mean "sync"?`},
		{[]string{"lsit"}, `did you mean "list"?`},
		{[]string{"config", "chek"}, `unknown command "chek"; did you mean "check"?`},
		{[]string{"sync", "--verbos"}, "did you mean --verbose?"},
		{[]string{"--jsno", "sync"}, "did you mean --json?"},
		{[]string{"frobnicate"}, `unknown command "frobnicate" (see popfetch --help)`},
	} {
		r := popfetch(t, "", nil, tt.args...)
		expectCode(t, r, exitUsage)
		if !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
			t.Errorf("%v: stderr %q stdout %q, want one line containing %q", tt.args, r.stderr, r.stdout, tt.want)
		}
	}
}

// TestErrorsNameTheAccount: list, cat and serverinfo name the account in their error line, as sync
// does.
func TestErrorsNameTheAccount(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now: connection refused
	p := newProfile(t)
	p.addAt("work", port, "timeout: 5s")
	for _, args := range [][]string{{"list", "work"}, {"cat", "work", "1"}, {"serverinfo", "work"}, {"sync", "work"}} {
		r := p.run(args...)
		expectCode(t, r, exitTempFail)
		if !strings.HasPrefix(r.stderr, "popfetch: work: ") || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, strconv.Itoa(port)) {
			t.Errorf("%v: stderr %q, want one line \"popfetch: work: …\"", args, r.stderr)
		}
	}
}
