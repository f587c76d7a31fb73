package main

// Overlapping runs (issue 7, part 4): two runs of one account exclude each other; runs of
// different accounts do not.

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

func TestRelOverlapSameAccount(t *testing.T) {
	relTrack(t)
	seeded := relMessages("ov", 3)
	// The first RETR of the first session trickles (1.5 s for the message): the first run holds the
	// lock meanwhile.
	srv, ca := relServer(t, pop3test.Options{Messages: relToServer(seeded), Faults: []pop3test.Fault{
		{Command: "RETR", Arg: "1", Count: 1, Action: pop3test.Drip, Delay: 3 * time.Millisecond}}})
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("acct", srv.Port(), "ca_file: "+ca, "timeout: 10s")
	first := setup.start("sync")
	if !relWaitFor(relRunTimeout, func() bool { return relCountCommands(srv, 0, "RETR 1") > 0 }) {
		t.Fatalf("the first run never sent RETR: %s", first.stderr.String())
	}

	// A second run exits 75 at once.
	second := setup.run("sync")
	if first.exited() {
		t.Fatal("the first run ended before the second was tried; the trickle is too fast")
	}
	line, err := relOneLine(second.stderr, "acct")
	if err != nil {
		t.Error(err)
	}
	if second.code != exitTempFail || !regexp.MustCompile(`held by another popfetch run \(pid \d+\)`).MatchString(line) {
		t.Errorf("second run: exit %d, %q", second.code, line)
	}
	if second.took > 2*time.Second {
		t.Errorf("the second run took %v to give up", second.took)
	}
	relRecord("overlap", "a second `popfetch sync` of an account while a first one runs",
		"exited at once ("+second.took.Round(time.Millisecond).String()+"): `"+strings.TrimPrefix(line, "popfetch: ")+"`", second.code, 0, 0)

	// With --wait, a third run waits for the first to finish, then finds nothing to do.
	third := setup.start("sync", "--wait")
	r1 := first.wait(t)
	r3 := third.wait(t)
	if r1.code != 0 || r3.code != 0 {
		t.Errorf("first run exit %d (%s), waiting run exit %d (%s)", r1.code, r1.stderr, r3.code, r3.stderr)
	}
	if end1, end3 := first.begun.Add(r1.took), third.begun.Add(r3.took); end3.Before(end1) {
		t.Errorf("the waiting run ended before the first")
	}
	tally := relCount(seeded, relReadMaildir(t, relMaildir(setup.dir, "acct")), relServerData(srv))
	if !tally.ok() || tally.delivered != len(seeded) {
		t.Errorf("%v", tally)
	}
	relRecord("overlap", "`popfetch sync --wait` while a first run holds the lock",
		"waited for the first run to end, then synced (nothing left to fetch)", r3.code, tally.lost, tally.duplicated)
}

func TestRelOverlapTwoAccounts(t *testing.T) {
	relTrack(t)
	fault := []pop3test.Fault{{Command: "RETR", Arg: "1", Count: 1, Action: pop3test.Drip, Delay: 2 * time.Millisecond}}
	seededA, seededB := relMessages("a", 2), relMessages("b", 2)
	srvA, ca := relServer(t, pop3test.Options{Messages: relToServer(seededA), Faults: fault})
	srvB, _ := relServer(t, pop3test.Options{Messages: relToServer(seededB), Faults: fault})
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("a", srvA.Port(), "ca_file: "+ca, "timeout: 10s")
	setup.addAt("b", srvB.Port(), "ca_file: "+ca, "timeout: 10s")
	runA := setup.start("sync", "a")
	runB := setup.start("sync", "b")
	both := relWaitFor(relRunTimeout, func() bool {
		return relCountCommands(srvA, 0, "RETR 1") > 0 && relCountCommands(srvB, 0, "RETR 1") > 0
	})
	concurrent := both && !runA.exited() && !runB.exited()
	rA, rB := runA.wait(t), runB.wait(t)
	if !concurrent {
		t.Errorf("the two accounts did not run at the same time")
	}
	if rA.code != 0 || rB.code != 0 {
		t.Errorf("exit %d (%s) and %d (%s)", rA.code, rA.stderr, rB.code, rB.stderr)
	}
	tA := relCount(seededA, relReadMaildir(t, relMaildir(setup.dir, "a")), relServerData(srvA))
	tB := relCount(seededB, relReadMaildir(t, relMaildir(setup.dir, "b")), relServerData(srvB))
	if !tA.ok() || !tB.ok() || tA.delivered != 2 || tB.delivered != 2 {
		t.Errorf("a: %v; b: %v", tA, tB)
	}
	relRecord("overlap", "two `popfetch sync` of different accounts (same state_dir) at once",
		"both ran at the same time (each in RETR while the other was) and both completed", "0, 0", tA.lost+tB.lost, tA.duplicated+tB.duplicated)
}
