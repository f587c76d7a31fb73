package courier

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// session is a minimal POP3 dialogue for checking the server; the real client is fetch/pop3.
type session struct {
	t    *testing.T
	conn net.Conn
	tp   *textproto.Conn
}

func newSession(t *testing.T, c net.Conn) *session {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &session{t: t, conn: c, tp: textproto.NewConn(c)}
}

func dialPOP3S(t *testing.T, s *Server) (*session, *tls.ConnectionState) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.POP3SAddr,
		&tls.Config{RootCAs: s.CAPool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("dial %s: %v", s.POP3SAddr, err)
	}
	ss := newSession(t, c)
	ss.ok(ss.line())
	cs := c.ConnectionState()
	return ss, &cs
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
	if !strings.HasPrefix(l, "+") {
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

// quit ends the session and closes the connection (until then couriertls serves it).
func (ss *session) quit() {
	ss.t.Helper()
	ss.ok(ss.cmd("QUIT"))
	ss.conn.Close()
}

func (ss *session) login(user, pass string) {
	ss.t.Helper()
	ss.ok(ss.cmd("USER %s", user))
	ss.ok(ss.cmd("PASS %s", pass))
}

func TestServer(t *testing.T) {
	s := Start(t, nil)
	t.Logf("%s", s.Version)
	msgs := [][]byte{
		[]byte("Subject: one\n\nfirst\n"),
		[]byte("Subject: two\n\n.dot\n..\n"),
		[]byte("Subject: three\n\nthird\n"),
	}
	s.Seed(t, "alice", msgs...)

	ss, cs := dialPOP3S(t, s)
	if got := sha256.Sum256(cs.PeerCertificates[0].Raw); got != s.Fingerprint {
		t.Errorf("leaf fingerprint %x, want %x", got, s.Fingerprint)
	}
	capa := string(ss.multi("CAPA"))
	for _, want := range []string{"UIDL", "PIPELINING", "UTF8", "SASL " + strings.Join(s.Mechanisms, " "), "Courier"} {
		if !strings.Contains(capa, want) {
			t.Errorf("CAPA lacks %q:\n%s", want, capa)
		}
	}
	ss.quit()
	ss, _ = dialPOP3S(t, s)
	ss.login("alice", "secret")
	if l := ss.cmd("STAT"); !strings.HasPrefix(l, "+OK 3 ") {
		t.Errorf("STAT: %q", l)
	}
	uidl := strings.Fields(string(ss.multi("UIDL")))
	if len(uidl) != 6 || !strings.HasPrefix(uidl[1], "UID1-") {
		t.Errorf("UIDL: %q, want UID1-<uidvalidity> ...", uidl)
	}
	for i, m := range msgs {
		if got := ss.multi("RETR %d", i+1); !bytes.Equal(got, m) {
			t.Errorf("RETR %d = %q, want %q", i+1, got, m)
		}
	}
	ss.ok(ss.cmd("DELE 2"))
	ss.quit()
	got := s.Mailbox(t, "alice")
	if len(got) != 2 || !bytes.Equal(got[0], msgs[0]) || !bytes.Equal(got[1], msgs[2]) {
		t.Errorf("Mailbox after DELE 2 = %q", got)
	}
}

// TestSTLSAndCRAMMD5 logs in on the plain port after STLS with CRAM-MD5 (RFC 2195), checking the
// userdb's hmac-md5pw, as Courier's userdbpw would write it.
func TestSTLSAndCRAMMD5(t *testing.T) {
	s := Start(t, &Options{Users: []User{{"bob", "pw1"}, {"carol", "a longer password"}}})
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
	challenge := ss.ok(ss.cmd("AUTH CRAM-MD5"))
	ch, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(challenge, "+ "))
	if err != nil {
		t.Fatalf("challenge %q: %v", challenge, err)
	}
	mac := hmac.New(md5.New, []byte("a longer password"))
	mac.Write(ch)
	resp := "carol " + hex.EncodeToString(mac.Sum(nil))
	ss.ok(ss.cmd("%s", base64.StdEncoding.EncodeToString([]byte(resp))))
	if l := ss.cmd("STAT"); !strings.HasPrefix(l, "+OK 1 ") {
		t.Errorf("STAT: %q", l)
	}
	ss.quit()
}

// TestHMACMD5State compares hmacMD5State with Courier's own userdbpw.
func TestHMACMD5State(t *testing.T) {
	s := &Server{root: filepath.Join(Dir(), "root")}
	if _, err := os.Stat(filepath.Join(s.root, "usr/sbin/userdbpw")); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("courier: %v, and %s=1", err, RequireEnv)
		}
		t.Skipf("courier: %v", err)
	}
	for _, pw := range []string{"secret", "a longer password", strings.Repeat("x", 70)} {
		cmd := exec.Command(filepath.Join(s.root, "usr/sbin/userdbpw"), "-hmac-md5")
		cmd.Env = []string{"LD_LIBRARY_PATH=" + s.libraryPath()}
		cmd.Stdin = strings.NewReader(pw + "\n" + pw + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("userdbpw: %v", err)
		}
		if got, want := hmacMD5State(pw), strings.TrimSpace(string(out)); got != want {
			t.Errorf("hmacMD5State(%q) = %s, userdbpw says %s", pw, got, want)
		}
	}
}

// TestUTF8 documents what Courier does with a message whose header is not ASCII: it wraps it in a
// "Cannot display Unicode content" notice unless the client sent UTF8 (RFC 6856), and then hands it
// out as stored.
func TestUTF8(t *testing.T) {
	s := Start(t, nil)
	msg := []byte("From: J\xc3\xbcrgen <j@example.org>\nSubject: caf\xc3\xa9\n\nna\xc3\xafve\n")
	s.Seed(t, "alice", msg)

	ss, _ := dialPOP3S(t, s)
	ss.login("alice", "secret")
	if got := ss.multi("RETR 1"); !bytes.Contains(got, []byte("Cannot display Unicode content")) {
		t.Errorf("without UTF8, RETR 1 = %q; want Courier's notice", got)
	}
	ss.quit()

	ss, _ = dialPOP3S(t, s)
	ss.login("alice", "secret")
	ss.ok(ss.cmd("UTF8"))
	if got := ss.multi("RETR 1"); !bytes.Equal(got, msg) {
		t.Errorf("with UTF8, RETR 1 = %q, want %q", got, msg)
	}
	ss.quit()
}

// TestOrderAndStop checks that POP3 numbers messages in the order Seed was given them, and that Stop
// leaves nothing listening.
func TestOrderAndStop(t *testing.T) {
	s := Start(t, nil)
	var msgs [][]byte
	for i := range 50 {
		msgs = append(msgs, fmt.Appendf(nil, "Subject: %d\n\n%d\n", i, i))
	}
	s.Seed(t, "alice", msgs...)
	ss, _ := dialPOP3S(t, s)
	ss.login("alice", "secret")
	for i := range msgs {
		if got := ss.multi("RETR %d", i+1); !bytes.Equal(got, msgs[i]) {
			t.Fatalf("RETR %d = %q, want %q", i+1, got, msgs[i])
		}
	}
	ss.quit()
	if got := s.Mailbox(t, "alice"); len(got) != len(msgs) || !bytes.Equal(got[7], msgs[7]) {
		t.Errorf("Mailbox: %d messages, [7] = %q", len(got), got[7])
	}

	ss, _ = dialPOP3S(t, s)
	ss.login("alice", "secret") // leaves a pop3d process running
	s.Stop()
	for _, addr := range []string{s.POP3Addr, s.POP3SAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", addr)
		}
	}
	s.Stop() // again: no-op
}

// TestListeners: Start tells Courier's listeners from another process's on a port it chose (which
// a connection cannot: both accept).
func TestListeners(t *testing.T) {
	s := Start(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	init := s.cmd.Process.Pid
	for _, addr := range []string{s.POP3Addr, s.POP3SAddr} {
		_, portText, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(portText)
		if ours, others, err := listeners(init, port); err != nil || !ours || others {
			t.Errorf("Courier's %s: ours %v, others %v, %v; want ours only", addr, ours, others, err)
		}
	}
	if ours, others, err := listeners(init, l.Addr().(*net.TCPAddr).Port); err != nil || ours || !others {
		t.Errorf("the test's own listener: ours %v, others %v, %v; want others only", ours, others, err)
	}
}
