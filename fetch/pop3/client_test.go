package pop3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// noLeak fails the test if goroutines started during it are still running when it ends (after
// every later cleanup, such as the server's Close). It polls briefly: goroutines that were told to
// stop may need a moment to return.
func noLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			}
			runtime.Gosched()
			time.Sleep(5 * time.Millisecond) // polling for goroutine exit, not synchronisation
		}
	})
}

// dial connects to s with its CA trusted, and registers Close.
func dial(t *testing.T, s *pop3test.Server, mode pop3.TLSMode, o *pop3.Options) *pop3.Client {
	t.Helper()
	if o == nil {
		o = &pop3.Options{}
	}
	if o.RootCAs == nil && o.Fingerprint == "" {
		o.RootCAs = s.CACertPool()
	}
	c, err := pop3.Dial(context.Background(), s.Addr(), mode, o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func login(t *testing.T, c *pop3.Client) {
	t.Helper()
	if err := c.Auth(context.Background(), pop3.Credentials{Username: "alice", Secret: "secret"}); err != nil {
		t.Fatalf("Auth: %v", err)
	}
}

// wire is what a message's bytes become through POP3 and the client: CRLF as LF, and a final
// newline added when there was none.
func wire(data []byte) []byte {
	out := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out
}

func TestAuthMechanisms(t *testing.T) {
	mechs := []string{"auto", "user", "apop", "plain", "login", "scram-sha-256", "scram-sha-1", "cram-md5", "xoauth2", "oauthbearer"}
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Token: "tok-123",
		Messages: []pop3test.Message{{Data: []byte("Subject: hi\n\nbody\n")}}})
	for _, mech := range mechs {
		t.Run(mech, func(t *testing.T) {
			noLeak(t)
			secret := "secret"
			if mech == "xoauth2" || mech == "oauthbearer" {
				secret = "tok-123"
			}
			var trace bytes.Buffer
			c := dial(t, s, pop3.TLSImplicit, &pop3.Options{Trace: &trace})
			ctx := context.Background()
			if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: secret, Mechanism: mech}); err != nil {
				t.Fatalf("Auth: %v\n%s", err, trace.String())
			}
			if n, _, err := c.Stat(ctx); err != nil || n != 1 {
				t.Fatalf("Stat after login = %d, %v", n, err)
			}
			if strings.Contains(trace.String(), secret) {
				t.Errorf("trace contains the secret:\n%s", trace.String())
			}
			c.Quit(ctx)

			// The wrong secret is refused as an authentication failure.
			c = dial(t, s, pop3.TLSImplicit, nil)
			err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "wrong", Mechanism: mech})
			var perr *pop3.Error
			if !errors.As(err, &perr) || !perr.AuthFailed() {
				t.Fatalf("wrong secret: err = %v, want an *Error with AuthFailed", err)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error message contains the secret: %v", err)
			}
		})
	}
}

func TestAutoPicksSCRAMOverTLS(t *testing.T) {
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS})
	c := dial(t, s, pop3.TLSImplicit, nil)
	login(t, c)
	var auth string
	for _, l := range s.Received() {
		if strings.HasPrefix(l, "AUTH ") {
			auth = l
		}
	}
	if !strings.HasPrefix(auth, "AUTH SCRAM-SHA-256") {
		t.Errorf("auto sent %q, want SCRAM-SHA-256", auth)
	}
}

func TestSTLS(t *testing.T) {
	noLeak(t)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.STLS})
	c := dial(t, s, pop3.TLSStartTLS, nil)
	if _, ok := c.TLSConnectionState(); !ok {
		t.Fatal("STLS connection is not encrypted")
	}
	login(t, c)
	if err := c.Quit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, l := range s.ReceivedLines() {
		if !l.TLS && l.Text != "CAPA" && l.Text != "STLS" {
			t.Errorf("sent in clear: %q", l.Text)
		}
	}
}

func TestSTLSStrippedOrRefused(t *testing.T) {
	cases := map[string]*pop3test.Options{
		"not advertised": {TLS: pop3test.STLS, NoSTLS: true},
		"refused":        {TLS: pop3test.STLS, Faults: []pop3test.Fault{{Command: "STLS", Action: pop3test.Reply, Reply: "-ERR not now"}}},
		"no CAPA":        {TLS: pop3test.Plain, NoCAPA: true},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			noLeak(t)
			s := pop3test.NewServer(t, o)
			_, err := pop3.Dial(context.Background(), s.Addr(), pop3.TLSStartTLS, &pop3.Options{RootCAs: s.CACertPool()})
			if !errors.Is(err, pop3.ErrSTLSUnavailable) {
				t.Fatalf("err = %v, want ErrSTLSUnavailable", err)
			}
			for _, l := range s.Received() {
				if l != "CAPA" && l != "STLS" {
					t.Errorf("sent in clear after the greeting: %q", l)
				}
			}
		})
	}
}

func TestTLSVerification(t *testing.T) {
	ca, err := pop3test.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	expired, _ := ca.Issue([]string{"127.0.0.1", "localhost"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	wrongHost, _ := ca.Issue([]string{"pop.example.org"}, now.Add(-time.Hour), now.Add(24*time.Hour))

	good := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS})
	fp := good.Fingerprint()

	tests := []struct {
		name string
		s    *pop3test.Server
		o    pop3.Options
		ok   bool
		is   error
	}{
		{"trusted CA", good, pop3.Options{RootCAs: good.CACertPool()}, true, nil},
		{"unknown CA", good, pop3.Options{}, false, nil},
		{"pinned fingerprint", good, pop3.Options{Fingerprint: pop3.FormatFingerprint(fp)}, true, nil},
		{"pinned fingerprint, plain hex", good, pop3.Options{Fingerprint: fmt.Sprintf("%x", fp)}, true, nil},
		{"wrong fingerprint", good, pop3.Options{Fingerprint: pop3.FormatFingerprint([32]byte{1})}, false, pop3.ErrFingerprintMismatch},
		{"expired", pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Certificate: &expired}), pop3.Options{RootCAs: ca.Pool()}, false, nil},
		{"wrong host", pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Certificate: &wrongHost}), pop3.Options{RootCAs: ca.Pool()}, false, nil},
		{"TLS 1.3 minimum", good, pop3.Options{RootCAs: good.CACertPool(), MinTLSVersion: 0x0304}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t)
			o := tt.o
			c, err := pop3.Dial(context.Background(), tt.s.Addr(), pop3.TLSImplicit, &o)
			if tt.ok {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				c.Close()
				return
			}
			var terr *pop3.TLSError
			if !errors.As(err, &terr) {
				t.Fatalf("err = %v, want a *TLSError", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
		})
	}
}

// hardMessages are the messages that break naive clients.
var hardMessages = [][]byte{
	[]byte("Subject: dots\n\n.\n..\n...\n.x\n..x\nend\n"),
	[]byte("Subject: lone dot in CRLF\r\n\r\nbefore\r\n.\r\nafter\r\n"),
	[]byte("Subject: long line\n\n" + strings.Repeat("0123456789", 10_001) + "\n"),
	[]byte("Subject: 8bit\n\n\xe4\xf6\xfc \xff\xfe raw \x00 nul \x01 ctl\n"),
	[]byte("Subject: bare LF and CR\n\nline\nline2\r\nbare\rcr\n"),
	[]byte("Subject: no final newline\n\nlast line"),
	[]byte("Subject: empty body\n\n"),
	[]byte(""),
	[]byte(".starts with a dot\n"),
}

func TestRetrieveHardMessagesByteExact(t *testing.T) {
	noLeak(t)
	var msgs []pop3test.Message
	for _, m := range hardMessages {
		msgs = append(msgs, pop3test.Message{Data: m})
	}
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs})
	for _, pipelined := range []bool{false, true} {
		c := dial(t, s, pop3.TLSImplicit, nil)
		login(t, c)
		ctx := context.Background()
		if pipelined {
			nums := make([]int, len(msgs))
			for i := range nums {
				nums[i] = i + 1
			}
			err := c.RetrMany(ctx, nums, func(n int, body io.Reader, err error) error {
				if err != nil {
					return err
				}
				got, rerr := io.ReadAll(body) // small messages; the 50 MB test streams
				if want := wire(hardMessages[n-1]); rerr != nil || !bytes.Equal(got, want) {
					t.Errorf("RetrMany message %d = %q, %v; want %q", n, trunc(got), rerr, trunc(want))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		} else {
			for i, m := range hardMessages {
				r, err := c.Retr(ctx, i+1)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				if want := wire(m); err != nil || !bytes.Equal(got, want) {
					t.Errorf("Retr %d = %q, %v; want %q", i+1, trunc(got), err, trunc(want))
				}
			}
		}
		c.Quit(ctx)
	}
}

func trunc(b []byte) []byte {
	if len(b) > 80 {
		return append(b[:80:80], "..."...)
	}
	return b
}

func TestTop(t *testing.T) {
	s := pop3test.NewServer(t, &pop3test.Options{Messages: []pop3test.Message{{Data: []byte("Subject: a\nFrom: b\n\nl1\nl2\nl3\n")}}})
	c := dial(t, s, pop3.TLSNone, nil)
	if err := c.Auth(context.Background(), pop3.Credentials{Username: "alice", Secret: "secret", Mechanism: "user", AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Top(context.Background(), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if string(got) != "Subject: a\nFrom: b\n\nl1\n" {
		t.Errorf("TOP 1 1 = %q", got)
	}
}

// hashWriter hashes and counts what is written: a 50 MB message never sits in memory.
type hashWriter struct {
	n int64
	h [32]byte
	w io.Writer
}

func TestRetrieve50MBStreaming(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB in -short mode")
	}
	noLeak(t)
	line := bytes.Repeat([]byte("x"), 998)
	line = append(line, '\n')
	big := bytes.Repeat(line, 50<<20/len(line))
	big = append(big, []byte(".dot line\n")...)
	want := sha256.Sum256(big)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: []pop3test.Message{{Data: big}}})
	c := dial(t, s, pop3.TLSImplicit, nil)
	login(t, c)
	r, err := c.Retr(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil || n != int64(len(big)) {
		t.Fatalf("copied %d bytes, %v; want %d", n, err, len(big))
	}
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		t.Fatal("50 MB message differs")
	}
}

func manyMessages(n, size int) []pop3test.Message {
	msgs := make([]pop3test.Message, n)
	for i := range msgs {
		head := fmt.Sprintf("Subject: message %d\n\n", i+1)
		body := bytes.Repeat([]byte("y"), size-len(head)-1)
		msgs[i] = pop3test.Message{Data: append(append([]byte(head), body...), '\n')}
	}
	return msgs
}

func TestRetrMany10000(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			noLeak(t)
			const count = 10_000
			msgs := manyMessages(count, 300)
			s := pop3test.NewServer(t, &pop3test.Options{NoPipelining: !pipelining, Messages: msgs})
			c := dial(t, s, pop3.TLSNone, &pop3.Options{PipelineWindow: 32})
			ctx := context.Background()
			if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", AllowPlaintext: true}); err != nil {
				t.Fatal(err)
			}
			if c.Caps().Pipelining != pipelining {
				t.Fatalf("server PIPELINING = %v", c.Caps().Pipelining)
			}
			list, err := c.Listing(ctx)
			if err != nil || len(list) != count {
				t.Fatalf("Listing: %d, %v", len(list), err)
			}
			nums := make([]int, count)
			for i := range nums {
				nums[i] = i + 1
			}
			next := 1
			buf := new(bytes.Buffer)
			err = c.RetrMany(ctx, nums, func(n int, body io.Reader, err error) error {
				if err != nil {
					return err
				}
				if n != next {
					return fmt.Errorf("got message %d, want %d", n, next)
				}
				next++
				buf.Reset()
				if _, err := io.Copy(buf, body); err != nil {
					return err
				}
				if !bytes.Equal(buf.Bytes(), msgs[n-1].Data) {
					return fmt.Errorf("message %d differs", n)
				}
				return nil
			})
			if err != nil || next != count+1 {
				t.Fatalf("RetrMany: %v after %d messages", err, next-1)
			}
			if err := c.DeleMany(ctx, nums); err != nil {
				t.Fatal(err)
			}
			if err := c.Quit(ctx); err != nil {
				t.Fatal(err)
			}
			if left := len(s.Messages()); left != 0 {
				t.Fatalf("%d messages left on the server after DELE+QUIT", left)
			}
		})
	}
}

func TestDeleCommitsOnlyOnQuit(t *testing.T) {
	noLeak(t)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: manyMessages(5, 100)})
	ctx := context.Background()
	c := dial(t, s, pop3.TLSImplicit, nil)
	login(t, c)
	if err := c.DeleMany(ctx, []int{1, 2, 3, 4, 5}); err != nil {
		t.Fatal(err)
	}
	c.Close() // no QUIT: nothing is deleted
	if n := len(s.Messages()); n != 5 {
		t.Fatalf("after DELE without QUIT the server holds %d messages, want 5", n)
	}
	c = dial(t, s, pop3.TLSImplicit, nil)
	login(t, c)
	if err := c.DeleMany(ctx, []int{2, 4}); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Messages()); n != 3 {
		t.Fatalf("after DELE 2 4 + QUIT the server holds %d messages, want 3", n)
	}
}

func TestListingWithoutUIDL(t *testing.T) {
	s := pop3test.NewServer(t, &pop3test.Options{NoUIDL: true, Messages: manyMessages(3, 100)})
	c := dial(t, s, pop3.TLSNone, nil)
	if err := c.Auth(context.Background(), pop3.Credentials{Username: "alice", Secret: "secret", AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	list, err := c.Listing(context.Background())
	if err != nil || len(list) != 3 {
		t.Fatalf("Listing = %v, %v", list, err)
	}
	for _, m := range list {
		// LIST counts octets on the wire: CRLF line ends, so 3 more than the 100 stored with LF.
		if m.UID != "" || m.Size != 103 {
			t.Errorf("message %+v: want size 103 and no UID", m)
		}
	}
}

func TestRetrManyStopsAndStaysUsable(t *testing.T) {
	noLeak(t)
	s := pop3test.NewServer(t, &pop3test.Options{Messages: manyMessages(200, 2000)})
	c := dial(t, s, pop3.TLSNone, &pop3.Options{PipelineWindow: 16})
	ctx := context.Background()
	if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	nums := make([]int, 200)
	for i := range nums {
		nums[i] = i + 1
	}
	stop := errors.New("disk full")
	seen := 0
	err := c.RetrMany(ctx, nums, func(n int, body io.Reader, err error) error {
		seen++
		if n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || seen != 10 {
		t.Fatalf("RetrMany = %v after %d messages; want the callback's error after 10", err, seen)
	}
	if err := c.Noop(ctx); err != nil {
		t.Fatalf("NOOP after a stopped batch: %v", err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRetrManyCancelled(t *testing.T) {
	noLeak(t)
	s := pop3test.NewServer(t, &pop3test.Options{Messages: manyMessages(500, 2000)})
	c := dial(t, s, pop3.TLSNone, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	nums := make([]int, 500)
	for i := range nums {
		nums[i] = i + 1
	}
	err := c.RetrMany(ctx, nums, func(n int, body io.Reader, err error) error {
		if n == 50 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled RetrMany: err = %v", err)
	}
	if err := c.Noop(context.Background()); !errors.Is(err, pop3.ErrUnusable) {
		t.Fatalf("after cancel: %v, want ErrUnusable", err)
	}
}

func TestUTF8(t *testing.T) {
	s := pop3test.NewServer(t, &pop3test.Options{UTF8: true})
	c := dial(t, s, pop3.TLSNone, nil)
	caps, err := c.Capa(context.Background())
	if err != nil || !caps.UTF8 {
		t.Fatalf("CAPA: %+v, %v", caps, err)
	}
	if err := c.UTF8(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestFaults injects each fault and checks the error a caller sees: its type or code, that the
// connection refuses further commands when it must, that nothing hangs past the timeout, and that
// no goroutine is left behind.
func TestFaults(t *testing.T) {
	const timeout = 300 * time.Millisecond
	msgs := manyMessages(3, 5000)
	type check func(t *testing.T, err error)
	isCode := func(code string, temporary bool) check {
		return func(t *testing.T, err error) {
			var perr *pop3.Error
			if !errors.As(err, &perr) || perr.Code != code || perr.Temporary() != temporary {
				t.Fatalf("err = %v, want -ERR [%s] (temporary %v)", err, code, temporary)
			}
		}
	}
	isTimeout := func(t *testing.T, err error) {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("err = %v, want a timeout", err)
		}
	}
	isBroken := func(t *testing.T, err error) {
		var perr *pop3.Error
		if err == nil || errors.As(err, &perr) {
			t.Fatalf("err = %v, want a broken connection", err)
		}
	}
	isProtocol := func(t *testing.T, err error) {
		if !errors.Is(err, pop3.ErrProtocol) {
			t.Fatalf("err = %v, want ErrProtocol", err)
		}
	}
	tests := []struct {
		name   string
		fault  pop3test.Fault
		op     string // "login", "retr", "list", "dele", "quit"
		check  check
		usable bool // the connection still works afterwards
	}{
		{"greeting -ERR", pop3test.Fault{Command: "GREETING", Action: pop3test.Reply, Reply: "-ERR [SYS/TEMP] busy"}, "dial", isCode("SYS/TEMP", true), false},
		{"greeting garbage", pop3test.Fault{Command: "GREETING", Action: pop3test.Reply, Reply: "HELLO"}, "dial", isProtocol, false},
		{"greeting missing", pop3test.Fault{Command: "GREETING", Action: pop3test.Stall}, "dial", isTimeout, false},
		{"in use", pop3test.Fault{Command: "PASS", Action: pop3test.Reply, Reply: "-ERR [IN-USE] locked"}, "login", isCode("IN-USE", true), true},
		{"login delay", pop3test.Fault{Command: "PASS", Action: pop3test.Reply, Reply: "-ERR [LOGIN-DELAY] wait"}, "login", isCode("LOGIN-DELAY", true), true},
		{"sys/perm", pop3test.Fault{Command: "PASS", Action: pop3test.Reply, Reply: "-ERR [SYS/PERM] gone"}, "login", isCode("SYS/PERM", false), true},
		{"auth", pop3test.Fault{Command: "PASS", Action: pop3test.Reply, Reply: "-ERR [AUTH] no"}, "login", isCode("AUTH", false), true},
		{"RETR refused", pop3test.Fault{Command: "RETR", Action: pop3test.Reply, Reply: "-ERR [SYS/TEMP] later"}, "retr", isCode("SYS/TEMP", true), true},
		{"RETR dropped mid-message", pop3test.Fault{Command: "RETR", Action: pop3test.DropAfter, Bytes: 1000}, "retr", isBroken, false},
		{"RETR stalled", pop3test.Fault{Command: "RETR", Action: pop3test.Stall}, "retr", isTimeout, false},
		{"RETR stalled mid-message", pop3test.Fault{Command: "RETR", Action: pop3test.StallAfter, Bytes: 1000}, "retr", isTimeout, false},
		{"RETR never terminated", pop3test.Fault{Command: "RETR", Action: pop3test.NoTerminator}, "retr", isTimeout, false},
		{"RETR slowloris", pop3test.Fault{Command: "RETR", Action: pop3test.Drip, Delay: 20 * time.Millisecond}, "retr", isTimeout, false},
		{"RETR oversized status line", pop3test.Fault{Command: "RETR", Action: pop3test.Oversized, Bytes: 8 << 20}, "retr", isProtocol, false},
		{"RETR garbage status", pop3test.Fault{Command: "RETR", Action: pop3test.Reply, Reply: "OK fine"}, "retr", isProtocol, false},
		{"LIST never terminated", pop3test.Fault{Command: "LIST", Action: pop3test.NoTerminator}, "list", isTimeout, false},
		{"LIST garbage line", pop3test.Fault{Command: "LIST", Action: pop3test.ReplyRaw, Reply: "+OK\r\n1 abc\r\n.\r\n"}, "list", isProtocol, false},
		{"UIDL control character", pop3test.Fault{Command: "UIDL", Action: pop3test.ReplyRaw, Reply: "+OK\r\n1 a\x01b\r\n.\r\n"}, "list", isProtocol, false},
		{"DELE refused", pop3test.Fault{Command: "DELE", Arg: "2", Action: pop3test.Reply, Reply: "-ERR [SYS/PERM] cannot"}, "dele", isCode("SYS/PERM", false), true},
		{"QUIT unanswered", pop3test.Fault{Command: "QUIT", Action: pop3test.Stall}, "quit", isTimeout, false},
		{"QUIT refused", pop3test.Fault{Command: "QUIT", Action: pop3test.Reply, Reply: "-ERR [SYS/TEMP] could not delete"}, "quit", isCode("SYS/TEMP", true), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t)
			s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs,
				Faults: []pop3test.Fault{tt.fault}})
			ctx := context.Background()
			o := &pop3.Options{RootCAs: s.CACertPool(), Timeout: timeout, MinRate: 4096}
			start := time.Now()
			c, err := pop3.Dial(ctx, s.Addr(), pop3.TLSImplicit, o)
			if tt.op == "dial" {
				tt.check(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", Mechanism: "user"})
			if tt.op != "login" {
				if err != nil {
					t.Fatal(err)
				}
				switch tt.op {
				case "retr":
					err = c.RetrMany(ctx, []int{1, 2, 3}, func(n int, body io.Reader, err error) error {
						if err != nil {
							return err
						}
						_, err = io.Copy(io.Discard, body)
						return err
					})
				case "list":
					_, err = c.Listing(ctx)
				case "dele":
					err = c.DeleMany(ctx, []int{1, 2, 3})
					var berr *pop3.BatchError
					if !errors.As(err, &berr) || len(berr.Refused) != 1 || berr.Refused[0].Number != 2 {
						t.Fatalf("DeleMany: %v, want message 2 refused", err)
					}
				case "quit":
					err = c.Quit(ctx)
				}
			}
			tt.check(t, err)
			if elapsed := time.Since(start); elapsed > 20*timeout+2*time.Second {
				t.Errorf("took %v with a %v timeout", elapsed, timeout)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error message is not one line: %q", err.Error())
			}
			nerr := c.Noop(ctx)
			var perr *pop3.Error
			if tt.usable && nerr != nil && !errors.As(nerr, &perr) { // NOOP may be refused before login
				t.Errorf("connection unusable after a refusal: %v", nerr)
			}
			if !tt.usable && !errors.Is(nerr, pop3.ErrUnusable) {
				t.Errorf("after the fault NOOP gave %v, want ErrUnusable", nerr)
			}
		})
	}
}

// TestLoginHandoffEveryMechanism checks, against a server that loses whatever was pipelined behind
// the login (Courier's pop3login execs pop3d), that every mechanism sends nothing behind its last
// message before the final reply, and that a refused login leaves the connection in step.
func TestLoginHandoffEveryMechanism(t *testing.T) {
	msgs := manyMessages(3, 200)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Token: "tok", Messages: msgs, LoginHandoff: true})
	for _, mech := range []string{"user", "apop", "plain", "login", "scram-sha-256", "scram-sha-1", "cram-md5", "xoauth2", "oauthbearer"} {
		t.Run(mech, func(t *testing.T) {
			noLeak(t)
			secret := "secret"
			if mech == "xoauth2" || mech == "oauthbearer" {
				secret = "tok"
			}
			// Replies lost to the handoff would never come: bound the wait.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c := dial(t, s, pop3.TLSImplicit, nil)
			if _, err := c.Capa(ctx); err != nil {
				t.Fatal(err)
			}
			err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "wrong", Mechanism: mech})
			var perr *pop3.Error
			if !errors.As(err, &perr) || !perr.AuthFailed() {
				t.Fatalf("wrong secret: %v", err)
			}
			// Still in step: a second login on the same connection works and lists.
			if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: secret, Mechanism: mech}); err != nil {
				t.Fatalf("second login: %v", err)
			}
			list, err := c.Listing(ctx)
			if err != nil || len(list) != 3 || list[2].UID != msgs[2].UID && list[2].UID != "uid-3" {
				t.Fatalf("Listing = %v, %v", list, err)
			}
			if err := c.Quit(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
