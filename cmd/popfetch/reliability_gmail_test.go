package main

// Crash trials of deliver: gmail (issue 14): the real `popfetch sync` is killed with SIGKILL around
// the Gmail import — when an import request arrives at the fake Gmail API, right after the API stored
// a message but before it answered, at a random POP3 command, once the state journal holds records,
// or at a random instant — then run again to completion. Every seeded message must be in the Gmail
// mailbox exactly once, the POP server empty (delete) or unchanged (keep), and a third run imports
// nothing. Messages have unique Message-IDs, a Message-ID shared by two of them, or none.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/store"
	"github.com/popfetch/popfetch/store/gmailtest"
)

func TestRelGmailCrash(t *testing.T) {
	relTrack(t)
	if testing.Short() {
		t.Skip("spawns hundreds of processes; skipped with -short")
	}
	trials := 40
	if relLong() {
		trials = 200
	}
	for _, keep := range []bool{false, true} {
		t.Run(relModeName(keep), func(t *testing.T) { relGmailCrashRun(t, keep, trials) })
	}
}

// relGmailKill is where a trial kills the run.
type relGmailKill struct {
	importReq int // at the arrival of the n-th import request
	imported  int // after the n-th message is stored, before the answer
	cmd       int // after the POP server received its n-th line (plus delay)
	records   int // once the state journal holds n records (plus delay)
	delay     time.Duration
}

func relGmailCrashRun(t *testing.T, keep bool, trials int) {
	seed := relSeed(t)
	t.Logf("seed: POPFETCH_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 14))
	type job struct {
		n, k int
		kp   relGmailKill
	}
	jobs := make([]job, trials)
	for i := range jobs {
		k := 2 + rng.IntN(7)
		kp := relGmailKill{}
		switch r := rng.IntN(10); {
		case r < 3:
			kp.importReq = 1 + rng.IntN(k)
		case r < 6:
			kp.imported = 1 + rng.IntN(k)
		case r < 8:
			kp.cmd = 1 + rng.IntN(6+2*k)
			kp.delay = time.Duration(rng.IntN(3000)) * time.Microsecond
		case r < 9:
			kp.records = 1 + rng.IntN(2*k)
			kp.delay = time.Duration(rng.IntN(3000)) * time.Microsecond
		default:
			kp.delay = time.Duration(rng.IntN(60000)) * time.Microsecond
		}
		jobs[i] = job{i, k, kp}
	}
	type outcome struct {
		at        string
		firstCode int
		lost, dup int
		err       error
	}
	outcomes := make([]outcome, trials)
	ch := make(chan job)
	var wg sync.WaitGroup
	for range relCrashWorkers {
		pop, ca := relServer(t, pop3test.Options{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				at, code, lost, dup, err := relGmailTrial(t, pop, ca, keep, j.n, j.k, j.kp)
				outcomes[j.n] = outcome{at, code, lost, dup, err}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()

	where, codes := map[string]int{}, map[int]int{}
	lost, dup := 0, 0
	for i, o := range outcomes {
		lost += o.lost
		dup += o.dup
		if o.err != nil {
			t.Errorf("POPFETCH_CRASH_SEED=%d trial %d (%d messages, kill point %+v, at %q): %v", seed, i, jobs[i].k, jobs[i].kp, o.at, o.err)
			continue
		}
		where[o.at]++
		codes[o.firstCode]++
	}
	t.Logf("%d trials; killed at: %s; exit codes: %v", trials, relWhereSummary(where), codes)
	did := "run again to completion: every message in the Gmail mailbox exactly once (byte-exact but for the documented headers); a third run imports nothing"
	if keep {
		did += "; server unchanged"
	} else {
		did += "; server empty"
	}
	relRecord("imap", fmt.Sprintf("Gmail API (fake, loopback): kill -9 around users.messages.import, %s mode: %d trials of 2–8 messages (unique, shared and missing Message-IDs), killed at %s",
		relModeName(keep), trials, relWhereSummary(where)), did, relCodesSummary(codes), lost, dup)
}

// relGmailMessages are k messages: every third without a Message-ID, every third sharing one.
func relGmailMessages(tag string, k int) []relMessage {
	msgs := relMessages(tag, k)
	for i := range msgs {
		switch i % 3 {
		case 1:
			msgs[i].Data = append([]byte(fmt.Sprintf("Message-ID: <%s-%d@example.org>\n", tag, i)), msgs[i].Data...)
		case 2:
			msgs[i].Data = append([]byte(fmt.Sprintf("Message-ID: <%s-shared@example.org>\n", tag)), msgs[i].Data...)
		}
	}
	return msgs
}

func relGmailTrial(t *testing.T, pop *pop3test.Server, ca string, keep bool, n, k int, kp relGmailKill) (string, int, int, int, error) {
	var (
		at                   string
		firstCode, lost, dup int
	)
	g := gmailtest.NewServer(t, &gmailtest.Options{Token: func(tok string) bool { return tok == "test-access-token" }})
	dir, err := os.MkdirTemp(t.TempDir(), fmt.Sprintf("gtrial%03d-", n))
	if err != nil {
		return "", 0, 0, 0, err
	}
	deliver := fmt.Sprintf("{gmail: {api_url: %q, oauth2: {provider: custom, client_id: popfetch-test, auth_url: http://127.0.0.1:1/a, token_url: http://127.0.0.1:1/t}}}", g.URL)
	setup := relNewProfile(t, dir)
	// timeout 2s: the grace a rerun waits after a crash in the middle of an import (timeout + 2s).
	setup.addAt("work", pop.Port(), "ca_file: "+ca, relKeep(keep), "timeout: 2s", "deliver: "+deliver)
	gmWriteToken(t, setup.stateDir, "http://127.0.0.1:1/t")
	seeded := relGmailMessages(fmt.Sprintf("g%d", n), k)
	pop.SetMessages(relToServer(seeded))
	sessionsBefore := pop.Sessions()
	mine := func() []string {
		var out []string
		for _, l := range pop.ReceivedLines() {
			if l.Session > sessionsBefore {
				out = append(out, l.Text)
			}
		}
		return out
	}

	var stderr bytes.Buffer
	cmd := setup.command(nil, &stderr, "sync")
	var (
		armed    atomic.Bool
		atMu     sync.Mutex
		requests atomic.Int32
	)
	setAt := func(s string) { atMu.Lock(); at = s; atMu.Unlock() }
	getAt := func() string { atMu.Lock(); defer atMu.Unlock(); return at }
	kill := func(where string) {
		if armed.CompareAndSwap(true, false) {
			setAt(where)
			cmd.Process.Kill()
		}
	}
	g.OnRequest(func(op string) {
		if op == "import" && kp.importReq > 0 && int(requests.Add(1)) == kp.importReq {
			kill("(import request arrived)")
		}
	})
	g.OnImported(func(i int) {
		if kp.imported > 0 && i == kp.imported {
			kill("(import stored, not answered)")
		}
	})
	setAt("(finished before the kill point)")
	if err := cmd.Start(); err != nil {
		return "", 0, 0, 0, err
	}
	armed.Store(true)
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	if kp.importReq == 0 && kp.imported == 0 {
		relWaitFor(relRunTimeout, func() bool {
			select {
			case <-exited:
				return true
			default:
			}
			switch {
			case kp.cmd > 0:
				return len(mine()) >= kp.cmd
			case kp.records > 0:
				return relRecords(filepath.Join(setup.stateDir, "work.state")) >= kp.records
			}
			return true
		})
		select {
		case <-exited:
		case <-time.After(kp.delay):
		}
		where := "(an instant)"
		switch {
		case kp.cmd > 0:
			if lines := mine(); len(lines) >= kp.cmd {
				where = lines[kp.cmd-1]
			}
		case kp.records > 0:
			where = "state journal record"
		}
		kill(where)
	}
	select {
	case <-exited:
	case <-time.After(relRunTimeout):
		cmd.Process.Kill()
		<-exited
		return getAt(), 0, 0, 0, errors.New("the run hung")
	}
	armed.Store(false)
	var ee *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &ee) {
		return getAt(), 0, 0, 0, waitErr
	}
	firstCode = resultOf(cmd, "", stderr.String(), 0).code
	if firstCode != 0 && firstCode != 137 {
		return getAt(), firstCode, 0, 0, fmt.Errorf("killed run: exit %d: %s", firstCode, stderr.String())
	}

	// No waiting for the fake here: like the real Gmail, it may still be storing what a killed run had
	// sent whole when the rerun first searches. The rerun's Resolve must see that import (it searches
	// again after the grace the spool file's time gives), not import the message a second time.
	r, rerr := setup.exec("sync")
	if rerr != nil {
		return getAt(), firstCode, 0, 0, rerr
	}
	if r.code != 0 {
		return getAt(), firstCode, 0, 0, fmt.Errorf("rerun: exit %d: %s", r.code, r.stderr)
	}
	lost, dup, foreign := gmTally(seeded, g.Messages())
	if len(foreign) > 0 {
		return getAt(), firstCode, lost, dup, fmt.Errorf("messages nobody seeded in Gmail: %q", foreign)
	}
	onServer := len(pop.Messages())
	if keep && onServer != k || !keep && onServer != 0 {
		return getAt(), firstCode, lost, dup, fmt.Errorf("%d messages on the POP server after the rerun (keep %v, %d seeded)", onServer, keep, k)
	}
	if lost > 0 || dup > 0 {
		return getAt(), firstCode, lost, dup, fmt.Errorf("lost %d, duplicated %d", lost, dup)
	}
	imports := g.Requests("import")
	if r, err := setup.exec("sync"); err != nil || r.code != 0 {
		return getAt(), firstCode, lost, dup, fmt.Errorf("third run: %v exit %d: %s", err, r.code, r.stderr)
	}
	if d := g.Requests("import") - imports; d != 0 {
		return getAt(), firstCode, lost, dup, fmt.Errorf("third run: %d imports", d)
	}
	if ents, _ := os.ReadDir(filepath.Join(setup.stateDir, "work.gmail-spool")); len(ents) != 0 {
		return getAt(), firstCode, lost, dup, fmt.Errorf("spool not empty: %d files", len(ents))
	}
	st, err := store.OpenState(setup.stateDir, "work")
	if err != nil {
		return getAt(), firstCode, lost, dup, err
	}
	defer st.Close()
	for _, uid := range st.UIDs() {
		if e, _ := st.Lookup(uid); e.Status == store.StatusPending {
			return getAt(), firstCode, lost, dup, fmt.Errorf("UIDL %s still pending", uid)
		}
	}
	return getAt(), firstCode, 0, 0, nil
}
