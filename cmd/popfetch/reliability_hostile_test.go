package main

// Hostile and broken servers (issue 7, part 2): the real binary against pop3test with fault
// injection. Every case asserts the exit code, the one-line error, that nothing was lost, that the
// state is intact, and that the run ended well within the time the profile allows.

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// relHostileCase is one broken or hostile server.
type relHostileCase struct {
	name string
	did  string // what popfetch does, for the report
	opts pop3test.Options
	// custom, when set, starts a server of the test's own instead of pop3test and returns its port
	// and a function that returns what it still holds.
	custom func(t *testing.T, msgs []relMessage) (port int, holds func() [][]byte)
	msgs   []relMessage                      // default: 4 small messages
	prof   func(s *pop3test.Server) []string // more key lines for the account (port and CA set before)
	keep   bool
	bug    string // a known bug: the case is skipped with this message when it fails as the bug says
	rerun  bool   // the fault happens once: a second run must complete the job
	code   int
	want   string        // a regular expression the error line must match
	within time.Duration // the run must end within this; default 12s (timeout: 2s)
	maxRSS int64         // KiB; 0: not checked
	after  func(t *testing.T, c *relHostileCase, s *pop3test.Server, setup *profile)

	// filled in by the run
	srv    *pop3test.Server
	holds  func() [][]byte
	setup  *profile
	result result
	err    error
}

func relHostileCases(t *testing.T) []*relHostileCase {
	ca2, err := pop3test.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	defaultCA, err := pop3test.NewCA() // stands in for "the CA the profile trusts" in TLS cases
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	issue := func(ca *pop3test.CA, hosts []string, from, to time.Time) pop3test.Options {
		cert, err := ca.Issue(hosts, from, to)
		if err != nil {
			t.Fatal(err)
		}
		return pop3test.Options{TLS: pop3test.ImplicitTLS, Certificate: &cert}
	}
	trust := func(ca *pop3test.CA) func(s *pop3test.Server) []string {
		return func(s *pop3test.Server) []string {
			path := filepath.Join(t.TempDir(), "ca.pem")
			if err := os.WriteFile(path, ca.PEM(), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"ca_file: " + path}
		}
	}
	authUser := func(s *pop3test.Server) []string { return []string{"auth: user"} }
	fault := func(f ...pop3test.Fault) pop3test.Options { return pop3test.Options{Faults: f} }
	uids := func(list ...string) []relMessage {
		ms := relMessages("u", len(list))
		for i := range ms {
			ms[i].UID = list[i]
		}
		return ms
	}

	longLine := relMessages("long", 1)
	longLine[0].Data = append(append([]byte("Subject: a 4 MB line\n\n"), []byte(strings.Repeat("y", 4<<20))...), '\n')
	withNUL := relMessages("nul", 2)
	withNUL[1].Data = []byte("Subject: NUL bytes\n\nbefore\x00after\x00\x00\nend\n")

	return []*relHostileCase{
		{name: "greeting missing", did: "timed out waiting for the greeting",
			opts: fault(pop3test.Fault{Command: "GREETING", Count: 1, Action: pop3test.Stall}), rerun: true, code: exitTempFail, want: `too slow|timed? ?out|deadline`},
		{name: "greeting garbage", did: "refused the greeting as a protocol error",
			opts: fault(pop3test.Fault{Command: "GREETING", Action: pop3test.Reply, Reply: "* OK IMAP4rev1 server ready"}), code: exitProtocol, want: `protocol`},
		{name: "greeting -ERR", did: "reported the server's refusal",
			opts: fault(pop3test.Fault{Command: "GREETING", Action: pop3test.Reply, Reply: "-ERR too many connections"}), code: exitProtocol, want: `too many connections`},
		{name: "greeting -ERR [SYS/TEMP]", did: "reported a temporary refusal",
			opts: fault(pop3test.Fault{Command: "GREETING", Action: pop3test.Reply, Reply: "-ERR [SYS/TEMP] maintenance"}), code: exitTempFail, want: `maintenance`},
		{name: "CAPA lies: PIPELINING advertised, only the first pipelined command answered", did: "timed out waiting for the unanswered commands; nothing deleted",
			custom: relPipeliningLiar, code: exitTempFail, want: `too slow|timed? ?out`},
		{name: "CAPA lies: STLS advertised, then refused", did: "refused to continue without TLS",
			opts: pop3test.Options{TLS: pop3test.STLS, Faults: []pop3test.Fault{{Command: "STLS", Action: pop3test.Reply, Reply: "-ERR not now"}}},
			prof: func(s *pop3test.Server) []string { return []string{"tls: starttls"} }, code: exitUnavailable, want: `STLS|TLS`},
		{name: "STLS stripped (not advertised, refused)", did: "refused to continue without TLS",
			opts: pop3test.Options{TLS: pop3test.STLS, NoSTLS: true},
			prof: func(s *pop3test.Server) []string { return []string{"tls: starttls"} }, code: exitUnavailable, want: `STLS`},
		{name: "TLS certificate for the wrong host", did: "refused the certificate",
			opts: issue(defaultCA, []string{"mail.example.com"}, now.Add(-time.Hour), now.Add(time.Hour)),
			prof: trust(defaultCA), code: exitUnavailable, want: `certificate`},
		{name: "TLS certificate expired", did: "refused the certificate",
			opts: issue(defaultCA, []string{"127.0.0.1"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour)),
			prof: trust(defaultCA), code: exitUnavailable, want: `certificate.*expired|expired`},
		{name: "TLS certificate self-signed / unknown CA (no ca_file)", did: "refused the certificate",
			opts: issue(ca2, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour)),
			prof: func(s *pop3test.Server) []string { return []string{"ca_file: -"} }, code: exitUnavailable, want: `certificate|unknown authority`},
		{name: "TLS fingerprint mismatch", did: "refused the certificate although its CA is trusted",
			prof: func(s *pop3test.Server) []string {
				return []string{fmt.Sprintf("tls_fingerprint: sha256:%x", sha256.Sum256([]byte("another certificate")))}
			}, code: exitUnavailable, want: `fingerprint`},
		{name: "-ERR [AUTH] (wrong password)", did: "reported the refused login",
			opts: pop3test.Options{Password: "not-the-password"}, code: exitNoPerm, want: `AUTH|uthentication`},
		{name: "-ERR [IN-USE]", did: "reported a temporary failure",
			opts: fault(pop3test.Fault{Command: "PASS", Count: 1, Action: pop3test.Reply, Reply: "-ERR [IN-USE] mailbox locked by another session"}),
			prof: authUser, rerun: true, code: exitTempFail, want: `IN-USE|locked`},
		{name: "-ERR [LOGIN-DELAY]", did: "reported a temporary failure and remembered the delay: the next run does not connect (exit 0)",
			opts: pop3test.Options{LoginDelay: "600", Faults: []pop3test.Fault{{Command: "PASS", Action: pop3test.Reply, Reply: "-ERR [LOGIN-DELAY] wait a bit"}}},
			prof: authUser, code: exitTempFail, want: `LOGIN-DELAY|wait a bit`,
			after: func(t *testing.T, c *relHostileCase, s *pop3test.Server, setup *profile) {
				n := s.Sessions()
				r := setup.run("sync")
				if r.code != 0 || s.Sessions() != n {
					t.Errorf("second run during the login delay: exit %d, %d new sessions; stderr %s", r.code, s.Sessions()-n, r.stderr)
				}
			}},
		{name: "-ERR [SYS/TEMP]", did: "reported a temporary failure",
			opts: fault(pop3test.Fault{Command: "PASS", Count: 1, Action: pop3test.Reply, Reply: "-ERR [SYS/TEMP] backend unavailable"}),
			prof: authUser, rerun: true, code: exitTempFail, want: `backend unavailable`},
		{name: "-ERR [SYS/PERM]", did: "reported a permanent failure",
			opts: fault(pop3test.Fault{Command: "PASS", Action: pop3test.Reply, Reply: "-ERR [SYS/PERM] account disabled"}),
			prof: authUser, code: exitProtocol, want: `account disabled`},
		{name: "UIDL missing, keep mode", did: "refused keep mode without UIDL, fetched nothing",
			opts: pop3test.Options{NoUIDL: true}, keep: true, code: exitConfig, want: `UIDL`},
		{name: "UIDL missing, delete mode", did: "fetched and deleted everything",
			opts: pop3test.Options{NoUIDL: true}, code: 0},
		{name: "UIDL duplicated, keep mode", did: "refused: two messages with one UIDL",
			msgs: uids("same", "same", "other"), keep: true, code: exitDataErr, want: `same UIDL`},
		{name: "UIDL duplicated, delete mode", did: "fetched and deleted everything",
			msgs: uids("same", "same", "other"), code: 0},
		{name: "UIDL with spaces, keep mode", did: "took the rest of the line as the UIDL",
			msgs: uids("has space", "two  spaces", "ok-1"), keep: true, code: 0},
		{name: "UIDL of 71 and 255 characters (over RFC 1939's 70), keep mode", did: "accepted them (up to 255)",
			msgs: uids(strings.Repeat("x", 71), strings.Repeat("y", 255), "ok-1"), keep: true, code: 0},
		{name: "UIDL over 255 characters, keep mode", did: "refused the listing, fetched nothing",
			msgs: uids(strings.Repeat("z", 256), "ok-1"), keep: true, code: exitProtocol, want: `UIDL: malformed line`},
		{name: "LIST sizes wrong (smaller than the message)", did: "fetched every message whole",
			opts: fault(pop3test.Fault{Command: "LIST", Action: pop3test.WrongSize, Bytes: 10}), code: 0},
		{name: "LIST sizes wrong (larger than the message)", did: "fetched every message whole",
			opts: fault(pop3test.Fault{Command: "LIST", Action: pop3test.WrongSize, Bytes: 1 << 20}), code: 0},
		{name: "RETR truncated (connection dropped mid-message)", did: "kept what was complete, deleted nothing that was not delivered",
			opts: fault(pop3test.Fault{Command: "RETR", Arg: "3", Count: 1, Action: pop3test.DropAfter, Bytes: 120}), rerun: true, code: exitTempFail, want: `closed|EOF|connection`},
		{name: "RETR never terminated (no final dot)", did: "timed out",
			opts: fault(pop3test.Fault{Command: "RETR", Arg: "2", Count: 1, Action: pop3test.NoTerminator}), rerun: true, code: exitTempFail, want: `too slow|timed? ?out`},
		{name: "RETR with a 4 MB line", did: "delivered it byte for byte",
			msgs: longLine, code: 0, within: 15 * time.Second, maxRSS: 64 << 10},
		{name: "RETR with NUL bytes", did: "delivered it byte for byte",
			msgs: withNUL, code: 0},
		{name: "-ERR on DELE", did: "kept the delivered messages recorded; they are deleted on a later run",
			opts:  fault(pop3test.Fault{Command: "DELE", Arg: "2", Count: 1, Action: pop3test.Reply, Reply: "-ERR [SYS/TEMP] cannot delete now"}),
			rerun: true, code: exitTempFail, want: `cannot delete now`},
		{name: "no reply to QUIT", did: "timed out; the server did not commit the deletions, the state knows the messages are delivered",
			opts: fault(pop3test.Fault{Command: "QUIT", Count: 1, Action: pop3test.Stall}), rerun: true, code: exitTempFail, want: `too slow|timed? ?out`},
		{name: "server stalls mid-message", did: "timed out; messages before it delivered",
			opts: fault(pop3test.Fault{Command: "RETR", Arg: "2", Count: 1, Action: pop3test.StallAfter, Bytes: 100}), rerun: true, code: exitTempFail, want: `too slow|timed? ?out`},
		{name: "slowloris: one byte every 50 ms", did: "gave up once the reply fell under the minimum rate",
			opts: fault(pop3test.Fault{Command: "RETR", Arg: "1", Count: 1, Action: pop3test.Drip, Delay: 50 * time.Millisecond}), rerun: true, code: exitTempFail, want: `too slow|timed? ?out|rate`},
		{name: "a 1 GB reply line", did: "refused the line after 4 KiB, memory bounded",
			opts: fault(pop3test.Fault{Command: "UIDL", Action: pop3test.Oversized, Bytes: 1 << 30}), code: exitProtocol, want: `longer than`, maxRSS: 64 << 10},
		{name: "a 1 GB greeting", did: "refused the line after 4 KiB, memory bounded",
			opts: fault(pop3test.Fault{Command: "GREETING", Action: pop3test.Oversized, Bytes: 1 << 30}), code: exitProtocol, want: `longer than`, maxRSS: 64 << 10},
		{name: "-ERR on RETR of one message", did: "delivered the others, left that one on the server",
			opts: fault(pop3test.Fault{Command: "RETR", Arg: "2", Count: 1, Action: pop3test.Reply, Reply: "-ERR message is being scanned"}), rerun: true, code: exitProtocol, want: `being scanned`},
		{name: "TLS handshake never answered (the server accepts and says nothing)", did: "timed out: a temporary failure, not a certificate problem",
			prof: func(s *pop3test.Server) []string { return []string{fmt.Sprintf("port: %d", relSilentPort(t))} }, code: exitTempFail, want: `deadline|too slow|timed? ?out|no answer in time`},
		{name: "the server hangs up during the TLS handshake", did: "reported a dropped connection: a temporary failure, not a certificate problem",
			prof: func(s *pop3test.Server) []string { return []string{fmt.Sprintf("port: %d", relHangupPort(t))} }, code: exitTempFail, want: `TLS handshake .*(closed the connection|connection reset)`},
		{name: "nothing listening (connection refused)", did: "reported a temporary failure",
			prof: func(s *pop3test.Server) []string { return []string{fmt.Sprintf("port: %d", relClosedPort(t))} }, code: exitTempFail, want: `refused`},
	}
}

// relHangupPort returns a loopback port that accepts connections, reads what the client sends first
// (its TLS ClientHello) and closes them: an orderly close, not a reset for unread data.
func relHangupPort(t *testing.T) int {
	return relLoopbackPort(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(make([]byte, 64<<10))
		c.Close()
	})
}

// relSilentPort returns a loopback port that accepts connections and never sends a byte.
func relSilentPort(t *testing.T) int {
	return relLoopbackPort(t, func(net.Conn) {})
}

// relLoopbackPort listens on a loopback port and calls serve with each connection it accepts, in
// the accepting goroutine; when the test ends it stops and closes every connection.
func relLoopbackPort(t *testing.T, serve func(net.Conn)) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// relClosedPort returns a loopback port nothing listens on.
func relClosedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestRelHostileServers(t *testing.T) {
	relTrack(t)
	cases := relHostileCases(t)
	// Set everything up here, run the binaries at once (most cases wait for a 2s timeout), then
	// check each case in its own subtest.
	for _, c := range cases {
		if c.msgs == nil {
			c.msgs = relMessages("h", 4)
		}
		var port int
		kv := []string{relKeep(c.keep), "timeout: 2s"}
		if c.custom != nil {
			port, c.holds = c.custom(t, c.msgs)
			kv = append(kv, "tls: none", "auth: user", "allow_plaintext_auth: true")
		} else {
			opts := c.opts
			opts.Messages = relToServer(c.msgs)
			var ca string
			c.srv, ca = relServer(t, opts)
			c.holds = func() [][]byte { return relServerData(c.srv) }
			port = c.srv.Port()
			kv = append(kv, "ca_file: "+ca)
		}
		if c.prof != nil {
			kv = append(kv, c.prof(c.srv)...)
		}
		c.setup = relNewProfile(t, t.TempDir())
		c.setup.addAt("acct", port, kv...)
		if c.within == 0 {
			c.within = 12 * time.Second
		}
	}
	// At most 4 at once: the machine may have 2 CPUs, and a TLS handshake must not miss the 2s
	// timeout because many processes start together under the race detector.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c.result, c.err = c.setup.measure(relRunTimeout, "sync")
		}()
	}
	wg.Wait()

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.setup.t = t // the runs of after and of the rerun belong to this subtest
			if c.err != nil {
				t.Fatal(c.err)
			}
			r := c.result
			line := ""
			if r.code != 0 {
				var err error
				if line, err = relOneLine(r.stderr, "acct"); err != nil {
					t.Error(err)
				}
				if c.want != "" && !regexp.MustCompile(c.want).MatchString(line) {
					t.Errorf("error line %q does not match %q", line, c.want)
				}
			} else if r.stderr != "" {
				t.Errorf("exit 0 with stderr %q", r.stderr)
			}
			if c.bug != "" && r.code != c.code {
				relRecord("hostile", c.name, "KNOWN BUG, see the issue: "+c.bug+" (got: `"+strings.TrimSpace(r.stderr)+"`)", r.code, 0, 0)
				t.Skip(c.bug)
			}
			if c.code >= 0 && r.code != c.code {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, c.code, r.stderr)
			}
			if r.took > c.within {
				t.Errorf("took %v, want at most %v", r.took.Round(time.Millisecond), c.within)
			}
			if c.maxRSS > 0 && r.maxRSSKiB < 0 {
				t.Logf("%s is not installed: peak RSS not checked", timeBin)
			}
			if c.maxRSS > 0 && r.maxRSSKiB > c.maxRSS {
				t.Errorf("max RSS %d KiB, want at most %d KiB", r.maxRSSKiB, c.maxRSS)
			}
			got := relReadMaildir(t, relMaildir(c.setup.dir, "acct"))
			tally := relCount(c.msgs, got, c.holds())
			if !tally.ok() {
				t.Errorf("%v", tally)
			}
			if r.code == 0 && tally.delivered != len(c.msgs) {
				t.Errorf("exit 0 but not everything was delivered: %v", tally)
			}
			if err := relCheckState(t, c.setup.stateDir, "acct", c.msgs, got, c.keep); err != nil {
				t.Error(err)
			}
			if c.after != nil {
				c.after(t, c, c.srv, c.setup)
			}
			rerun := ""
			if c.rerun || (c.keep && r.code == 0) {
				// The fault is over (or nothing was wrong): a second run must complete the job and
				// fetch nothing twice.
				r2 := c.setup.run("sync")
				got2 := relReadMaildir(t, relMaildir(c.setup.dir, "acct"))
				held := c.holds()
				t2 := relCount(c.msgs, got2, held)
				switch {
				case r2.code != 0:
					t.Errorf("second run: exit %d: %s", r2.code, r2.stderr)
				case !t2.ok() || t2.delivered != len(c.msgs):
					t.Errorf("second run: %v", t2)
				case c.keep && len(held) != len(c.msgs), !c.keep && len(held) != 0:
					t.Errorf("second run: the server holds %d messages", len(held))
				}
				if err := relCheckState(t, c.setup.stateDir, "acct", c.msgs, got2, c.keep); err != nil {
					t.Errorf("second run: %v", err)
				}
				tally.duplicated = max(tally.duplicated, t2.duplicated)
				tally.lost = max(tally.lost, t2.lost)
				rerun = fmt.Sprintf("; a second run completed the job (%d of %d delivered, exactly once)", t2.delivered, len(c.msgs))
			}
			t.Logf("exit %d in %v, max RSS %d KiB: %s; %v", r.code, r.took.Round(time.Millisecond), r.maxRSSKiB, line, tally)
			did := c.did
			if line != "" {
				did += ": `" + strings.TrimPrefix(line, "popfetch: ") + "`"
			} else {
				did += fmt.Sprintf(" (%d of %d delivered)", tally.delivered, len(c.msgs))
			}
			if c.maxRSS > 0 && r.maxRSSKiB >= 0 {
				did += fmt.Sprintf(" (max RSS %d MiB, %v)", (r.maxRSSKiB+512)>>10, r.took.Round(10*time.Millisecond))
			}
			did += rerun
			relRecord("hostile", c.name, did, r.code, tally.lost, tally.duplicated)
		})
	}
}

// relPipeliningLiar is a plain-text POP3 server that advertises PIPELINING but answers only the
// first command of what it reads at once and drops the others. It deletes nothing unless a QUIT
// it answers follows a DELE it answered.
func relPipeliningLiar(t *testing.T, msgs []relMessage) (int, func() [][]byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	held := make([][]byte, len(msgs))
	for i, m := range msgs {
		held[i] = m.Data
	}
	var wg sync.WaitGroup
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			snapshot := append([][]byte(nil), held...)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				relLiarSession(c, snapshot, func(deleted map[int]bool) {
					mu.Lock()
					defer mu.Unlock()
					var kept [][]byte
					for i, d := range snapshot {
						if !deleted[i+1] {
							kept = append(kept, d)
						}
					}
					held = kept
				})
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return append([][]byte(nil), held...)
	}
}

func relLiarSession(c net.Conn, msgs [][]byte, commit func(map[int]bool)) {
	w := bufio.NewWriter(c)
	w.WriteString("+OK liar ready\r\n")
	w.Flush()
	deleted := map[int]bool{}
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		// Answer the first line of what arrived; drop the rest.
		first, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		kw, arg, _ := strings.Cut(first, " ")
		num, _ := strconv.Atoi(arg)
		switch strings.ToUpper(kw) {
		case "CAPA":
			w.WriteString("+OK\r\nUSER\r\nUIDL\r\nPIPELINING\r\n.\r\n")
		case "USER", "PASS", "NOOP", "RSET":
			w.WriteString("+OK\r\n")
		case "UIDL", "LIST":
			w.WriteString("+OK\r\n")
			for i, m := range msgs {
				if kw == "UIDL" {
					fmt.Fprintf(w, "%d liar-%d\r\n", i+1, i+1)
				} else {
					fmt.Fprintf(w, "%d %d\r\n", i+1, len(m)+strings.Count(string(m), "\n"))
				}
			}
			w.WriteString(".\r\n")
		case "RETR":
			if num < 1 || num > len(msgs) {
				w.WriteString("-ERR no such message\r\n")
				break
			}
			w.WriteString("+OK\r\n")
			for _, l := range strings.SplitAfter(string(msgs[num-1]), "\n") {
				if l == "" {
					continue
				}
				if strings.HasPrefix(l, ".") {
					w.WriteString(".")
				}
				w.WriteString(strings.TrimSuffix(l, "\n") + "\r\n")
			}
			w.WriteString(".\r\n")
		case "DELE":
			deleted[num] = true
			w.WriteString("+OK\r\n")
		case "QUIT":
			commit(deleted)
			w.WriteString("+OK bye\r\n")
			w.Flush()
			return
		default:
			w.WriteString("-ERR unknown command\r\n")
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}
