package main

// End-to-end tests of how the real binary runs: locks, signals, output without and with a terminal,
// parallel accounts, and a real Dovecot.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test/dovecot"
	"github.com/popfetch/popfetch/internal/report"
	"github.com/popfetch/popfetch/store"
)

// waitingForLock reports whether process pid is blocked in flock(2), from /proc/locks (Linux), where
// a waiter appears as "N: -> FLOCK ADVISORY WRITE <pid> ...". ok is false when /proc/locks cannot be
// read.
func waitingForLock(pid int) (waiting, ok bool) {
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && f[1] == "->" && f[2] == "FLOCK" && f[5] == strconv.Itoa(pid) {
			return true, true
		}
	}
	return false, true
}

func countFiles(dir string) int {
	ents, _ := os.ReadDir(dir)
	return len(ents)
}

// TestLockHeld: while another run holds the account's lock, sync exits 75 at once without
// connecting; with --wait it waits for the lock and then syncs.
func TestLockHeld(t *testing.T) {
	t.Parallel()
	msgs := numbered(2)
	s := newServer(t, msgs, nil)
	p := newProfile(t)
	md := p.add("work", s)
	lock, err := store.Lock(p.stateDir, "work", false)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()

	r := p.run("sync")
	expectCode(t, r, exitTempFail)
	if !strings.HasPrefix(r.stderr, "popfetch: work: ") || strings.Count(r.stderr, "\n") != 1 ||
		!strings.Contains(r.stderr, strconv.Itoa(os.Getpid())) {
		t.Errorf("stderr does not name the account and the pid holding the lock (%d):\n%s", os.Getpid(), r.stderr)
	}
	if n := s.Sessions(); n != 0 {
		t.Errorf("popfetch connected %d time(s) without the lock", n)
	}

	pr := p.start("sync", "--wait")
	if _, ok := waitingForLock(pr.cmd.Process.Pid); ok {
		waitFor(t, "popfetch --wait to block on the lock", func() bool {
			if pr.exited() {
				t.Fatalf("popfetch --wait exited while the lock was held: %+v", pr.wait(t))
			}
			w, _ := waitingForLock(pr.cmd.Process.Pid)
			return w
		})
	} else {
		t.Log("/proc/locks is not readable: not checking that popfetch blocks on the lock")
	}
	if pr.exited() || s.Sessions() != 0 {
		t.Fatalf("popfetch --wait did not wait for the lock (exited %v, %d sessions)", pr.exited(), s.Sessions())
	}
	if err := lock.Unlock(); err != nil {
		t.Fatal(err)
	}
	r = pr.wait(t)
	expectCode(t, r, 0)
	sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs))
	if left := s.Messages(); len(left) != 0 {
		t.Errorf("the server still holds %d message(s)", len(left))
	}
}

// TestInterrupt: SIGTERM/SIGINT make the binary exit 130 without losing or duplicating mail. The
// first signal stops at the next message boundary (what was delivered is committed); a second one
// abandons a stalled batch (nothing uncommitted becomes visible or is deleted). Meanwhile a second
// sync of the same account exits 75 at once: an account is never synced twice at once.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	t.Run("second signal abandons a stalled batch", func(t *testing.T) {
		t.Parallel()
		msgs := numbered(5)
		s := newServer(t, msgs, &pop3test.Options{TLS: pop3test.ImplicitTLS,
			Faults: []pop3test.Fault{{Command: "RETR", Arg: "3", Count: 1, Action: pop3test.Stall}}})
		p := newProfile(t)
		md := p.add("work", s)
		pr := p.start("sync")
		waitFor(t, "the stalled RETR 3 and two messages delivered", func() bool {
			if pr.exited() {
				t.Fatalf("popfetch exited: %+v", pr.wait(t))
			}
			return received(s, "RETR 3") && countFiles(filepath.Join(md, "tmp")) == 2
		})

		// The same account again, while the first run is stuck: 75 at once.
		r := p.run("sync")
		expectCode(t, r, exitTempFail)
		if !strings.HasPrefix(r.stderr, "popfetch: work: ") || !strings.Contains(r.stderr, strconv.Itoa(pr.cmd.Process.Pid)) {
			t.Errorf("the second run's stderr does not name the run holding the lock (pid %d):\n%s", pr.cmd.Process.Pid, r.stderr)
		}
		if n := s.Sessions(); n != 1 {
			t.Errorf("%d sessions, want 1: the second run connected", n)
		}

		// Two different signals, so that the kernel cannot merge them into one.
		pr.signal(t, syscall.SIGTERM)
		pr.signal(t, syscall.SIGINT)
		r = pr.wait(t)
		expectCode(t, r, exitInterrupted)
		if files := maildirFiles(t, md); len(files) != 0 {
			t.Errorf("an abandoned batch became visible: %d message(s)", len(files))
		}
		if got := s.Messages(); len(got) != len(msgs) {
			t.Errorf("an abandoned batch deleted mail: %d of %d left", len(got), len(msgs))
		}
		// Nothing lost, nothing twice.
		expectCode(t, p.run("sync"), 0)
		sameMessages(t, "maildir after the next run", maildirFiles(t, md), contents(msgs))
		if left := s.Messages(); len(left) != 0 {
			t.Errorf("the server still holds %d message(s)", len(left))
		}
	})

	t.Run("first signal then a stalled message times out", func(t *testing.T) {
		t.Parallel()
		msgs := numbered(5)
		s := newServer(t, msgs, &pop3test.Options{TLS: pop3test.ImplicitTLS,
			Faults: []pop3test.Fault{{Command: "RETR", Arg: "3", Count: 1, Action: pop3test.Stall}}})
		p := newProfile(t)
		md := p.add("work", s, "timeout: 2s")
		pr := p.start("sync")
		waitFor(t, "the stalled RETR 3 and two messages delivered", func() bool {
			if pr.exited() {
				t.Fatalf("popfetch exited: %+v", pr.wait(t))
			}
			return received(s, "RETR 3") && countFiles(filepath.Join(md, "tmp")) == 2
		})
		pr.signal(t, syscall.SIGTERM)
		r := pr.wait(t)
		expectCode(t, r, exitInterrupted)
		if !strings.HasPrefix(r.stderr, "popfetch: work: ") || !strings.Contains(r.stderr, "server too slow") {
			t.Errorf("stderr does not say what ended the run:\n%s", r.stderr)
		}
		// The two messages delivered before the stall are committed; the connection is gone, so
		// nothing was deleted.
		sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs[:2]))
		if got := s.Messages(); len(got) != len(msgs) {
			t.Errorf("%d of %d messages left on the server", len(got), len(msgs))
		}
		expectCode(t, p.run("sync"), 0)
		sameMessages(t, "maildir after the next run", maildirFiles(t, md), contents(msgs))
		if left := s.Messages(); len(left) != 0 {
			t.Errorf("the server still holds %d message(s)", len(left))
		}
	})

	t.Run("first signal stops at the next message", func(t *testing.T) {
		t.Parallel()
		msgs := numbered(5)
		msgs[1].Data = append(msgs[1].Data, strings.Repeat("slow line\n", 40)...)
		// Message 2 arrives one byte per 5ms: about two seconds.
		s := newServer(t, msgs, &pop3test.Options{TLS: pop3test.ImplicitTLS,
			Faults: []pop3test.Fault{{Command: "RETR", Arg: "2", Count: 1, Action: pop3test.Drip, Delay: 5 * time.Millisecond}}})
		p := newProfile(t)
		md := p.add("work", s)
		pr := p.start("sync")
		waitFor(t, "message 1 delivered", func() bool {
			if pr.exited() {
				t.Fatalf("popfetch exited: %+v", pr.wait(t))
			}
			return received(s, "RETR 2") && countFiles(filepath.Join(md, "tmp")) == 1
		})
		pr.signal(t, syscall.SIGTERM)
		r := pr.wait(t)
		expectCode(t, r, exitInterrupted)
		// Messages 1 and 2 were delivered and committed; 3 to 5 were not retrieved.
		sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs[:2]))
		left := uids(s.Messages())
		t.Logf("left on the server after the signal: %v; stderr: %s", left, r.stderr)
		for _, u := range []string{"uid-3", "uid-4", "uid-5"} {
			if !slices.Contains(left, u) {
				t.Errorf("%s was deleted but never delivered", u)
			}
		}
		expectCode(t, p.run("sync"), 0)
		sameMessages(t, "maildir after the next run", maildirFiles(t, md), contents(msgs))
		if left := s.Messages(); len(left) != 0 {
			t.Errorf("the server still holds %d message(s)", len(left))
		}
	})
}

// TestCronOutput: without a terminal, a run prints nothing on success, one summary line per account
// with -v, each error as one line "popfetch: ACCOUNT: ..." on stderr, and with --json one object per
// account on stdout.
func TestCronOutput(t *testing.T) {
	t.Parallel()
	msgs := numbered(2)
	s := newServer(t, nil, nil)
	p := newProfile(t)
	p.add("good", s)
	p.add("bad", s, "password: wrong")
	run := 0
	// New mail for each run: new UIDLs (the state remembers the old ones).
	refill := func() {
		run++
		fresh := slices.Clone(msgs)
		for i := range fresh {
			fresh[i].UID = fmt.Sprintf("run%d-%d", run, i+1)
		}
		s.SetMessages(fresh)
	}

	refill()
	r := p.run("sync", "good")
	expectCode(t, r, 0)
	if r.stdout != "" || r.stderr != "" {
		t.Errorf("success printed something:\nstdout %q\nstderr %q", r.stdout, r.stderr)
	}

	refill()
	r = p.run("sync")
	expectCode(t, r, exitNoPerm)
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}
	if want := "popfetch: bad: pop3: server refused AUTH: -ERR [AUTH] Authentication failed (tried SCRAM-SHA-256, then PLAIN)\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}

	refill()
	r = p.run("-v", "sync")
	expectCode(t, r, exitNoPerm)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	slices.Sort(lines)
	if len(lines) != 2 || !regexp.MustCompile(`^good: 2 fetched \(\d+ bytes\), 2 deleted in \S+$`).MatchString(lines[0]) ||
		!strings.HasPrefix(lines[1], "popfetch: bad: ") {
		t.Errorf("-v: want one summary line and one error line:\n%s", r.stderr)
	}

	refill()
	r = p.run("--json", "sync")
	expectCode(t, r, exitNoPerm)
	if r.stderr != "popfetch: bad: pop3: server refused AUTH: -ERR [AUTH] Authentication failed (tried SCRAM-SHA-256, then PLAIN)\n" {
		t.Errorf("--json: stderr %q", r.stderr)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	got := map[string]map[string]any{}
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("--json: %v:\n%s", err, r.stdout)
		}
		got[fmt.Sprint(obj["account"])] = obj
	}
	if len(got) != 2 || strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("--json: want one line per account:\n%s", r.stdout)
	}
	var size int
	for _, m := range msgs {
		size += len(m.Data)
	}
	for _, k := range []string{"fetched", "skipped", "deleted", "bytes", "duration_ms", "exit_code"} {
		for acct, obj := range got {
			if _, ok := obj[k]; !ok {
				t.Errorf("--json: %s has no %q: %v", acct, k, obj)
			}
		}
	}
	g, b := got["good"], got["bad"]
	if g["fetched"] != 2.0 || g["deleted"] != 2.0 || g["skipped"] != 0.0 || g["bytes"] != float64(size) ||
		g["exit_code"] != 0.0 || g["error"] != nil {
		t.Errorf("--json good: %v (want 2 fetched, 2 deleted, %d bytes)", g, size)
	}
	if b["exit_code"] != 77.0 || !strings.Contains(fmt.Sprint(b["error"]), "Authentication failed") || b["fetched"] != 0.0 {
		t.Errorf("--json bad: %v", b)
	}
}

// TestProgressBarOnTerminal records a run under a pseudo-terminal with script(1): a progress bar
// with the account, its messages and a bar, then a summary line; with -q nothing at all.
func TestProgressBarOnTerminal(t *testing.T) {
	t.Parallel()
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script (util-linux) not found")
	}
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	for _, tc := range []struct {
		name  string
		size  bool // give the terminal a size (script's own is 0x0 without a terminal around it)
		flags []string
	}{{"default", true, nil}, {"quiet", true, []string{"-q"}}, {"no size", false, nil}, {"no new mail", true, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msgs := numbered(3)
			msgs[0].Data = append(msgs[0].Data, bytes.Repeat([]byte("a line of text to make the message bigger\n"), 500)...)
			if tc.name == "no new mail" {
				msgs = nil
			}
			s := newServer(t, msgs, nil)
			p := newProfile(t)
			md := p.add("work", s)
			line := "exec " + quote(popfetchBin) + " --config " + quote(p.path)
			if tc.size {
				line = "stty cols 120 rows 40 && " + line
			}
			for _, f := range tc.flags {
				line += " " + f
			}
			line += " sync"
			var out bytes.Buffer
			cmd := exec.Command(scriptBin, "-qefc", line, "/dev/null")
			cmd.Env = []string{"HOME=" + p.dir, "PATH=" + os.Getenv("PATH"), "TERM=xterm", "DBUS_SESSION_BUS_ADDRESS="}
			cmd.Stdout, cmd.Stderr = &out, &out
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%v:\n%s", err, out.String())
				}
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				<-done
				t.Fatalf("script did not exit:\n%s", out.String())
			}
			text := out.String()
			t.Logf("the terminal shows:\n%q", text)
			sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs))
			bar := regexp.MustCompile(`\[=+`)
			switch tc.name {
			case "quiet":
				if strings.TrimSpace(text) != "" {
					t.Errorf("-q on a terminal printed:\n%q", text)
				}
				return
			case "no new mail":
				if !strings.Contains(text, "work: no new mail (0 on the server)\r\n") || bar.MatchString(text) {
					t.Errorf("a run without new mail on a terminal shows:\n%q", text)
				}
				return
			case "no size":
				// A terminal that cannot say how wide it is gets the summary line, not a bar.
				if !regexp.MustCompile(`^work: 3 fetched \(20\.7 KiB\), 3 deleted in \S+\r\n$`).MatchString(text) {
					t.Errorf("a terminal without a size shows:\n%q", text)
				}
				return
			}
			for _, want := range []string{"work", "3/3 msgs", "work: 3 fetched"} {
				if !strings.Contains(text, want) {
					t.Errorf("the terminal shows no %q:\n%q", want, text)
				}
			}
			if !bar.MatchString(text) {
				t.Errorf("the terminal shows no bar:\n%q", text)
			}
		})
	}
}

// barrier is a TCP proxy in front of a plain-text POP3 server that counts the sessions open at once.
// It holds the first connections (not even the greeting passes) until n are open at the same time,
// then lets every connection through. A session counts as open from its connection until the proxy
// sees its QUIT, which comes before popfetch can start the next account: the count is exact, not a
// matter of timing.
type barrier struct {
	ln      net.Listener
	backend string
	n       int
	release chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	open     int
	max      int
	released bool
}

func newBarrier(t *testing.T, backend string, n int) *barrier {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &barrier{ln: ln, backend: backend, n: n, release: make(chan struct{}), done: make(chan struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		close(b.done)
		ln.Close()
		b.wg.Wait()
	})
	return b
}

func (b *barrier) port() int { return b.ln.Addr().(*net.TCPAddr).Port }

func (b *barrier) maxOpen() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.max
}

func (b *barrier) serve(c net.Conn) {
	defer c.Close()
	b.mu.Lock()
	b.open++
	b.max = max(b.max, b.open)
	if !b.released && b.open >= b.n {
		b.released = true
		close(b.release)
	}
	b.mu.Unlock()
	var once sync.Once
	leave := func() {
		once.Do(func() {
			b.mu.Lock()
			b.open--
			b.mu.Unlock()
		})
	}
	defer leave()
	select {
	case <-b.release:
	case <-b.done:
		return
	}
	s, err := net.Dial("tcp", b.backend)
	if err != nil {
		return
	}
	defer s.Close()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(c, s)
		c.Close()
	}()
	defer func() { s.Close(); <-copied }()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if strings.EqualFold(strings.TrimSpace(line), "QUIT") {
			leave()
		}
		if len(line) > 0 {
			if _, werr := io.WriteString(s, line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestJobsOverlap: --jobs 8 over 20 accounts really runs 8 sessions at once, never more; --jobs 1
// runs one at a time. The barrier would hold the first sessions forever (until their timeout) if
// popfetch opened fewer than --jobs at once, so the run completing in time is the proof.
func TestJobsOverlap(t *testing.T) {
	t.Parallel()
	for _, jobs := range []int{8, 1} {
		t.Run(fmt.Sprintf("jobs %d", jobs), func(t *testing.T) {
			t.Parallel()
			msgs := numbered(1)
			s := newServer(t, msgs, &pop3test.Options{TLS: pop3test.Plain})
			b := newBarrier(t, s.Addr(), jobs)
			p := newProfile(t)
			var maildirs []string
			for i := range 20 {
				maildirs = append(maildirs, p.addAt(fmt.Sprintf("acct%02d", i+1), b.port(), "ca_file: "+p.caFile(s.CACertPEM()),
					"tls: none", "ca_file: -", "keep: true", "timeout: 30s"))
			}
			r := p.run("sync", "--jobs", strconv.Itoa(jobs))
			expectCode(t, r, 0)
			// A session that deleted nothing sends QUIT and closes without waiting for the reply, and
			// the next one may be accepted before the proxy's goroutine has read that QUIT: the
			// barrier can see one session too many, never two. (The barrier itself proves at least
			// jobs sessions at once: it holds them until that many are open.)
			if got := b.maxOpen(); got < jobs || got > jobs+1 {
				t.Errorf("at most %d sessions were open at once, want %d (or %d, see above)", got, jobs, jobs+1)
			}
			if n := s.Sessions(); n != 20 {
				t.Errorf("%d sessions, want 20", n)
			}
			for _, md := range maildirs {
				sameMessages(t, md, maildirFiles(t, md), contents(msgs))
			}
		})
	}
}

// TestDovecot syncs from a real Dovecot over POP3S (its CA as ca_file): delete mode empties the
// mailbox and delivers every message byte for byte; keep mode run twice fetches once.
func TestDovecot(t *testing.T) {
	t.Parallel()
	d := dovecot.Start(t, nil)
	_, portText, err := net.SplitHostPort(d.POP3SAddr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portText)
	msgs := hardMessages()
	var data [][]byte
	for _, m := range msgs {
		data = append(data, m.Data)
	}

	d.Seed(t, "alice", data...)
	p := newProfile(t)
	md := p.addAt("dovecot", port, "ca_file: "+p.caFile(d.CAPEM))
	r := p.run("sync")
	expectCode(t, r, 0)
	if r.stdout != "" || r.stderr != "" {
		t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if left := d.Mailbox(t, "alice"); len(left) != 0 {
		t.Errorf("Dovecot still holds %d message(s)", len(left))
	}
	sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs))

	d.Seed(t, "alice", data...)
	p = newProfile(t)
	md = p.addAt("dovecot", port, "ca_file: "+p.caFile(d.CAPEM), "keep: true")
	expectCode(t, p.run("sync"), 0)
	r = p.run("--json", "sync")
	expectCode(t, r, 0)
	var sum report.Summary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Fetched != 0 || sum.Listed != len(msgs) {
		t.Errorf("second keep run: %v: %s", err, r.stdout)
	}
	sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs))
	if left := d.Mailbox(t, "alice"); len(left) != len(msgs) {
		t.Errorf("keep mode: Dovecot holds %d message(s), want %d", len(left), len(msgs))
	}
}
