package main

// Crash trials of deliver: imap: (issue 14): the real `popfetch sync` from pop3test into a real
// Dovecot's IMAP, killed with SIGKILL (or stopped with SIGTERM) at random points around APPEND, then
// run again: every message must be in the target mailbox exactly once, and the POP3 server empty
// (delete) or unchanged (keep).

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test/dovecot"
)

const relIMAPUser, relIMAPPassword = "bob", "Imap-Pw-51c2"

// relIMAPMailboxes numbers the trials' mailboxes.
var relIMAPMailboxes atomic.Int64

// relIMAPKillPoint says when a trial's run is signalled: after the POP3 server received its cmd-th
// line, once the state journal holds records records (pending before the APPENDs, then delivered),
// once the target mailbox holds appended messages (the APPENDs under way), or after delay alone;
// then after delay.
type relIMAPKillPoint struct {
	cmd, records, appended int
	streaming              int // files in the mailbox's tmp/: the batch is being streamed, not yet visible
	delay                  time.Duration
}

func TestRelIMAPCrash(t *testing.T) {
	relTrack(t)
	if testing.Short() {
		t.Skip("spawns hundreds of processes; skipped with -short")
	}
	dc := dovecot.Start(t, &dovecot.Options{IMAP: true, Users: []dovecot.User{{Name: relIMAPUser, Password: relIMAPPassword}}})
	for _, keep := range []bool{false, true} {
		for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
			trials := 40
			if sig == syscall.SIGTERM {
				trials = 20
			}
			if relLong() {
				trials *= 4
			}
			name := relModeName(keep) + "/" + map[syscall.Signal]string{syscall.SIGKILL: "kill", syscall.SIGTERM: "term"}[sig]
			t.Run(name, func(t *testing.T) { relIMAPCrashRun(t, dc, keep, sig, trials) })
		}
	}
}

func relIMAPCrashRun(t *testing.T, dc *dovecot.Server, keep bool, sig syscall.Signal, trials int) {
	seed := relSeed(t)
	t.Logf("seed: POPFETCH_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, uint64(sig)+map[bool]uint64{false: 0, true: 100}[keep]))
	imapCA := filepath.Join(t.TempDir(), "imap-ca.pem")
	if err := os.WriteFile(imapCA, dc.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	type job struct {
		n, k int
		kp   relIMAPKillPoint
		out  relTrialOutcome
	}
	jobs := make([]*job, trials)
	for i := range jobs {
		k := 2 + rng.IntN(7)
		kp := relIMAPKillPoint{delay: time.Duration(rng.IntN(3000)) * time.Microsecond}
		switch r := rng.IntN(10); {
		case r < 4:
			kp.cmd = 1 + rng.IntN(6+2*k) // CAPA/AUTH/UIDL/LIST, each RETR, each DELE, QUIT
		case r < 5:
			kp.records = 1 + rng.IntN(2*k)
		case r < 7:
			kp.streaming = 1 + rng.IntN(k)
		case r < 9:
			kp.appended = 1 + rng.IntN(k)
		default:
			kp.delay = time.Duration(rng.IntN(300_000)) * time.Microsecond
		}
		jobs[i] = &job{n: i, k: k, kp: kp}
	}
	ch := make(chan *job)
	var wg sync.WaitGroup
	for range relCrashWorkers {
		srv, ca := relServer(t, pop3test.Options{})
		w := &relIMAPWorker{t: t, srv: srv, ca: ca, imapCA: imapCA, dc: dc, dir: t.TempDir(), keep: keep, signal: sig}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				j.out = w.trial(j.n, j.k, j.kp)
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
	for _, j := range jobs {
		lost += j.out.lost
		dup += j.out.dup
		if j.out.err != nil {
			t.Errorf("POPFETCH_CRASH_SEED=%d trial %d (%d messages, kill point %+v, signalled after %q): %v",
				seed, j.n, j.k, j.kp, j.out.at, j.out.err)
			continue
		}
		where[j.out.at]++
		codes[j.out.firstCode]++
	}
	t.Logf("%d trials; signalled after: %s; exit codes of the signalled runs: %v", trials, relWhereSummary(where), codes)
	sigName, did := "kill -9", "run again to completion: every message in the IMAP mailbox exactly once"
	if sig == syscall.SIGTERM {
		sigName = "SIGTERM"
		did = "stopped cleanly, then run again to completion: every message in the IMAP mailbox exactly once"
	}
	if keep {
		did += "; POP3 server unchanged"
	} else {
		did += "; POP3 server empty"
	}
	relRecord("imap", fmt.Sprintf("%s around APPEND, %s mode, pop3test → Dovecot IMAP: %d trials of 2–8 messages, signalled after %s",
		sigName, relModeName(keep), trials, relWhereSummary(where)), did, relCodesSummary(codes), lost, dup)
}

// relIMAPWorker runs trials against its own pop3test server, each into its own IMAP mailbox.
type relIMAPWorker struct {
	t          *testing.T
	srv        *pop3test.Server
	ca, imapCA string
	dc         *dovecot.Server
	dir        string
	keep       bool
	signal     syscall.Signal
}

func (w *relIMAPWorker) setup(dir, mailbox string) *profile {
	_, port, _ := net.SplitHostPort(w.dc.IMAPSAddr)
	deliver := fmt.Sprintf("{imap: {host: 127.0.0.1, port: %s, ca_file: %s, user: %s, password: %s, mailbox: %s, create: true, timeout: 3s}}",
		port, w.imapCA, relIMAPUser, relIMAPPassword, mailbox)
	p := relNewProfile(w.t, dir)
	p.addAt("crash", w.srv.Port(), "ca_file: "+w.ca, relKeep(w.keep), "deliver: "+deliver, "received_header: false")
	return p
}

// mailboxFiles counts the messages Dovecot has stored in mailbox (its maildir), without IMAP.
func (w *relIMAPWorker) mailboxFiles(mailbox string) int {
	md := filepath.Join(w.dc.Maildir(relIMAPUser), "."+mailbox)
	return relFiles(filepath.Join(md, "new")) + relFiles(filepath.Join(md, "cur"))
}

var relMarker = regexp.MustCompile(`^X-Popfetch-ID: crash/[0-9a-f]{32}\r\n`)

// mailbox returns the messages of an IMAP mailbox as the maildir helpers count them: the marker
// removed, CRLF back to LF; a message without the marker counts as foreign.
func (w *relIMAPWorker) mailbox(mailbox string) (map[string]int, error) {
	msgs, err := w.dc.IMAPMessages(relIMAPUser, relIMAPPassword, mailbox)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, m := range msgs {
		loc := relMarker.FindIndex(m.Body)
		if loc == nil {
			out["(no marker) "+string(m.Body)]++
			continue
		}
		out[string(bytes.ReplaceAll(m.Body[loc[1]:], []byte("\r\n"), []byte("\n")))]++
	}
	return out, nil
}

func (w *relIMAPWorker) trial(n, k int, kp relIMAPKillPoint) (out relTrialOutcome) {
	dir, err := os.MkdirTemp(w.dir, fmt.Sprintf("trial%03d-", n))
	if err != nil {
		return relTrialOutcome{err: err}
	}
	mailbox := fmt.Sprintf("T%05d", relIMAPMailboxes.Add(1)) // a new mailbox per trial
	setup := w.setup(dir, mailbox)
	seeded := relMessages(fmt.Sprintf("i%d", n), k)
	w.srv.SetMessages(relToServer(seeded))
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
		case kp.records > 0:
			out.at = "state journal record"
			return relRecords(filepath.Join(setup.stateDir, "crash.state")) >= kp.records
		case kp.appended > 0:
			out.at = "maildir of the IMAP mailbox: a message stored"
			return w.mailboxFiles(mailbox) >= kp.appended
		case kp.streaming > 0:
			out.at = "maildir of the IMAP mailbox: a message in tmp/ (streamed, not visible)"
			return relFiles(filepath.Join(w.dc.Maildir(relIMAPUser), "."+mailbox, "tmp")) >= kp.streaming
		}
		return true
	})
	if !reached {
		cmd.Process.Kill()
		<-exited
		return relTrialOutcome{err: errors.New("the run neither reached its kill point nor ended")}
	}
	if kp.delay > 0 {
		// A random pause after the kill point, to spread kills over the work between two events.
		// Not synchronisation: any moment is valid.
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
	switch {
	case first.code == 0, first.code == 128+int(w.signal):
	case w.signal == syscall.SIGTERM && first.code == exitInterrupted:
	case first.code == exitTempFail && strings.Contains(first.stderr, "timeout"):
		// A loaded machine: the server took longer than the profile's 3 s to answer. Still
		// nothing may be lost or duplicated.
	default:
		return relTrialOutcome{at: out.at, err: fmt.Errorf("signalled run: exit %d: %s", first.code, first.stderr)}
	}
	if w.signal == syscall.SIGTERM {
		// A clean stop deletes on the server only what is in the mailbox, and duplicates nothing.
		got, err := w.mailbox(mailbox)
		if err != nil {
			return relTrialOutcome{at: out.at, err: err}
		}
		if tally := relCount(seeded, got, relServerData(w.srv)); !tally.ok() {
			return relTrialOutcome{at: out.at, err: fmt.Errorf("after SIGTERM: %v", tally)}
		}
	}

	r, err := setup.exec("-v", "sync")
	if err != nil {
		return relTrialOutcome{at: out.at, err: err}
	}
	if r.code != 0 {
		return relTrialOutcome{at: out.at, err: fmt.Errorf("rerun: exit %d: %s", r.code, r.stderr)}
	}
	got, err := w.mailbox(mailbox)
	if err != nil {
		return relTrialOutcome{at: out.at, err: err}
	}
	onServer := relServerData(w.srv)
	tally := relCount(seeded, got, onServer)
	out.lost, out.dup = tally.lost, tally.duplicated
	switch {
	case !tally.ok() || tally.delivered != len(seeded):
		out.err = fmt.Errorf("after the rerun: %v (signalled run: exit %d; rerun: %s)", tally, first.code, strings.TrimSpace(r.stderr))
	case w.keep && len(onServer) != len(seeded):
		out.err = fmt.Errorf("keep mode: the server holds %d messages, want %d", len(onServer), len(seeded))
	case !w.keep && len(onServer) != 0:
		out.err = fmt.Errorf("delete mode: the server still holds %d messages", len(onServer))
	default:
		out.err = relCheckState(w.t, setup.stateDir, "crash", seeded, got, w.keep)
	}
	return out
}
