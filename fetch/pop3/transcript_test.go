package pop3

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// step is one exchange of a scripted server: it expects the client line want ("" = expect nothing)
// and then sends send (lines joined with CRLF; "" = send nothing).
type step struct {
	want string
	send string
}

// scripted runs a scripted server on one end of a net.Pipe and returns a client on the other end.
// The server's verdict arrives on the returned channel when the script ends or fails.
func scripted(t *testing.T, opts *Options, greeting string, steps []step) (*Client, <-chan error, error) {
	t.Helper()
	cc, sc := net.Pipe()
	done := make(chan error, 1)
	go func() {
		defer sc.Close()
		br := bufio.NewReader(sc)
		write := func(s string) error {
			if s == "" {
				return nil
			}
			_, err := io.WriteString(sc, strings.ReplaceAll(s, "\n", "\r\n")+"\r\n")
			return err
		}
		if err := write(greeting); err != nil {
			done <- err
			return
		}
		for _, st := range steps {
			if st.want != "" {
				line, err := br.ReadString('\n')
				if err != nil {
					done <- errors.New("server: reading " + st.want + ": " + err.Error())
					return
				}
				if got := strings.TrimRight(line, "\r\n"); got != st.want {
					done <- errors.New("server: got " + got + ", want " + st.want)
					return
				}
			}
			if err := write(st.send); err != nil {
				done <- err
				return
			}
		}
		done <- nil
		io.Copy(io.Discard, br) // hold the connection open until the client closes it
	}()
	t.Cleanup(func() { cc.Close() })
	c, err := NewClient(cc, opts)
	return c, done, err
}

func TestGreetingAndAPOP(t *testing.T) {
	// RFC 1939 §7's APOP example.
	var trace bytes.Buffer
	c, done, err := scripted(t, &Options{Trace: &trace}, "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>", []step{
		{"APOP mrose c4c9334bac560ecc979e58001b3e22fb", "+OK maildrop has 1 message (369 octets)"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Greeting(); got != "POP3 server ready <1896.697170952@dbc.mtview.ca.us>" {
		t.Errorf("Greeting() = %q", got)
	}
	if err := c.Auth(context.Background(), Credentials{Username: "mrose", Secret: "tanstaaf", Mechanism: "apop", AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(trace.String(), "c4c9334bac560ecc979e58001b3e22fb") || !strings.Contains(trace.String(), "C: APOP mrose <redacted>") {
		t.Errorf("trace does not redact the APOP digest:\n%s", trace.String())
	}
}

func TestGreetingRefusedOrGarbage(t *testing.T) {
	_, _, err := scripted(t, nil, "-ERR [SYS/TEMP] overloaded", nil)
	var perr *Error
	if !errors.As(err, &perr) || perr.Command != "greeting" || perr.Code != "SYS/TEMP" || !perr.Temporary() {
		t.Errorf("refused greeting: err = %v", err)
	}
	_, _, err = scripted(t, nil, "* OK [CAPABILITY IMAP4rev1] this is IMAP", nil)
	if !errors.Is(err, ErrProtocol) {
		t.Errorf("IMAP greeting: err = %v, want ErrProtocol", err)
	}
}

func TestUserPassLockStepAndRedaction(t *testing.T) {
	var trace bytes.Buffer
	c, done, err := scripted(t, &Options{Trace: &trace}, "+OK hi", []step{
		{"USER alice", "+OK"},
		{"PASS s3cret-pw", "+OK logged in"},
		{"STAT", "+OK 2 320"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Auth(ctx, Credentials{Username: "alice", Secret: "s3cret-pw", Mechanism: "user", AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	n, size, err := c.Stat(ctx)
	if err != nil || n != 2 || size != 320 {
		t.Fatalf("Stat = %d, %d, %v", n, size, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(trace.String(), "s3cret-pw") || !strings.Contains(trace.String(), "C: PASS <redacted>") {
		t.Errorf("trace shows the password:\n%s", trace.String())
	}
}

func TestPlaintextAuthRefusedWithoutTLS(t *testing.T) {
	c, done, err := scripted(t, nil, "+OK hi", []step{
		{"CAPA", "+OK\nUSER\nSASL PLAIN LOGIN\n."},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, mech := range []string{"auto", "user", "plain", "login", "xoauth2", "oauthbearer"} {
		err := c.Auth(context.Background(), Credentials{Username: "u", Secret: "p", Mechanism: mech})
		if !errors.Is(err, ErrPlaintextAuth) {
			t.Errorf("%s over plaintext: err = %v, want ErrPlaintextAuth", mech, err)
		}
	}
	// The script ends after CAPA: any further line would have failed it.
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestAutoPrefersChallengeResponseWithoutTLS: allowed to authenticate without TLS, auto still
// prefers a mechanism that does not send the password.
func TestAutoPrefersChallengeResponseWithoutTLS(t *testing.T) {
	c, done, err := scripted(t, nil, "+OK hi", []step{
		{"CAPA", "+OK\nUSER\nSASL PLAIN CRAM-MD5\n."},
		// RFC 2195 §2's example exchange.
		{"AUTH CRAM-MD5", "+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"},
		{"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw", "+OK"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(context.Background(), Credentials{Username: "tim", Secret: "tanstaaftanstaaf", AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestNoDigestsInClear: APOP and CRAM-MD5 digests can be cracked offline; without TLS and without
// AllowPlaintext neither auto nor an explicit choice sends them.
func TestNoDigestsInClear(t *testing.T) {
	c, done, err := scripted(t, nil, "+OK hi <1.2@example.org>", []step{
		{"CAPA", "+OK\nSASL CRAM-MD5\n."},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Capa(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, mech := range []string{"auto", "apop", "cram-md5"} {
		err := c.Auth(context.Background(), Credentials{Username: "u", Secret: "p", Mechanism: mech})
		if !errors.Is(err, ErrPlaintextAuth) {
			t.Errorf("%s over plaintext: err = %v, want ErrPlaintextAuth", mech, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAPOPTimestamp(t *testing.T) {
	for _, tt := range []struct{ greeting, want string }{
		{"POP3 server ready <1896.697170952@dbc.mtview.ca.us>", "<1896.697170952@dbc.mtview.ca.us>"},
		{"ready <a@b> and <c@d>", "<a@b>"},
		{"ready", ""},
		{"ready <no-at-sign>", ""},
		{"ready <@b>", ""},
		{"ready <a@>", ""},
		{"ready <a b@c>", ""},
		{"ready <a\x1b[2J@c>", ""},
		{"ready <a\xc3\xa9@c>", ""},
		{"ready <unterminated@x", ""},
		{"ready <" + strings.Repeat("x", 300) + "@y>", ""},
	} {
		if got := apopTimestamp(tt.greeting); got != tt.want {
			t.Errorf("apopTimestamp(%q) = %q, want %q", tt.greeting, got, tt.want)
		}
	}
}

func TestSASLInitialResponseAndTwoStep(t *testing.T) {
	token := strings.Repeat("T", 300) // too long for an initial response (RFC 5034 §4: 255 octets)
	ir := base64.StdEncoding.EncodeToString([]byte("user=a@b\x01auth=Bearer " + token + "\x01\x01"))
	var trace bytes.Buffer
	c, done, err := scripted(t, &Options{Trace: &trace}, "+OK hi", []step{
		{"AUTH PLAIN AGEAcA==", "+OK"},
		// Too long for the command line: sent after an empty challenge (Microsoft's two-step form).
		{"AUTH XOAUTH2", "+ "},
		{ir, "+OK"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Auth(ctx, Credentials{Username: "a", Secret: "p", Mechanism: "plain", AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(ctx, Credentials{Username: "a@b", Secret: token, Mechanism: "xoauth2", AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(trace.String(), ir) || strings.Contains(trace.String(), "AGEAcA==") {
		t.Errorf("trace shows SASL responses:\n%s", trace.String())
	}
}

func TestOversizedLineBreaksConnection(t *testing.T) {
	c, done, err := scripted(t, nil, "+OK hi", []step{
		{"NOOP", "+OK " + strings.Repeat("x", maxLineLength+10)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Noop(ctx); !errors.Is(err, ErrProtocol) {
		t.Fatalf("oversized reply: err = %v, want ErrProtocol", err)
	}
	if err := c.Noop(ctx); !errors.Is(err, ErrUnusable) {
		t.Fatalf("command after a protocol violation: err = %v, want ErrUnusable", err)
	}
	<-done
}

func TestRefusalKeepsConnectionUsable(t *testing.T) {
	c, done, err := scripted(t, nil, "+OK hi", []step{
		{"RETR 9", "-ERR [SYS/PERM] no such message"},
		{"NOOP", "+OK"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.Retr(ctx, 9)
	var perr *Error
	if !errors.As(err, &perr) || perr.Code != "SYS/PERM" || perr.Command != "RETR" || perr.Temporary() {
		t.Fatalf("RETR refused: err = %v", err)
	}
	if err := c.Noop(ctx); err != nil {
		t.Fatalf("NOOP after a refusal: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestListingMergesLISTAndUIDL(t *testing.T) {
	c, done, err := scripted(t, nil, "+OK hi", []step{
		{"CAPA", "+OK\nUIDL\n."},
		{"LIST", "+OK 2 messages\n1 120\n2 200\n."},
		{"UIDL", "+OK\n1 whqtswO00WBw418f9t5JxYwZ\n2 QhdPYR:00WBw1Ph7x7\n."},
		{"LIST", "+OK\n1 5\n."},
		{"UIDL", "-ERR unknown command"},
		{"LIST", "+OK\n1 5\n1 6\n."},
		{"UIDL", "+OK\n1 a\n."},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Capa(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := c.Listing(ctx)
	want := []MessageInfo{{1, 120, "whqtswO00WBw418f9t5JxYwZ"}, {2, 200, "QhdPYR:00WBw1Ph7x7"}}
	if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Listing = %v, %v", got, err)
	}
	got, err = c.Listing(ctx)
	if err != nil || len(got) != 1 || got[0] != (MessageInfo{1, 5, ""}) {
		t.Fatalf("Listing without UIDL = %v, %v", got, err)
	}
	if _, err := c.Listing(ctx); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Listing with a duplicate number: err = %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStalledServerTimesOut(t *testing.T) {
	c, done, err := scripted(t, &Options{Timeout: 100 * time.Millisecond}, "+OK hi", []step{
		{"NOOP", ""}, // never answers
	})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Noop(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("stalled NOOP: err = %v, want a timeout", err)
	}
	if !strings.Contains(err.Error(), "NOOP") {
		t.Errorf("timeout error does not say which command: %v", err)
	}
	<-done
}

func TestContextCancelsBlockedRead(t *testing.T) {
	c, done, err := scripted(t, nil, "+OK hi", []step{
		{"NOOP", ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Noop(ctx) }()
	<-done // the server has read NOOP: the client is now blocked reading the reply
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled NOOP: err = %v, want context.Canceled", err)
	}
	if err := c.Noop(context.Background()); !errors.Is(err, ErrUnusable) {
		t.Fatalf("after cancel: err = %v, want ErrUnusable", err)
	}
}

func TestRetrStreamsAndNextCommandDrains(t *testing.T) {
	c, done, err := scripted(t, nil, "+OK hi", []step{
		{"RETR 1", "+OK 30 octets\nSubject: x\n\n..leading dot\n."},
		{"TOP 1 0", "+OK\nSubject: x\n\n."},
		{"NOOP", "+OK"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := c.Retr(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(r)
	if err != nil || string(body) != "Subject: x\n\n.leading dot\n" {
		t.Fatalf("RETR body = %q, %v", body, err)
	}
	r, err = c.Top(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 3)
	io.ReadFull(r, first) // read a little, leave the rest
	if err := c.Noop(ctx); err != nil {
		t.Fatalf("NOOP after a partly read TOP: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestListingWaitsForLoginReply(t *testing.T) {
	c, done, err := scripted(t, nil, "+OK hi", []step{
		{"CAPA", "+OK\nUSER\nPIPELINING\nUIDL\n."},
		// USER and PASS in one flush; LIST and UIDL only after PASS's reply.
		{"USER alice", ""},
		{"PASS pw", "+OK\n+OK logged in"},
		{"LIST", ""},
		{"UIDL", "+OK\n1 10\n2 20\n.\n+OK\n1 u1\n2 u2\n."},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Capa(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(ctx, Credentials{Username: "alice", Secret: "pw", Mechanism: "user", AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Listing(ctx)
	if err != nil || len(got) != 2 || got[1] != (MessageInfo{2, 20, "u2"}) {
		t.Fatalf("Listing = %v, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
