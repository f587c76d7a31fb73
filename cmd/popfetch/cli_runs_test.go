package main

import (
	"os"
	"strings"
	"testing"
)

// TestInProcessRunsDoNotShareFlags: urfave/cli writes an environment variable's value into the flag
// it parses it for, so a flag value shared at package level carried POPFETCH_JOBS=0 of one run into
// the next run in the same process (a test, an embedding program) as --jobs 0. Each run has its own
// flags. (t.Setenv: no t.Parallel.)
func TestInProcessRunsDoNotShareFlags(t *testing.T) {
	s := newServer(t, numbered(2), nil)
	p := newProfile(t)
	p.add("work", s)
	t.Setenv("POPFETCH_JOBS", "0")
	if r := runInProcess("", "--config", p.path, "sync"); r.code != exitUsage || !strings.Contains(r.stderr, "--jobs must be at least 1") {
		t.Fatalf("POPFETCH_JOBS=0: exit %d, want 64; stderr:\n%s", r.code, r.stderr)
	}
	os.Unsetenv("POPFETCH_JOBS")
	for _, cmd := range []string{"check", "sync"} {
		if r := runInProcess("", "--config", p.path, cmd); r.code != exitOK {
			t.Errorf("%s after a run with POPFETCH_JOBS=0, without it: exit %d, want 0; stderr:\n%s", cmd, r.code, r.stderr)
		}
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages left on the server, want 0", n)
	}
}
