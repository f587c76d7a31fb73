package pop3test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGreeting(t *testing.T) {
	s := NewServer(t, nil)
	c := dial(t, s).greet()
	if !regexp.MustCompile(`^\+OK pop3test ready <[0-9.]+@pop3test>$`).MatchString(c.greeting) {
		t.Errorf("greeting %q has no APOP timestamp", c.greeting)
	}
	s2 := NewServer(t, &Options{NoAPOP: true})
	if g := dial(t, s2).greet().greeting; g != "+OK pop3test ready" {
		t.Errorf("NoAPOP greeting %q", g)
	}
	if c.expect("QUIT", "+OK pop3test signing off"); s.Sessions() != 1 || s2.Sessions() != 1 {
		t.Errorf("Sessions() = %d, %d", s.Sessions(), s2.Sessions())
	}
	c.expectEOF("")
}

func TestCAPA(t *testing.T) {
	all := "SASL SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER"
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"default", Options{}, []string{"TOP", "UIDL", "USER", all, "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION pop3test"}},
		{"STLS", Options{TLS: STLS}, []string{"TOP", "UIDL", "USER", all, "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS", "IMPLEMENTATION pop3test"}},
		{"stripped", Options{TLS: STLS, NoSTLS: true}, []string{"TOP", "UIDL", "USER", all, "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION pop3test"}},
		{"minimal", Options{NoTOP: true, NoUIDL: true, NoUSER: true, SASL: []string{}, NoRespCodes: true, NoPipelining: true},
			[]string{"IMPLEMENTATION pop3test"}},
		{"SASL subset", Options{SASL: []string{"plain", "XOAUTH2"}}, []string{"TOP", "UIDL", "USER", "SASL PLAIN XOAUTH2", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION pop3test"}},
		{"extras", Options{UTF8: true, Expire: "NEVER", LoginDelay: "900", NoTOP: true},
			[]string{"UIDL", "USER", all, "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "UTF8 USER", "EXPIRE NEVER", "LOGIN-DELAY 900", "IMPLEMENTATION pop3test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(t, &tt.opts)
			c := dial(t, s).greet()
			if got := c.multi("CAPA"); !slices.Equal(got, tt.want) {
				t.Errorf("CAPA:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	t.Run("NoCAPA", func(t *testing.T) {
		c := dial(t, NewServer(t, &Options{NoCAPA: true})).greet()
		c.expect("CAPA", "-ERR unknown command")
	})
	t.Run("after login", func(t *testing.T) {
		c := dial(t, NewServer(t, &Options{TLS: STLS})).greet()
		c.login()
		if got := c.multi("CAPA"); slices.Contains(got, "STLS") {
			t.Errorf("STLS advertised in TRANSACTION state: %q", got)
		}
	})
}

func TestUserPass(t *testing.T) {
	s := NewServer(t, &Options{User: "bob", Password: "pass word"})
	c := dial(t, s).greet()
	c.expect("PASS x", "-ERR no USER given")
	c.expect("STAT", "-ERR command not valid in this state")
	c.expect("USER bob", "+OK")
	c.expect("PASS wrong", "-ERR [AUTH] Authentication failed")
	c.expect("PASS pass word", "-ERR no USER given") // a failure forgets the user
	c.expect("USER mallory", "+OK")
	c.expect("PASS pass word", "-ERR [AUTH] Authentication failed")
	c.expect("user bob", "+OK") // keywords are case-insensitive
	c.expect("PASS pass word", "+OK Logged in.")
	c.expect("USER bob", "-ERR command not valid in this state")
	c.expect("STAT", "+OK 0 0")
	c.expect("NOOP", "+OK")
	c.expect("FOO", "-ERR unknown command")

	c2 := dial(t, NewServer(t, &Options{NoRespCodes: true})).greet()
	c2.expect("USER alice", "+OK")
	c2.expect("PASS nope", "-ERR Authentication failed")

	c3 := dial(t, NewServer(t, &Options{NoUSER: true})).greet()
	c3.expect("USER alice", "-ERR unknown command")
	c3.expect("PASS secret", "-ERR unknown command")
}

func TestAPOP(t *testing.T) {
	s := NewServer(t, nil)
	digest := func(ts, pw string) string {
		sum := md5.Sum([]byte(ts + pw))
		return hex.EncodeToString(sum[:])
	}
	c := dial(t, s).greet()
	ts := apopTimestamp(c.greeting)
	c.expect("APOP alice "+digest(ts, "wrong"), "-ERR [AUTH] Authentication failed")
	c.expect("APOP alice "+digest("<other@host>", "secret"), "-ERR [AUTH] Authentication failed")
	c.expect("APOP alice "+digest(ts, "secret"), "+OK Logged in.")

	// The RFC 1939 example.
	if d := digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf"); d != "c4c9334bac560ecc979e58001b3e22fb" {
		t.Fatalf("RFC 1939 digest %s", d)
	}
	s2 := NewServer(t, &Options{Password: "tanstaaf", Faults: []Fault{
		{Command: "GREETING", Reply: "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>"}}})
	c2 := dial(t, s2).greet()
	c2.expect("APOP alice c4c9334bac560ecc979e58001b3e22fb", "+OK Logged in.")

	c3 := dial(t, NewServer(t, &Options{NoAPOP: true})).greet()
	c3.expect("APOP alice "+digest(ts, "secret"), "-ERR unknown command")
}

func TestUTF8(t *testing.T) {
	c := dial(t, NewServer(t, &Options{UTF8: true, User: "jösé"})).greet()
	c.expect("UTF8", "+OK UTF8 enabled")
	c.expect("USER jösé", "+OK")
	c.expect("PASS secret", "+OK Logged in.")
	c.expect("UTF8", "-ERR command not valid in this state")

	c2 := dial(t, NewServer(t, nil)).greet()
	c2.expect("UTF8", "-ERR unknown command")
}

func TestRETRConversion(t *testing.T) {
	tests := []struct {
		name string
		data string
		wire string // between the status line and the terminating "."
	}{
		{"plain", "Hello\n", "Hello\r\n"},
		{"dot", ".\n", "..\r\n"},
		{"two dots", "..\n", "...\r\n"},
		{"dot x", ".x\n", "..x\r\n"},
		{"bare LF", "a\nb\n\nc\n", "a\r\nb\r\n\r\nc\r\n"},
		{"CRLF kept", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"no final newline", "a\r\nb", "a\r\nb\r\n"},
		{"dot without final newline", "a\n.", "a\r\n..\r\n"},
		{"empty", "", ""},
		{"only newline", "\n", "\r\n"},
		{"dot in the middle", "x\r\n.\r\ny\n", "x\r\n..\r\ny\r\n"},
		{"CR inside line", "a\rb\n", "a\rb\r\n"},
	}
	var ms []Message
	for _, tt := range tests {
		ms = append(ms, Message{Data: []byte(tt.data)})
	}
	s := NewServer(t, &Options{Messages: ms})
	c := dial(t, s).greet()
	c.login()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			size := len(strings.ReplaceAll(tt.wire, "\r\n.", "\r\n"))
			if strings.HasPrefix(tt.wire, ".") {
				size--
			}
			c.expect(fmt.Sprintf("LIST %d", i+1), fmt.Sprintf("+OK %d %d", i+1, size))
			c.expect(fmt.Sprintf("RETR %d", i+1), fmt.Sprintf("+OK %d octets", size))
			if got := c.raw(); got != tt.wire {
				t.Errorf("RETR %q: got %q, want %q", tt.data, got, tt.wire)
			}
		})
	}
}

func TestTOP(t *testing.T) {
	s := NewServer(t, &Options{Messages: msgs(
		"Subject: a\nFrom: b\n\nl1\n.l2\nl3\n",
		"Subject: no body\n",
		"Subject: x\r\n\r\n\r\nsecond blank counts\r\n",
	)})
	c := dial(t, s).greet()
	c.login()
	tests := []struct{ cmd, want string }{
		{"TOP 1 0", "Subject: a\r\nFrom: b\r\n\r\n"},
		{"TOP 1 2", "Subject: a\r\nFrom: b\r\n\r\nl1\r\n..l2\r\n"},
		{"TOP 1 99", "Subject: a\r\nFrom: b\r\n\r\nl1\r\n..l2\r\nl3\r\n"},
		{"TOP 2 5", "Subject: no body\r\n"},
		{"TOP 3 1", "Subject: x\r\n\r\n\r\n"},
	}
	for _, tt := range tests {
		c.expect(tt.cmd, "+OK top of message follows")
		if got := c.raw(); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.cmd, got, tt.want)
		}
	}
	c.expect("TOP 1", "-ERR syntax error")
	c.expect("TOP 1 -1", "-ERR invalid line count")
	c.expect("TOP 4 1", "-ERR no such message")

	c2 := dial(t, NewServer(t, &Options{NoTOP: true, NoUIDL: true})).greet()
	c2.login()
	c2.expect("TOP 1 0", "-ERR unknown command")
	c2.expect("UIDL", "-ERR unknown command")
}

func TestListings(t *testing.T) {
	s := NewServer(t, &Options{Messages: []Message{
		{UID: "a1", Data: []byte("one\n")},
		{Data: []byte("two two\n")},
		{UID: "c3", Data: []byte("three\r\n")},
	}})
	c := dial(t, s).greet()
	c.login()
	c.expect("STAT", "+OK 3 21")
	if got, want := c.multi("LIST"), []string{"1 5", "2 9", "3 7"}; !slices.Equal(got, want) {
		t.Errorf("LIST %q, want %q", got, want)
	}
	if got, want := c.multi("UIDL"), []string{"1 a1", "2 uid-2", "3 c3"}; !slices.Equal(got, want) {
		t.Errorf("UIDL %q, want %q", got, want)
	}
	c.expect("LIST 2", "+OK 2 9")
	c.expect("UIDL 3", "+OK 3 c3")
	c.expect("LIST 4", "-ERR no such message")
	c.expect("LIST 0", "-ERR invalid message number")
	c.expect("RETR x", "-ERR invalid message number")
	c.expect("RETR", "-ERR syntax error")
	c.expect("DELE 2", "+OK message 2 deleted")
	c.expect("DELE 2", "-ERR message 2 already deleted")
	c.expect("RETR 2", "-ERR message 2 already deleted")
	c.expect("LIST 2", "-ERR message 2 already deleted")
	c.expect("STAT", "+OK 2 12")
	if got, want := c.multi("LIST"), []string{"1 5", "3 7"}; !slices.Equal(got, want) {
		t.Errorf("LIST after DELE %q, want %q", got, want)
	}
	if got, want := c.multi("UIDL"), []string{"1 a1", "3 c3"}; !slices.Equal(got, want) {
		t.Errorf("UIDL after DELE %q, want %q", got, want)
	}
	c.expect("RSET", "+OK maildrop has 3 messages (21 octets)")
	c.expect("RETR 2", "+OK 9 octets")
	if got := c.raw(); got != "two two\r\n" {
		t.Errorf("RETR 2 after RSET: %q", got)
	}
}

func TestDeleteCommitsOnlyOnQuit(t *testing.T) {
	uids := func(ms []Message) []string {
		var u []string
		for _, m := range ms {
			u = append(u, m.UID)
		}
		return u
	}
	t.Run("QUIT commits", func(t *testing.T) {
		s := NewServer(t, &Options{Messages: msgs("a\n", "b\n", "c\n")})
		c := dial(t, s).greet()
		c.login()
		c.expect("DELE 1", "+OK message 1 deleted")
		c.expect("DELE 3", "+OK message 3 deleted")
		c.expect("QUIT", "+OK pop3test signing off (2 messages deleted)")
		c.expectEOF("")
		if got := uids(s.Messages()); !slices.Equal(got, []string{"uid-2"}) {
			t.Errorf("after QUIT: %q", got)
		}
		// A new session sees the new maildrop, renumbered.
		c2 := dial(t, s).greet()
		c2.login()
		c2.expect("UIDL 1", "+OK 1 uid-2")
	})
	t.Run("drop does not", func(t *testing.T) {
		s := NewServer(t, &Options{Messages: msgs("a\n", "b\n")})
		c := dial(t, s).greet()
		c.login()
		c.expect("DELE 1", "+OK message 1 deleted")
		c.tp.Close()
		s.Close() // waits for the session to end
		if got := uids(s.Messages()); !slices.Equal(got, []string{"uid-1", "uid-2"}) {
			t.Errorf("after drop: %q", got)
		}
	})
	t.Run("duplicate UIDs", func(t *testing.T) {
		s := NewServer(t, &Options{Messages: []Message{{UID: "dup", Data: []byte("1\n")}, {UID: "dup", Data: []byte("2\n")}}})
		c := dial(t, s).greet()
		c.login()
		c.expect("DELE 1", "+OK message 1 deleted")
		c.expect("QUIT", "+OK pop3test signing off (1 messages deleted)")
		c.expectEOF("")
		if got := s.Messages(); len(got) != 1 || string(got[0].Data) != "2\n" {
			t.Errorf("after QUIT: %q", got)
		}
	})
	t.Run("QUIT in AUTHORIZATION", func(t *testing.T) {
		s := NewServer(t, &Options{Messages: msgs("a\n")})
		c := dial(t, s).greet()
		c.expect("QUIT", "+OK pop3test signing off")
		c.expectEOF("")
	})
	t.Run("snapshot", func(t *testing.T) {
		s := NewServer(t, &Options{Messages: msgs("a\n", "b\n")})
		c := dial(t, s).greet()
		c.login()
		s.SetMessages([]Message{{UID: "new", Data: []byte("n\n")}})
		c.expect("STAT", "+OK 2 6")
		c.expect("DELE 1", "+OK message 1 deleted")
		c.expect("QUIT", "+OK pop3test signing off (1 messages deleted)")
		c.expectEOF("")
		if got := uids(s.Messages()); !slices.Equal(got, []string{"new"}) {
			t.Errorf("after QUIT: %q", got)
		}
	})
}

func TestLineTooLong(t *testing.T) {
	s := NewServer(t, nil)
	c := dial(t, s).greet()
	c.send("USER %s", strings.Repeat("a", MaxCommandLine))
	c.expectEOF("-ERR line too long\r\n")
}

func TestReceivedAndTrace(t *testing.T) {
	var trace syncBuffer
	s := NewServer(t, &Options{Trace: &trace})
	c := dial(t, s).greet()
	c.login()
	c.expect("QUIT", "+OK pop3test signing off (0 messages deleted)")
	c2 := dial(t, s).greet()
	c2.expect("NOOP", "-ERR command not valid in this state")
	want := []Line{
		{"USER alice", false, 1}, {"PASS secret", false, 1}, {"QUIT", false, 1}, {"NOOP", false, 2},
	}
	if got := s.ReceivedLines(); !slices.Equal(got, want) {
		t.Errorf("ReceivedLines() = %v, want %v", got, want)
	}
	if got := s.Received(); !slices.Equal(got, []string{"USER alice", "PASS secret", "QUIT", "NOOP"}) {
		t.Errorf("Received() = %q", got)
	}
	s.Close()
	for _, w := range []string{"pop3test[1] C: PASS secret\n", "pop3test[1] S: +OK Logged in.\n", "pop3test[2] C: NOOP\n"} {
		if !strings.Contains(trace.String(), w) {
			t.Errorf("trace lacks %q:\n%s", w, trace.String())
		}
	}
}

func TestPipelining(t *testing.T) {
	const n = 2000
	ms := make([]Message, n)
	for i := range ms {
		ms[i].Data = bytes.Repeat([]byte(fmt.Sprintf("message %d line\n", i)), 256)
	}
	s := NewServer(t, &Options{Messages: ms})
	c := dial(t, s).greet()
	c.login()
	errc := make(chan error, 1)
	go func() {
		w := c.tp.W
		for i := 1; i <= n; i++ {
			fmt.Fprintf(w, "RETR %d\r\n", i)
		}
		fmt.Fprintf(w, "QUIT\r\n")
		errc <- w.Flush()
	}()
	for i := 1; i <= n; i++ {
		st := c.line()
		if want := fmt.Sprintf("+OK %d octets", len(ms[i-1].Data)+256); st != want {
			t.Fatalf("RETR %d: %q, want %q", i, st, want)
		}
		body, err := io.ReadAll(c.tp.DotReader())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, ms[i-1].Data) {
			t.Fatalf("RETR %d: wrong body", i)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if st := c.line(); !strings.HasPrefix(st, "+OK") {
		t.Fatalf("QUIT: %q", st)
	}
}

func TestLargeMessage(t *testing.T) {
	size := 50 << 20
	if testing.Short() || raceEnabled {
		size = 4 << 20
	}
	line := []byte(strings.Repeat("x", 78) + "\n")
	data := bytes.Repeat(line, size/len(line))
	s := NewServer(t, &Options{Messages: []Message{{Data: data}}})
	c := dial(t, s).greet()
	c.login()
	c.expect("RETR 1", "+OK "+strconv.Itoa(len(data)+len(data)/len(line))+" octets")
	n, err := io.Copy(io.Discard, c.tp.DotReader())
	if err != nil || n != int64(len(data)) {
		t.Fatalf("RETR: %d bytes, %v", n, err)
	}
}

func TestCloseStalledConnection(t *testing.T) {
	s := NewServer(t, &Options{Messages: msgs("a\n"), Faults: []Fault{{Command: "RETR", Action: Stall}}})
	stalled := dial(t, s).greet()
	stalled.login()
	stalled.send("RETR 1")
	stalled.expectSilence()
	mid := dial(t, s).greet() // an idle session in AUTHORIZATION state
	mid.expect("USER alice", "+OK")

	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	stalled.expectEOF("")
	mid.expectEOF("")
	if g := serverGoroutines(); g != "" {
		t.Errorf("goroutines left after Close:\n%s", g)
	}
}

// serverGoroutines returns the stacks of goroutines running server code,
// waiting a little for goroutines that are returning.
func serverGoroutines() string {
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "pop3test.(*Server).serve") || strings.Contains(g, "pop3test.(*session)") {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return strings.Join(left, "\n\n")
		}
		runtime.Gosched()
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestGate: with Options.Gate, connections are accepted (and counted) but hear nothing until the gate
// opens; then each session greets as usual. Close frees sessions still held.
func TestGate(t *testing.T) {
	gate := make(chan struct{})
	s := NewServer(t, &Options{Gate: gate})
	a, b := dial(t, s), dial(t, s)
	a.expectSilence()
	b.expectSilence()
	close(gate)
	if g := a.greet().greeting; !strings.HasPrefix(g, "+OK pop3test ready") {
		t.Errorf("greeting after the gate opened: %q", g)
	}
	b.greet().expect("QUIT", "+OK pop3test signing off")

	held := NewServer(t, &Options{Gate: make(chan struct{})})
	c := dial(t, held)
	c.expectSilence()
	held.Close()
	c.expectEOF("")
}
