package main

// Crash trials (issue 7, part 1): kill the real `popfetch sync` with SIGKILL or SIGTERM at random
// moments, run it again to completion, and check that every message arrived exactly once.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test/dovecot"
)

// relCrashWorkers is how many trials run at once (each with its own server and directories).
const relCrashWorkers = 4

// relCrashTrials is the number of trials per mode: 75 in CI (of which at least 50 are usually
// killed before they finish), 250 with POPFETCH_LONG=1.
func relCrashTrials() int {
	if relLong() {
		return 250
	}
	return 75
}

// relKillPoint says when a trial's run is signalled: after the server received its cmd-th line, or
// once the maildir's tmp/ or new/ holds files messages or the state file holds records journal
// records (all zero: a delay after the start), then after delay.
type relKillPoint struct {
	cmd      int
	tmp, new int // files in the maildir's tmp/ (delivery, before the barrier) or new/ (renames, after the journal)
	records  int // records in the state journal (pending, then delivered)
	delay    time.Duration
}

// relTrialOutcome is what one trial saw.
type relTrialOutcome struct {
	at        string // the line the server had received last when the signal was sent ("start")
	firstCode int    // exit status of the signalled run
	lost, dup int    // in the final check
	err       error
}

// relCrashWorker runs trials against its own pop3test server.
type relCrashWorker struct {
	t      *testing.T
	srv    *pop3test.Server
	ca     string
	dir    string
	keep   bool
	signal syscall.Signal
}

func TestRelCrashKill(t *testing.T) {
	relTrack(t)
	for _, keep := range []bool{false, true} {
		t.Run(relModeName(keep), func(t *testing.T) { relCrashTrialsRun(t, keep, syscall.SIGKILL, relCrashTrials()) })
	}
}

func TestRelCrashTerm(t *testing.T) {
	relTrack(t)
	n := relCrashTrials() / 2
	for _, keep := range []bool{false, true} {
		t.Run(relModeName(keep), func(t *testing.T) { relCrashTrialsRun(t, keep, syscall.SIGTERM, n) })
	}
}

func relModeName(keep bool) string {
	if keep {
		return "keep"
	}
	return "delete"
}

func relCrashTrialsRun(t *testing.T, keep bool, sig syscall.Signal, trials int) {
	if testing.Short() {
		t.Skip("spawns hundreds of processes; skipped with -short")
	}
	seed := relSeed(t)
	t.Logf("seed: POPFETCH_CRASH_SEED=%d", seed)
	workers := make([]*relCrashWorker, relCrashWorkers)
	for i := range workers {
		srv, ca := relServer(t, pop3test.Options{})
		workers[i] = &relCrashWorker{t: t, srv: srv, ca: ca, dir: t.TempDir(), keep: keep, signal: sig}
	}
	// The number of lines the server receives in a whole run: a fixed part and one or two per
	// message (RETR; DELE in delete mode), measured once.
	fixed, perMsg, err := workers[0].measure()
	if err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(seed, uint64(sig)))
	type job struct {
		n  int // trial number
		k  int // messages
		kp relKillPoint
	}
	jobs := make([]job, trials)
	for i := range jobs {
		k := 2 + rng.IntN(7)
		maxDelay := 3000 // µs after the command: a SIGKILL anywhere in the work that follows it
		if sig == syscall.SIGTERM {
			maxDelay = 500 // a SIGTERM that arrives while the work is still going on
		}
		kp := relKillPoint{delay: time.Duration(rng.IntN(maxDelay)) * time.Microsecond}
		switch r := rng.IntN(20); {
		case r < 12: // 60%: at a command
			kp.cmd = 1 + rng.IntN(fixed+perMsg*k)
		case r < 14: // 10% each: while messages are written to tmp/, ...
			kp.tmp = 1 + rng.IntN(k)
		case r < 16: // ... once the journal holds some records (the barrier is behind) ...
			kp.records = 1 + rng.IntN(2*k)
		case r < 18: // ... while the files are renamed into new/ ...
			kp.new = 1 + rng.IntN(k)
		default: // ... or at an instant after the start
			kp.delay = time.Duration(rng.IntN(40000)) * time.Microsecond
		}
		jobs[i] = job{i, k, kp}
	}
	outcomes := make([]relTrialOutcome, trials)
	ch := make(chan job)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				outcomes[j.n] = w.trial(j.n, j.k, j.kp)
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()

	where := map[string]int{}
	codes := map[int]int{}
	lost, dup := 0, 0
	for i, o := range outcomes {
		lost += o.lost
		dup += o.dup
		if o.err != nil {
			t.Errorf("POPFETCH_CRASH_SEED=%d trial %d (%d messages, kill point %+v, signalled after %q): %v",
				seed, i, jobs[i].k, jobs[i].kp, o.at, o.err)
			continue
		}
		where[o.at]++
		codes[o.firstCode]++
	}
	if sig == syscall.SIGTERM && codes[exitInterrupted] == 0 {
		t.Errorf("no SIGTERM trial exited 130: %v", codes)
	}
	t.Logf("%d trials; signalled after: %s; exit codes of the signalled runs: %v", trials, relWhereSummary(where), codes)

	sigName := "kill -9"
	did := "run again to completion: every message delivered exactly once"
	if sig == syscall.SIGTERM {
		sigName = "SIGTERM"
		did = "stopped cleanly (deleted on the server exactly what it had delivered), then run again to completion: every message delivered exactly once"
	}
	if keep {
		did += "; server unchanged"
	} else {
		did += "; server empty"
	}
	relRecord("crash", fmt.Sprintf("%s at random moments, %s mode, pop3test: %d trials of 2–8 messages, signalled after %s",
		sigName, relModeName(keep), trials, relWhereSummary(where)), did, relCodesSummary(codes), lost, dup)
}

// relWhereSummary groups kill points by command keyword: "RETR ×40, DELE ×31, ...".
func relWhereSummary(where map[string]int) string {
	kw := map[string]int{}
	for at, n := range where {
		k, _, _ := strings.Cut(at, " ")
		switch {
		case strings.HasPrefix(at, "maildir ") || strings.HasPrefix(at, "state "):
			k = at
		case k != "start" && k != "CAPA" && k != "AUTH" && k != "UIDL" && k != "LIST" && k != "RETR" &&
			k != "DELE" && k != "QUIT" && k != "USER" && k != "PASS" && !strings.HasPrefix(at, "("):
			k = "a SASL response"
		case strings.HasPrefix(at, "("):
			k = at
		}
		kw[k] += n
	}
	keys := make([]string, 0, len(kw))
	for k := range kw {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return kw[keys[i]] > kw[keys[j]] || kw[keys[i]] == kw[keys[j]] && keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, kw[k])
	}
	return strings.Join(parts, ", ")
}

func relCodesSummary(codes map[int]int) string {
	keys := make([]int, 0, len(codes))
	for c := range codes {
		keys = append(keys, c)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, c := range keys {
		parts[i] = fmt.Sprintf("%d ×%d", c, codes[c])
	}
	return strings.Join(parts, ", ") + "; then 0"
}

// measure runs once without a kill with 1 and 3 messages and returns the lines the server
// receives: fixed + perMsg × messages.
func (w *relCrashWorker) measure() (fixed, perMsg int, err error) {
	counts := make([]int, 2)
	for i, k := range []int{1, 3} {
		dir, err := os.MkdirTemp(w.dir, "measure")
		if err != nil {
			return 0, 0, err
		}
		setup := w.setup(dir)
		w.srv.SetMessages(relToServer(relMessages("m", k)))
		before := len(w.srv.Received())
		r, err := setup.exec("sync")
		if err != nil {
			return 0, 0, err
		}
		if r.code != 0 {
			return 0, 0, fmt.Errorf("reference run: exit %d: %s", r.code, r.stderr)
		}
		counts[i] = len(w.srv.Received()) - before
	}
	perMsg = (counts[1] - counts[0]) / 2
	return counts[0] - perMsg, perMsg, nil
}

func (w *relCrashWorker) setup(dir string) *profile {
	p := relNewProfile(w.t, dir)
	p.addAt("crash", w.srv.Port(), "ca_file: "+w.ca, relKeep(w.keep))
	return p
}

// trial seeds k messages, signals a run at kp, reruns it and checks the outcome.
func (w *relCrashWorker) trial(n, k int, kp relKillPoint) (out relTrialOutcome) {
	dir, err := os.MkdirTemp(w.dir, fmt.Sprintf("trial%03d-", n))
	if err != nil {
		return relTrialOutcome{err: err}
	}
	setup := w.setup(dir)
	seeded := relMessages(fmt.Sprintf("t%d", n), k)
	w.srv.SetMessages(relToServer(seeded))
	// Only this trial's sessions count: the previous run may have sent QUIT without waiting for
	// the reply, so its last line can reach the server's log after this trial began.
	sessionsBefore := w.srv.Sessions()
	mine := func() []string {
		var out []string
		for _, l := range w.srv.ReceivedLines() {
			if l.Session > sessionsBefore {
				out = append(out, l.Text)
			}
		}
		return out
	}

	var stderr bytes.Buffer
	cmd := setup.command(nil, &stderr, "sync")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return relTrialOutcome{err: err}
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	md := relMaildir(dir, "crash")
	// Wait for the kill point, unless the run ends first.
	out.at = "start"
	reached := relWaitFor(relRunTimeout, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		switch {
		case kp.cmd > 0:
			if lines := mine(); len(lines) >= kp.cmd {
				out.at = lines[kp.cmd-1]
				return true
			}
			return false
		case kp.tmp > 0:
			out.at = "maildir tmp/ file"
			return relFiles(filepath.Join(md, "tmp")) >= kp.tmp
		case kp.new > 0:
			out.at = "maildir new/ file"
			return relFiles(filepath.Join(md, "new")) >= kp.new
		case kp.records > 0:
			out.at = "state journal record"
			return relRecords(filepath.Join(setup.stateDir, "crash.state")) >= kp.records
		}
		return true
	})
	if !reached {
		cmd.Process.Kill()
		<-exited
		return relTrialOutcome{err: errors.New("the run neither reached its kill point nor ended")}
	}
	if kp.delay > 0 {
		// A random pause after the kill point, to spread kills over what popfetch does between two
		// commands (delivery, the barrier, state writes). Not synchronisation: any moment is valid.
		select {
		case <-exited:
		case <-time.After(kp.delay):
		}
	}
	select {
	case <-exited:
		out.at = "(finished before the kill point)"
	default:
		cmd.Process.Signal(w.signal)
	}
	select {
	case <-exited:
	case <-time.After(relRunTimeout):
		cmd.Process.Kill()
		<-exited
		return relTrialOutcome{at: out.at, err: fmt.Errorf("still running %v after %v", relRunTimeout, w.signal)}
	}
	var ee *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &ee) {
		return relTrialOutcome{at: out.at, err: waitErr}
	}
	first := resultOf(cmd, "", stderr.String(), time.Since(start))
	out.firstCode = first.code

	switch w.signal {
	case syscall.SIGKILL:
		if first.code != 128+int(syscall.SIGKILL) && first.code != 0 {
			return relTrialOutcome{at: out.at, err: fmt.Errorf("killed run: exit %d: %s", first.code, first.stderr)}
		}
	case syscall.SIGTERM:
		// A clean stop: 130 (or 0 when the run had finished its work), nothing lost or
		// duplicated, and in delete mode the server deleted exactly what was delivered.
		switch {
		case first.code == 128+int(syscall.SIGTERM) && len(mine()) == 0:
			// The signal came before popfetch had set up its handler (Go runtime and package
			// start-up), and before it had done anything: the default action killed it.
		case first.code != exitInterrupted && first.code != 0:
			return relTrialOutcome{at: out.at, err: fmt.Errorf("SIGTERM: exit %d, want 130: %s", first.code, first.stderr)}
		}
		if first.code == exitInterrupted && first.stderr != "" && !strings.Contains(first.stderr, "interrupted") {
			return relTrialOutcome{at: out.at, err: fmt.Errorf("SIGTERM: stderr %q", first.stderr)}
		}
		got := relReadMaildir(w.t, md)
		tally := relCount(seeded, got, relServerData(w.srv))
		if !tally.ok() {
			return relTrialOutcome{at: out.at, err: fmt.Errorf("after SIGTERM: %v", tally)}
		}
		if !w.keep && tally.delivered+tally.onServer != len(seeded) {
			return relTrialOutcome{at: out.at, err: fmt.Errorf("after SIGTERM: delivered messages left on the server: %v", tally)}
		}
		if err := relCheckState(w.t, setup.stateDir, "crash", seeded, got, w.keep); err != nil {
			return relTrialOutcome{at: out.at, err: fmt.Errorf("after SIGTERM: %w", err)}
		}
		if first.code == 0 && (tally.delivered != len(seeded) || !w.keep && tally.onServer != 0) {
			return relTrialOutcome{at: out.at, err: fmt.Errorf("SIGTERM: exit 0 but the work is not done: %v", tally)}
		}
	}

	// Run again to completion.
	r, err := setup.exec("sync")
	if err != nil {
		return relTrialOutcome{at: out.at, err: err}
	}
	if r.code != 0 {
		return relTrialOutcome{at: out.at, err: fmt.Errorf("rerun: exit %d: %s", r.code, r.stderr)}
	}
	lost, dup, err := w.check(setup, seeded)
	return relTrialOutcome{at: out.at, firstCode: out.firstCode, lost: lost, dup: dup, err: err}
}

// check verifies the end state: every message exactly once, the server as the mode says, the state
// intact, and one more run fetches nothing.
func (w *relCrashWorker) check(setup *profile, seeded []relMessage) (lost, dup int, err error) {
	md := relMaildir(setup.dir, "crash")
	got := relReadMaildir(w.t, md)
	onServer := relServerData(w.srv)
	tally := relCount(seeded, got, onServer)
	return tally.lost, tally.duplicated, w.checkEnd(setup, seeded, got, onServer, tally)
}

func (w *relCrashWorker) checkEnd(setup *profile, seeded []relMessage, got map[string]int, onServer [][]byte, tally relTally) error {
	if !tally.ok() || tally.delivered != len(seeded) {
		return fmt.Errorf("after the rerun: %v", tally)
	}
	if w.keep {
		if len(onServer) != len(seeded) {
			return fmt.Errorf("keep mode: the server holds %d messages, want %d", len(onServer), len(seeded))
		}
	} else if len(onServer) != 0 {
		return fmt.Errorf("delete mode: the server still holds %d messages", len(onServer))
	}
	if err := relCheckState(w.t, setup.stateDir, "crash", seeded, got, w.keep); err != nil {
		return err
	}
	if w.keep {
		r, err := setup.exec("--json", "sync")
		if err != nil {
			return err
		}
		if r.code != 0 || !strings.Contains(r.stdout, `"fetched":0`) {
			return fmt.Errorf("a third run: exit %d, %s %s", r.code, r.stdout, r.stderr)
		}
	}
	return nil
}

// TestRelCrashDovecot kills popfetch at random instants while it syncs from a real Dovecot.
func TestRelCrashDovecot(t *testing.T) {
	relTrack(t)
	if testing.Short() {
		t.Skip("spawns processes; skipped with -short")
	}
	trials := 10
	if relLong() {
		trials = 50
	}
	var users []dovecot.User
	for i := range 4 * trials {
		users = append(users, dovecot.User{Name: fmt.Sprintf("u%d", i), Password: relPassword})
	}
	dc := dovecot.Start(t, &dovecot.Options{Users: users})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, dc.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(dc.POP3SAddr, ":")
	seed := relSeed(t)
	t.Logf("seed: POPFETCH_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	type job struct {
		n, k  int
		user  string
		keep  bool
		sig   syscall.Signal
		delay time.Duration
		// results
		code      int
		lost, dup int
		err       error
	}
	var jobs []*job
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		for _, keep := range []bool{false, true} {
			for n := range trials {
				jobs = append(jobs, &job{n: n, k: 2 + rng.IntN(6), user: users[len(jobs)].Name, keep: keep, sig: sig,
					delay: time.Duration(rng.IntN(150000)) * time.Microsecond})
			}
		}
	}
	run := func(j *job) {
		dir := t.TempDir()
		setup := relNewProfile(t, dir)
		setup.addAt("dc", relAtoi(port), "ca_file: "+ca, "user: "+j.user, relKeep(j.keep), "timeout: 5s")
		seeded := relMessages(fmt.Sprintf("d%d", j.n), j.k)
		for i, m := range seeded {
			dc.Seed(t, j.user, m.Data)
			seeded[i].UID = "" // Dovecot assigns its own
		}
		j.code, j.err = relSignalAfter(setup, j.delay, j.sig)
		if j.err != nil {
			return
		}
		if r, err := setup.exec("sync"); err != nil {
			j.err = err
			return
		} else if r.code != 0 {
			j.err = fmt.Errorf("rerun: exit %d: %s", r.code, r.stderr)
			return
		}
		onServer := dc.Mailbox(t, j.user)
		got := relReadMaildir(t, relMaildir(dir, "dc"))
		tally := relCount(seeded, got, onServer)
		j.lost, j.dup = tally.lost, tally.duplicated
		switch {
		case !tally.ok() || tally.delivered != len(seeded):
			j.err = fmt.Errorf("%v", tally)
		case j.keep && len(onServer) != len(seeded):
			j.err = fmt.Errorf("keep: the server holds %d of %d", len(onServer), len(seeded))
		case !j.keep && len(onServer) != 0:
			j.err = fmt.Errorf("delete: the server still holds %d", len(onServer))
		default:
			j.err = relCheckState(t, setup.stateDir, "dc", seeded, got, j.keep)
		}
	}
	ch := make(chan *job)
	var wg sync.WaitGroup
	for range relCrashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				run(j)
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()

	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		for _, keep := range []bool{false, true} {
			codes := map[int]int{}
			lost, dup := 0, 0
			for _, j := range jobs {
				if j.sig != sig || j.keep != keep {
					continue
				}
				lost += j.lost
				dup += j.dup
				if j.err != nil {
					t.Errorf("POPFETCH_CRASH_SEED=%d %v %s trial %d (%d messages, signal after %v): %v", seed, sig, relModeName(keep), j.n, j.k, j.delay, j.err)
					continue
				}
				codes[j.code]++
			}
			sigName := "kill -9"
			if sig == syscall.SIGTERM {
				sigName = "SIGTERM"
			}
			t.Logf("dovecot %s %s: exit codes %v", sigName, relModeName(keep), codes)
			relRecord("crash", fmt.Sprintf("%s at a random instant (0–150 ms), %s mode, real Dovecot: %d trials of 2–7 messages", sigName, relModeName(keep), trials),
				"run again to completion: every message delivered exactly once; the mailbox as the mode says", relCodesSummary(codes), lost, dup)
		}
	}
}

func relAtoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// relSignalAfter starts a sync and sends it sig after delay (unless it has ended), and returns its
// exit status (128+signal when the signal killed it).
func relSignalAfter(setup *profile, delay time.Duration, sig syscall.Signal) (int, error) {
	var stderr bytes.Buffer
	cmd := setup.command(nil, &stderr, "sync")
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-time.After(delay):
		cmd.Process.Signal(sig)
		select {
		case err = <-exited:
		case <-time.After(relRunTimeout):
			cmd.Process.Kill()
			<-exited
			return 0, fmt.Errorf("still running %v after %v", relRunTimeout, sig)
		}
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 0, err
	}
	r := resultOf(cmd, "", stderr.String(), 0)
	// 128+SIGTERM: the signal came before popfetch had installed its handler (the first
	// milliseconds of the process), when it had not done anything yet.
	want := map[int]bool{0: true, 128 + int(sig): true, exitInterrupted: sig == syscall.SIGTERM}
	if !want[r.code] {
		return r.code, fmt.Errorf("signalled run: exit %d: %s", r.code, r.stderr)
	}
	return r.code, nil
}

// TestRelCrashTermMidMessage: a SIGTERM while a message is arriving lets popfetch finish that
// message, commit and record what it has, delete exactly that on the server, and exit 130 — the
// README's promise, checked at a moment chosen rather than at random.
func TestRelCrashTermMidMessage(t *testing.T) {
	relTrack(t)
	seeded := relMessages("tm", 5)
	// Message 2 trickles out (about 2 ms a byte), so the signal surely arrives in its middle.
	srv, ca := relServer(t, pop3test.Options{Messages: relToServer(seeded), Faults: []pop3test.Fault{
		{Command: "RETR", Arg: "2", Count: 1, Action: pop3test.Drip, Delay: 2 * time.Millisecond}}})
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("acct", srv.Port(), "ca_file: "+ca, "timeout: 10s")
	run := setup.start("sync")
	// RETR commands are pipelined, so the server sees RETR 2 long before message 2 is being
	// received: wait until its delivery has begun (message 1 done, a second file in tmp/).
	tmp := filepath.Join(relMaildir(setup.dir, "acct"), "tmp")
	if !relWaitFor(relRunTimeout, func() bool {
		entries, _ := os.ReadDir(tmp)
		return relCountCommands(srv, 0, "RETR 2") > 0 && len(entries) >= 2
	}) {
		t.Fatalf("message 2 never began to arrive: %s", run.stderr.String())
	}
	run.cmd.Process.Signal(syscall.SIGTERM)
	r := run.wait(t)
	got := relReadMaildir(t, relMaildir(setup.dir, "acct"))
	tally := relCount(seeded, got, relServerData(srv))
	t.Logf("exit %d, stderr %q, %v", r.code, r.stderr, tally)
	if r.code != exitInterrupted {
		t.Errorf("exit %d, want 130; stderr: %s", r.code, r.stderr)
	}
	if !tally.ok() || tally.delivered+tally.onServer != len(seeded) {
		t.Errorf("delivered messages left on the server, or worse: %v", tally)
	}
	if tally.delivered < 2 {
		t.Errorf("the message being received when the signal came was not finished: %v", tally)
	}
	if tally.delivered == len(seeded) {
		t.Errorf("the signal did not stop the run: %v", tally)
	}
	if err := relCheckState(t, setup.stateDir, "acct", seeded, got, false); err != nil {
		t.Error(err)
	}
	relRecord("crash", "SIGTERM while message 2 of 5 is arriving (it trickles out)",
		fmt.Sprintf("finished message 2, committed, deleted exactly the %d delivered on the server, sent QUIT, left %d on the server", tally.delivered, tally.onServer),
		r.code, tally.lost, tally.duplicated)
	r2 := setup.run("sync")
	t2 := relCount(seeded, relReadMaildir(t, relMaildir(setup.dir, "acct")), relServerData(srv))
	if r2.code != 0 || !t2.ok() || t2.delivered != len(seeded) || t2.onServer != 0 {
		t.Errorf("second run: exit %d, %v", r2.code, t2)
	}
}

// relFiles counts the entries of dir (0 if it cannot be read).
func relFiles(dir string) int {
	f, err := os.Open(dir)
	if err != nil {
		return 0
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return len(names)
}

// relRecords counts the records of a state journal (its lines after the header).
func relRecords(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return max(0, bytes.Count(b, []byte("\n"))-1)
}
