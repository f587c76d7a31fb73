package dovecot

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// session is a minimal POP3 dialogue for checking the server; the real client is fetch/pop3.
type session struct {
	t    *testing.T
	conn net.Conn
	tp   *textproto.Conn
}

func dialPOP3S(t *testing.T, s *Server, serverName string) (*session, *tls.ConnectionState) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.POP3SAddr,
		&tls.Config{RootCAs: s.CAPool, ServerName: serverName})
	if err != nil {
		t.Fatalf("dial %s: %v", s.POP3SAddr, err)
	}
	ss := newSession(t, c)
	ss.ok(ss.line())
	cs := c.ConnectionState()
	return ss, &cs
}

func newSession(t *testing.T, c net.Conn) *session {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &session{t: t, conn: c, tp: textproto.NewConn(c)}
}

func (ss *session) line() string {
	ss.t.Helper()
	l, err := ss.tp.ReadLine()
	if err != nil {
		ss.t.Fatalf("read: %v", err)
	}
	return l
}

func (ss *session) ok(l string) string {
	ss.t.Helper()
	if !strings.HasPrefix(l, "+OK") {
		ss.t.Fatalf("got %q, want +OK", l)
	}
	return l
}

func (ss *session) cmd(format string, args ...any) string {
	ss.t.Helper()
	if err := ss.tp.PrintfLine(format, args...); err != nil {
		ss.t.Fatalf("write: %v", err)
	}
	return ss.line()
}

func (ss *session) multi(format string, args ...any) []byte {
	ss.t.Helper()
	ss.ok(ss.cmd(format, args...))
	b, err := ss.tp.ReadDotBytes()
	if err != nil {
		ss.t.Fatalf("read %s: %v", fmt.Sprintf(format, args...), err)
	}
	return b
}

func (ss *session) login(user, pass string) {
	ss.t.Helper()
	ss.ok(ss.cmd("USER %s", user))
	ss.ok(ss.cmd("PASS %s", pass))
}

// lf turns CRLF into LF, as textproto's dot reader does.
func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

func TestServer(t *testing.T) {
	s := Start(t, nil)
	msgs := [][]byte{
		[]byte("Subject: one\n\nfirst\n"),
		[]byte("Subject: two\r\n\r\n.dot\r\n"),
		[]byte("Subject: three\n\nno final newline"),
	}
	s.Seed(t, "alice", msgs...)

	for _, name := range []string{"localhost", "127.0.0.1"} {
		ss, cs := dialPOP3S(t, s, name)
		if got := sha256.Sum256(cs.PeerCertificates[0].Raw); got != s.Fingerprint {
			t.Errorf("leaf fingerprint %x, want %x", got, s.Fingerprint)
		}
		ss.cmd("QUIT")
	}

	ss, _ := dialPOP3S(t, s, "localhost")
	capa := string(ss.multi("CAPA"))
	for _, want := range []string{"UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1"} {
		if !strings.Contains(capa, want) {
			t.Errorf("CAPA lacks %q:\n%s", want, capa)
		}
	}
	ss.ok(ss.cmd("USER alice"))
	start := time.Now()
	if l := ss.cmd("PASS wrong"); l != "-ERR [AUTH] Authentication failed." {
		t.Errorf("wrong password: %q", l)
	}
	t.Logf("wrong password answered in %v", time.Since(start))
	ss.login("alice", "secret")
	if l := ss.cmd("STAT"); !strings.HasPrefix(l, "+OK 3 ") {
		t.Errorf("STAT: %q", l)
	}
	uidl := strings.Fields(string(ss.multi("UIDL")))
	if len(uidl) != 6 || len(uidl[1]) != 16 {
		t.Errorf("UIDL: %q, want 3 uids of 16 hex digits (%%08Xu%%08Xv)", uidl)
	}
	for i, m := range msgs {
		got := ss.multi("RETR %d", i+1)
		want := lf(m)
		if !bytes.HasSuffix(want, []byte("\n")) {
			want = append(want, '\n')
		}
		if !bytes.Equal(got, want) {
			t.Errorf("RETR %d = %q, want %q", i+1, got, want)
		}
	}
	ss.ok(ss.cmd("DELE 2"))
	ss.ok(ss.cmd("QUIT"))
	got := s.Mailbox(t, "alice")
	if len(got) != 2 || !bytes.Equal(got[0], msgs[0]) || !bytes.Equal(got[1], msgs[2]) {
		t.Errorf("Mailbox after DELE 2 = %q", got)
	}
}

func TestSTLS(t *testing.T) {
	s := Start(t, &Options{Users: []User{{"bob", "pw1"}, {"carol", "pw2"}}})
	s.Seed(t, "carol", []byte("Subject: hi\n\nhello\n"))
	c, err := net.Dial("tcp", s.POP3Addr)
	if err != nil {
		t.Fatal(err)
	}
	ss := newSession(t, c)
	ss.ok(ss.line())
	if capa := string(ss.multi("CAPA")); !strings.Contains(capa, "STLS") {
		t.Fatalf("CAPA lacks STLS:\n%s", capa)
	}
	ss.ok(ss.cmd("STLS"))
	tc := tls.Client(c, &tls.Config{RootCAs: s.CAPool, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	ss = newSession(t, tc)
	ss.login("carol", "pw2")
	if l := ss.cmd("STAT"); !strings.HasPrefix(l, "+OK 1 ") {
		t.Errorf("STAT: %q", l)
	}
	ss.cmd("QUIT")
}

// TestOrder checks that POP3 numbers messages in the order Seed was given them, across calls, and
// that Mailbox reports that order before and after Dovecot moved the files to cur/.
func TestOrder(t *testing.T) {
	s := Start(t, nil)
	var msgs [][]byte
	for i := range 300 {
		msgs = append(msgs, fmt.Appendf(nil, "Subject: %d\n\n%d\n", i, i))
	}
	s.Seed(t, "alice", msgs[:100]...)
	for _, m := range msgs[100:200] {
		s.Seed(t, "alice", m)
	}
	check := func(when string) {
		got := s.Mailbox(t, "alice")
		if len(got) != len(msgs) {
			t.Fatalf("%s: Mailbox has %d messages, want %d", when, len(got), len(msgs))
		}
		for i := range got {
			if !bytes.Equal(got[i], msgs[i]) {
				t.Fatalf("%s: Mailbox[%d] = %q, want %q", when, i, got[i], msgs[i])
			}
		}
	}
	ss, _ := dialPOP3S(t, s, "localhost")
	ss.login("alice", "secret")
	s.Seed(t, "alice", msgs[200:]...) // seen by the next session
	for i := range 200 {
		if got := ss.multi("RETR %d", i+1); !bytes.Equal(got, msgs[i]) {
			t.Fatalf("RETR %d = %q, want %q", i+1, got, msgs[i])
		}
	}
	ss.ok(ss.cmd("QUIT"))
	check("after first session")

	ss, _ = dialPOP3S(t, s, "localhost")
	ss.login("alice", "secret")
	for i := 200; i < 300; i++ {
		if got := ss.multi("RETR %d", i+1); !bytes.Equal(got, msgs[i]) {
			t.Fatalf("RETR %d = %q, want %q", i+1, got, msgs[i])
		}
	}
	ss.ok(ss.cmd("QUIT"))
	check("after second session")
}

func TestLMTP(t *testing.T) {
	s := Start(t, &Options{LMTP: true})
	c, err := net.Dial("unix", s.LMTPSocket)
	if err != nil {
		t.Fatal(err)
	}
	ss := newSession(t, c)
	expect := func(code int, l string) {
		t.Helper()
		if !strings.HasPrefix(l, fmt.Sprint(code)) {
			t.Fatalf("got %q, want %d", l, code)
		}
	}
	expect(220, ss.line())
	ss.tp.PrintfLine("LHLO test")
	for {
		l := ss.line()
		expect(250, l)
		if l[3] == ' ' {
			break
		}
	}
	expect(250, ss.cmd("MAIL FROM:<sender@example.com>"))
	expect(250, ss.cmd("RCPT TO:<alice@example.org>"))
	expect(354, ss.cmd("DATA"))
	w := ss.tp.DotWriter()
	io.WriteString(w, "Subject: via lmtp\r\n\r\n.leading dot\r\n")
	w.Close()
	expect(250, ss.line())
	ss.cmd("QUIT")

	got := s.Mailbox(t, "alice")
	if len(got) != 1 || !bytes.Contains(got[0], []byte("Subject: via lmtp\n\n.leading dot\n")) {
		t.Fatalf("Mailbox = %q", got)
	}
}

// TestParallel starts two servers at once and checks that they are separate and that stopping
// one leaves the other running and no process behind.
func TestParallel(t *testing.T) {
	var servers [2]*Server
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() { servers[i] = Start(t, nil) })
	}
	wg.Wait()
	a, b := servers[0], servers[1]
	if a == nil || b == nil {
		t.FailNow()
	}
	if a.POP3SAddr == b.POP3SAddr || a.POP3Addr == b.POP3Addr || a.Fingerprint == b.Fingerprint {
		t.Fatalf("servers share addresses or certificates: %+v %+v", a, b)
	}
	a.Seed(t, "alice", []byte("Subject: a\n\na\n"))
	ss, _ := dialPOP3S(t, a, "localhost")
	ss.login("alice", "secret") // leaves a pop3 process running
	pgid := a.cmd.Process.Pid
	if n := len(groupMembers(pgid)); n < 3 && runtime.GOOS == "linux" {
		t.Errorf("process group %d: %v, want master, login and pop3 processes", pgid, groupMembers(pgid))
	}

	a.Stop()
	if left := groupMembers(pgid); len(left) != 0 {
		t.Errorf("after Stop: processes %v left", left)
	}
	if c, err := net.DialTimeout("tcp", a.POP3SAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", a.POP3SAddr)
	}
	a.Stop() // again: no-op

	ss, _ = dialPOP3S(t, b, "localhost")
	ss.login("alice", "secret")
	if l := ss.cmd("STAT"); l != "+OK 0 0" {
		t.Errorf("second server STAT: %q", l)
	}
}

func TestCompareMaildirNames(t *testing.T) {
	sorted := []string{
		"999999999.M999999P1.host",
		"1000000000.M2P1.host:2,S",
		"1000000000.M10P1.host",
		"1000000000.M10P2.host:2,",
		"1000000001.host",
		"1000000001.x.host",
	}
	for i := range sorted {
		for j := range sorted {
			got := compareMaildirNames(sorted[i], sorted[j])
			want := cmpInt(int64(i), int64(j))
			if got != want {
				t.Errorf("compare(%q, %q) = %d, want %d", sorted[i], sorted[j], got, want)
			}
		}
	}
}

// TestManySessions holds more sessions of one user at once than Dovecot's default limit (10 per
// user and IP), as parallel tests against one server do.
func TestManySessions(t *testing.T) {
	s := Start(t, nil)
	for range 25 {
		ss, _ := dialPOP3S(t, s, "localhost")
		ss.login("alice", "secret")
	}
}
