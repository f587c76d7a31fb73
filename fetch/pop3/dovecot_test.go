package pop3_test

// Integration tests of the client against a real Dovecot (layer 4 of DESIGN.md §7), started per test
// by pop3test/dovecot. They are skipped when Dovecot is not installed, unless
// POPFETCH_REQUIRE_DOVECOT=1.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test/dovecot"
)

// dovecotTrace collects a client's protocol trace and logs it if the test fails.
type dovecotTrace struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *dovecotTrace) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() < 1<<20 {
		w.buf.Write(p)
	}
	return len(p), nil
}

// dovecotDial connects to addr with opts (nil: trust the server's CA), tracing the dialogue into
// the test log on failure, and closes the client at the end of the test.
func dovecotDial(t *testing.T, ctx context.Context, s *dovecot.Server, addr string, mode pop3.TLSMode, opts *pop3.Options) (*pop3.Client, error) {
	t.Helper()
	if opts == nil {
		opts = &pop3.Options{RootCAs: s.CAPool}
	}
	tr := &dovecotTrace{}
	if opts.Trace != nil {
		opts.Trace = io.MultiWriter(opts.Trace, tr)
	} else {
		opts.Trace = tr
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	c, err := pop3.Dial(ctx, addr, mode, opts)
	t.Cleanup(func() {
		if c != nil {
			c.Close()
		}
		if t.Failed() {
			tr.mu.Lock()
			t.Logf("trace of a connection to %s (%v):\n%s", addr, mode, tr.buf.String())
			tr.mu.Unlock()
		}
	})
	return c, err
}

// dovecotLogin connects over implicit TLS, trusting the server's CA, and logs in as alice.
func dovecotLogin(t *testing.T, ctx context.Context, s *dovecot.Server, mech string) *pop3.Client {
	t.Helper()
	return dovecotLoginOpts(t, ctx, s, mech, &pop3.Options{RootCAs: s.CAPool})
}

func dovecotLoginOpts(t *testing.T, ctx context.Context, s *dovecot.Server, mech string, opts *pop3.Options) *pop3.Client {
	t.Helper()
	c, err := dovecotDial(t, ctx, s, s.POP3SAddr, pop3.TLSImplicit, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", Mechanism: mech}); err != nil {
		t.Fatalf("Auth %s: %v", mech, err)
	}
	return c
}

func dovecotContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// asLF is what the client must return for a stored message: CRLF turned into LF, and a final
// newline when the message does not end with one. Dovecot adds CRLF before the terminating dot
// then, even to an empty message ("+OK 0 octets", an empty line, ".").
func asLF(stored []byte) []byte {
	b := bytes.ReplaceAll(stored, []byte("\r\n"), []byte("\n"))
	if len(b) == 0 || b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}

// wireSize is the size Dovecot reports in LIST: the stored message with every line ending a CRLF.
func wireSize(stored []byte) int64 {
	return int64(len(stored) + bytes.Count(stored, []byte("\n")) - bytes.Count(stored, []byte("\r\n")))
}

// pop3_uidl_format = %08Xu%08Xv: UID and UIDVALIDITY as 8 hex digits each, lower case (Dovecot's
// %X is).
var uidlRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// TestDovecotRetrieveHard retrieves over POP3S messages that break naive clients and checks that
// each comes back byte for byte (with LF line endings).
func TestDovecotRetrieveHard(t *testing.T) {
	t.Parallel()
	ctx := dovecotContext(t)
	s := dovecot.Start(t, nil)

	all8bit := make([]byte, 0, 256)
	for b := 0; b < 256; b++ {
		if b != '\r' && b != '\n' {
			all8bit = append(all8bit, byte(b))
		}
	}
	msgs := []struct {
		name   string
		stored []byte
	}{
		{"dot lines", []byte("Subject: dots\n\n.one\n..two\n...three\n.\nafter a lone dot\n. \n.\r\n")},
		{"lone dot last", []byte("Subject: lone dot last\n\n.\n")},
		{"dot without final newline", []byte("Subject: dot end\n\n.")},
		{"long line", []byte("Subject: long\n\n" + strings.Repeat("0123456789", 10_001) + "x\nshort\n")},
		{"8-bit and NUL", slices.Concat([]byte("Subject: =?utf-8?q?8bit?=\nX-Raw: caf\xc3\xa9 \xff\xfe\x00end\n\n"), all8bit, []byte("\nNUL:\x00:\n\x00\n"))},
		{"CRLF", []byte("Subject: crlf\r\n\r\nline one\r\n.dotted\r\n\r\n")},
		{"mixed line endings", []byte("Subject: mixed\r\n\nbare LF\nCRLF\r\nbare LF again\n")},
		{"no final newline", []byte("Subject: no newline\n\nlast line")},
		{"empty body", []byte("Subject: empty body\n\n")},
		{"header only", []byte("Subject: header only\n")},
		{"empty message", []byte{}},
	}
	for _, m := range msgs {
		s.Seed(t, "alice", m.stored)
	}

	c := dovecotLogin(t, ctx, s, pop3.MechAuto)
	list, err := c.Listing(ctx)
	if err != nil {
		t.Fatalf("Listing: %v", err)
	}
	if len(list) != len(msgs) {
		t.Fatalf("Listing: %d messages, want %d: %+v", len(list), len(msgs), list)
	}
	uids := map[string]bool{}
	for i, mi := range list {
		if mi.Number != i+1 || !uidlRE.MatchString(mi.UID) || uids[mi.UID] {
			t.Errorf("Listing[%d] = %+v: want number %d and a new 16-hex-digit UID", i, mi, i+1)
		}
		uids[mi.UID] = true
		if want := wireSize(msgs[i].stored); mi.Size != want {
			t.Errorf("%s: LIST size %d, want %d", msgs[i].name, mi.Size, want)
		}
	}

	for i, m := range msgs {
		body, err := c.Retr(ctx, i+1)
		if err != nil {
			t.Fatalf("%s: Retr %d: %v", m.name, i+1, err)
		}
		got, err := io.ReadAll(body) // small messages; the large one is streamed below
		if err != nil {
			t.Fatalf("%s: reading body: %v", m.name, err)
		}
		if want := asLF(m.stored); !bytes.Equal(got, want) {
			t.Errorf("%s: Retr returned %s", m.name, diffBytes(got, want))
		}
	}

	// TOP n 0: the header and the empty line after it.
	body, err := c.Top(ctx, 1, 0)
	if err != nil {
		t.Fatalf("Top: %v", err)
	}
	if got, err := io.ReadAll(body); err != nil || string(got) != "Subject: dots\n\n" {
		t.Errorf("Top 1 0 = %q, %v", got, err)
	}
	// TOP n 2 stops after two body lines, dot-stuffed lines included.
	body, err = c.Top(ctx, 1, 2)
	if err != nil {
		t.Fatalf("Top: %v", err)
	}
	if got, err := io.ReadAll(body); err != nil || string(got) != "Subject: dots\n\n.one\n..two\n" {
		t.Errorf("Top 1 2 = %q, %v", got, err)
	}
	// A body left unread is discarded by the next command.
	if _, err := c.Retr(ctx, 4); err != nil {
		t.Fatalf("Retr: %v", err)
	}
	if n, _, err := c.Stat(ctx); err != nil || n != len(msgs) {
		t.Errorf("Stat after an unread Retr = %d, %v", n, err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Errorf("Quit: %v", err)
	}

	// Dovecot keeps what was seeded, untouched.
	stored := s.Mailbox(t, "alice")
	if len(stored) != len(msgs) {
		t.Fatalf("Mailbox has %d messages, want %d", len(stored), len(msgs))
	}
	for i, m := range msgs {
		if !bytes.Equal(stored[i], m.stored) {
			t.Errorf("%s: stored %s", m.name, diffBytes(stored[i], m.stored))
		}
	}
}

// diffBytes describes where got and want first differ.
func diffBytes(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	around := func(b []byte) []byte { return b[max(0, i-20):min(len(b), i+20)] }
	return fmt.Sprintf("%d bytes, want %d; first difference at offset %d: got %q, want %q",
		len(got), len(want), i, around(got), around(want))
}

// hashCounter is an io.Writer that hashes and counts what passes through it.
type hashCounter struct {
	h hash.Hash
	n int64
}

func (w *hashCounter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return w.h.Write(p)
}

// bigMessage returns a message of about size bytes with LF line endings, lines of every length up
// to 2,000 bytes, some starting with "." or "..", and 8-bit bytes. The lines are cut from a random
// pool, which keeps this fast under the race detector.
func bigMessage(size int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_\xc3\xa9\xff\x80\x00"
	pool := make([]byte, 1<<16)
	for i := range pool {
		pool[i] = alphabet[r.IntN(len(alphabet))]
	}
	var b bytes.Buffer
	b.Grow(size + 4096)
	b.WriteString("From: big@example.com\nSubject: fifty megabytes\n\n")
	for b.Len() < size {
		switch r.IntN(10) {
		case 0:
			b.WriteString(".")
		case 1:
			b.WriteString("..")
		}
		n := r.IntN(2000)
		off := r.IntN(len(pool) - n)
		b.Write(pool[off : off+n])
		b.WriteByte('\n')
	}
	b.WriteString(".\n")
	return b.Bytes()
}

// TestDovecotLargeMessage streams a 50 MB message through a hashing writer.
func TestDovecotLargeMessage(t *testing.T) {
	t.Parallel()
	ctx := dovecotContext(t)
	s := dovecot.Start(t, nil)
	msg := bigMessage(50 << 20)
	want := sha256.Sum256(msg) // stored with LF endings and a final newline: retrieved as is
	wantLen, wantSize := int64(len(msg)), wireSize(msg)
	s.Seed(t, "alice", []byte("Subject: small\n\nbefore\n"), msg, []byte("Subject: small\n\nafter\n"))
	msg = nil // keep no second copy around while streaming

	c := dovecotLogin(t, ctx, s, pop3.MechAuto)
	list, err := c.Listing(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("Listing = %+v, %v", list, err)
	}
	if list[1].Size != wantSize {
		t.Errorf("LIST size %d, want %d", list[1].Size, wantSize)
	}
	start := time.Now()
	body, err := c.Retr(ctx, 2)
	if err != nil {
		t.Fatalf("Retr: %v", err)
	}
	w := &hashCounter{h: sha256.New()}
	if _, err := io.Copy(w, body); err != nil {
		t.Fatalf("streaming the body: %v after %d bytes", err, w.n)
	}
	t.Logf("50 MB message streamed in %v", time.Since(start))
	if w.n != wantLen || !bytes.Equal(w.h.Sum(nil), want[:]) {
		t.Errorf("got %d bytes with SHA-256 %x, want %d bytes with %x", w.n, w.h.Sum(nil), wantLen, want)
	}
	// The session goes on normally after it.
	body, err = c.Retr(ctx, 3)
	if err != nil {
		t.Fatalf("Retr 3: %v", err)
	}
	if got, _ := io.ReadAll(body); string(got) != "Subject: small\n\nafter\n" {
		t.Errorf("Retr 3 = %q", got)
	}
	if err := c.Quit(ctx); err != nil {
		t.Errorf("Quit: %v", err)
	}
}

// TestDovecotAuth logs in with every mechanism Dovecot offers, over STLS and implicit TLS, and checks
// what a user sees when the password is wrong or the connection is not encrypted.
func TestDovecotAuth(t *testing.T) {
	t.Parallel()
	s := dovecot.Start(t, &dovecot.Options{Users: []dovecot.User{{Name: "alice", Password: "secret"}, {Name: "bob", Password: "p@ss wörd"}}})
	s.Seed(t, "alice", []byte("Subject: hello\n\nhi\n"))

	stat := func(t *testing.T, ctx context.Context, c *pop3.Client) {
		t.Helper()
		n, size, err := c.Stat(ctx)
		if err != nil || n != 1 || size != wireSize([]byte("Subject: hello\n\nhi\n")) {
			t.Errorf("Stat = %d, %d, %v; want 1 message", n, size, err)
		}
		if err := c.Quit(ctx); err != nil {
			t.Errorf("Quit: %v", err)
		}
	}

	t.Run("user over STLS", func(t *testing.T) {
		t.Parallel()
		ctx := dovecotContext(t)
		c, err := dovecotDial(t, ctx, s, s.POP3Addr, pop3.TLSStartTLS, nil)
		if err != nil {
			t.Fatalf("Dial STLS: %v", err)
		}
		if _, ok := c.TLSConnectionState(); !ok {
			t.Fatal("not encrypted after STLS")
		}
		caps, err := c.Capa(ctx)
		if err != nil {
			t.Fatalf("Capa: %v", err)
		}
		if !caps.User || !caps.Pipelining || !caps.UIDL || !caps.Top || !caps.RespCodes || caps.STLS {
			t.Errorf("CAPA after STLS = %+v; want USER PIPELINING UIDL TOP RESP-CODES, no STLS", caps)
		}
		if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", Mechanism: pop3.MechUser}); err != nil {
			t.Fatalf("Auth user: %v", err)
		}
		stat(t, ctx, c)
	})

	mechs := append([]string{pop3.MechAuto, pop3.MechUser}, s.Mechanisms...)
	for _, mech := range mechs {
		t.Run(mech+" over POP3S", func(t *testing.T) {
			t.Parallel()
			ctx := dovecotContext(t)
			stat(t, ctx, dovecotLogin(t, ctx, s, mech))
		})
	}

	t.Run("non-ASCII password", func(t *testing.T) {
		t.Parallel()
		ctx := dovecotContext(t)
		for _, mech := range []string{pop3.MechAuto, pop3.MechPlain, pop3.MechSCRAMSHA256} {
			c, err := dovecotDial(t, ctx, s, s.POP3SAddr, pop3.TLSImplicit, nil)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			if err := c.Auth(ctx, pop3.Credentials{Username: "bob", Secret: "p@ss wörd", Mechanism: mech}); err != nil {
				t.Errorf("Auth %s as bob: %v", mech, err)
			}
			c.Quit(ctx)
		}
	})

	// Dovecot answers every refused login with "-ERR [AUTH] Authentication failed." (in about half a
	// second: see the helper's auth_failure_delay).
	for _, mech := range []string{pop3.MechAuto, pop3.MechUser, pop3.MechAPOP, pop3.MechPlain, pop3.MechLogin, pop3.MechCRAMMD5, pop3.MechSCRAMSHA1, pop3.MechSCRAMSHA256} {
		for _, user := range []string{"alice", "nobody-here"} {
			t.Run("wrong password/"+mech+"/"+user, func(t *testing.T) {
				t.Parallel()
				ctx := dovecotContext(t)
				c, err := dovecotDial(t, ctx, s, s.POP3SAddr, pop3.TLSImplicit, nil)
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				err = c.Auth(ctx, pop3.Credentials{Username: user, Secret: "wrong", Mechanism: mech})
				var perr *pop3.Error
				if !errors.As(err, &perr) {
					t.Fatalf("Auth with a wrong password: %v (%T), want a *pop3.Error", err, err)
				}
				if perr.Code != "AUTH" || !perr.AuthFailed() || perr.Temporary() {
					t.Errorf("Auth with a wrong password: %#v; want Code AUTH, AuthFailed, not Temporary", perr)
				}
				// The session is still usable: the right password works now.
				if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", Mechanism: mech}); err != nil {
					t.Fatalf("Auth after a failure: %v", err)
				}
				stat(t, ctx, c)
			})
		}
	}

	t.Run("plaintext refused without TLS", func(t *testing.T) {
		t.Parallel()
		ctx := dovecotContext(t)
		c, err := dovecotDial(t, ctx, s, s.POP3Addr, pop3.TLSNone, nil)
		if err != nil {
			t.Fatalf("Dial plain: %v", err)
		}
		for _, mech := range []string{pop3.MechUser, pop3.MechPlain, pop3.MechLogin} {
			err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", Mechanism: mech})
			if !errors.Is(err, pop3.ErrPlaintextAuth) {
				t.Errorf("Auth %s over plain TCP: %v, want ErrPlaintextAuth", mech, err)
			}
		}
		// Challenge-response sends no password: allowed, and Dovecot accepts it.
		if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", Mechanism: pop3.MechSCRAMSHA256}); err != nil {
			t.Fatalf("Auth scram-sha-256 over plain TCP: %v", err)
		}
		stat(t, ctx, c)

		// With AllowPlaintext the user asked for it: Dovecot (disable_plaintext_auth = no) accepts.
		c, err = dovecotDial(t, ctx, s, s.POP3Addr, pop3.TLSNone, nil)
		if err != nil {
			t.Fatalf("Dial plain: %v", err)
		}
		if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", Mechanism: pop3.MechUser, AllowPlaintext: true}); err != nil {
			t.Fatalf("Auth user with AllowPlaintext: %v", err)
		}
		stat(t, ctx, c)
	})
}

// inFlight watches a client's trace and records the most RETR commands written before their
// replies were read: more than one means the commands were pipelined.
type inFlight struct {
	mu        sync.Mutex
	partial   []byte
	sent, got int
	max       int
}

func (w *inFlight) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		switch {
		case strings.HasPrefix(line, "C: RETR "):
			w.sent++
		case w.sent > w.got && (strings.HasPrefix(line, "S: +OK") || strings.HasPrefix(line, "S: -ERR")):
			w.got++
		}
		w.max = max(w.max, w.sent-w.got)
	}
	return len(p), nil
}

// TestDovecotPipelined retrieves 1,000 messages with RetrMany, then deletes them with DeleMany: a
// session closed without QUIT leaves the mailbox as it was; one ended with QUIT empties it.
func TestDovecotPipelined(t *testing.T) {
	t.Parallel()
	ctx := dovecotContext(t)
	s := dovecot.Start(t, nil)
	const count = 1000
	r := rand.New(rand.NewPCG(3, 4))
	msgs := make([][]byte, count)
	for i := range msgs {
		var b bytes.Buffer
		fmt.Fprintf(&b, "Message-ID: <%d@popfetch.test>\nSubject: message %d\n\n", i+1, i+1)
		for range r.IntN(20) {
			if r.IntN(4) == 0 {
				b.WriteString(".")
			}
			b.WriteString(strings.Repeat("x", r.IntN(300)))
			b.WriteString("\n")
		}
		msgs[i] = b.Bytes()
	}
	s.Seed(t, "alice", msgs...)
	nums := make([]int, count)
	for i := range nums {
		nums[i] = i + 1
	}

	retrieveAll := func(c *pop3.Client) []string {
		t.Helper()
		caps, err := c.Capa(ctx)
		if err != nil || !caps.Pipelining {
			t.Fatalf("Capa = %+v, %v; want PIPELINING", caps, err)
		}
		list, err := c.Listing(ctx)
		if err != nil || len(list) != count {
			t.Fatalf("Listing: %d messages, %v; want %d", len(list), err, count)
		}
		var uids []string
		for _, mi := range list {
			uids = append(uids, mi.UID)
		}
		next := 1
		start := time.Now()
		err = c.RetrMany(ctx, nums, func(n int, body io.Reader, err error) error {
			if err != nil {
				return fmt.Errorf("RETR %d refused: %w", n, err)
			}
			if n != next {
				return fmt.Errorf("got message %d, want %d", n, next)
			}
			next++
			got, err := io.ReadAll(body)
			if err != nil {
				return fmt.Errorf("reading message %d: %w", n, err)
			}
			if !bytes.Equal(got, msgs[n-1]) {
				return fmt.Errorf("message %d: %s", n, diffBytes(got, msgs[n-1]))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("RetrMany: %v", err)
		}
		if next != count+1 {
			t.Fatalf("RetrMany handed over %d messages, want %d", next-1, count)
		}
		t.Logf("RetrMany: %d messages in %v", count, time.Since(start))
		return uids
	}

	// Session 1: retrieve and delete everything, then drop the connection without QUIT.
	flight := &inFlight{}
	c := dovecotLoginOpts(t, ctx, s, pop3.MechAuto, &pop3.Options{RootCAs: s.CAPool, Trace: flight})
	uids := retrieveAll(c)
	flight.mu.Lock()
	if flight.sent != count || flight.max < 2 {
		t.Errorf("RetrMany sent %d RETR, at most %d in flight; want %d, pipelined", flight.sent, flight.max, count)
	}
	t.Logf("RetrMany: at most %d RETR in flight", flight.max)
	flight.mu.Unlock()
	if err := c.DeleMany(ctx, nums); err != nil {
		t.Fatalf("DeleMany: %v", err)
	}
	if n, _, err := c.Stat(ctx); err != nil || n != 0 {
		t.Errorf("Stat after DeleMany = %d, %v; want 0 (deleted messages are hidden)", n, err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	stored := s.Mailbox(t, "alice")
	if len(stored) != count {
		t.Fatalf("after Close without QUIT: %d messages stored, want all %d", len(stored), count)
	}
	for i := range stored {
		if !bytes.Equal(stored[i], msgs[i]) {
			t.Fatalf("after Close without QUIT: message %d changed: %s", i+1, diffBytes(stored[i], msgs[i]))
		}
	}

	// Session 2: the same messages under the same UIDs; delete them all and QUIT.
	c = dovecotLogin(t, ctx, s, pop3.MechAuto)
	if got := retrieveAll(c); !slices.Equal(got, uids) {
		t.Errorf("UIDs changed between sessions")
	}
	if err := c.DeleMany(ctx, nums); err != nil {
		t.Fatalf("DeleMany: %v", err)
	}
	// A second DELE of a deleted message is refused, and reported per message.
	err := c.DeleMany(ctx, []int{1, 2})
	var berr *pop3.BatchError
	if !errors.As(err, &berr) || len(berr.Refused) != 2 || berr.Refused[0].Number != 1 {
		t.Errorf("DeleMany of deleted messages: %v; want a *BatchError refusing 1 and 2", err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	if stored := s.Mailbox(t, "alice"); len(stored) != 0 {
		t.Fatalf("after DeleMany and QUIT: %d messages left, want none", len(stored))
	}
	c = dovecotLogin(t, ctx, s, pop3.MechAuto)
	if n, _, err := c.Stat(ctx); err != nil || n != 0 {
		t.Errorf("Stat in a new session = %d, %v; want 0", n, err)
	}
	c.Quit(ctx)
}

// TestDovecotTLSVerify checks certificate verification: an unknown CA is refused (implicit TLS and
// STLS alike), a pinned fingerprint is accepted without the CA, a wrong pin is refused even with it.
func TestDovecotTLSVerify(t *testing.T) {
	t.Parallel()
	ctx := dovecotContext(t)
	s := dovecot.Start(t, nil)
	other := dovecot.Start(t, nil) // a different CA and certificate

	for _, tc := range []struct {
		addr string
		mode pop3.TLSMode
	}{{s.POP3SAddr, pop3.TLSImplicit}, {s.POP3Addr, pop3.TLSStartTLS}} {
		for name, opts := range map[string]*pop3.Options{
			"system roots": {},
			"another CA":   {RootCAs: other.CAPool},
		} {
			_, err := dovecotDial(t, ctx, s, tc.addr, tc.mode, opts)
			var terr *pop3.TLSError
			var verr *tls.CertificateVerificationError
			if !errors.As(err, &terr) || !errors.As(err, &verr) {
				t.Errorf("%v with %s: %v (%T); want a *pop3.TLSError wrapping a certificate verification error", tc.mode, name, err, err)
			} else if !strings.Contains(err.Error(), "certificate") {
				t.Errorf("%v with %s: %q does not say \"certificate\"", tc.mode, name, err)
			}
		}

		for _, fp := range []string{hex.EncodeToString(s.Fingerprint[:]), pop3.FormatFingerprint(s.Fingerprint)} {
			c, err := dovecotDial(t, ctx, s, tc.addr, tc.mode, &pop3.Options{Fingerprint: fp})
			if err != nil {
				t.Fatalf("%v pinned to %s without the CA: %v", tc.mode, fp, err)
			}
			if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret"}); err != nil {
				t.Fatalf("Auth: %v", err)
			}
			if err := c.Quit(ctx); err != nil {
				t.Errorf("Quit: %v", err)
			}
		}

		wrong := s.Fingerprint
		wrong[0] ^= 1
		_, err := dovecotDial(t, ctx, s, tc.addr, tc.mode, &pop3.Options{RootCAs: s.CAPool, Fingerprint: hex.EncodeToString(wrong[:])})
		var terr *pop3.TLSError
		if !errors.As(err, &terr) || !errors.Is(err, pop3.ErrFingerprintMismatch) {
			t.Errorf("%v with a wrong pin: %v; want a *pop3.TLSError wrapping ErrFingerprintMismatch", tc.mode, err)
		}
		// The other server's CA does not vouch for this server, but the pin of its own leaf is refused too.
		_, err = dovecotDial(t, ctx, s, tc.addr, tc.mode, &pop3.Options{Fingerprint: hex.EncodeToString(other.Fingerprint[:])})
		if !errors.Is(err, pop3.ErrFingerprintMismatch) {
			t.Errorf("%v pinned to another server's certificate: %v; want ErrFingerprintMismatch", tc.mode, err)
		}
	}

	// With the CA, by name and by IP address (the certificate holds both).
	for _, addr := range []string{s.POP3SAddr, strings.Replace(s.POP3SAddr, "127.0.0.1", "localhost", 1)} {
		c, err := dovecotDial(t, ctx, s, addr, pop3.TLSImplicit, nil)
		if err != nil {
			t.Fatalf("Dial %s with the CA: %v", addr, err)
		}
		c.Quit(ctx)
	}
}

// TestDovecotListingAfterLogin checks that LIST and UIDL go out only after the login's verdict (a
// server may change process at login, as Courier does), for USER/PASS, PLAIN, SCRAM and auto, and
// that a refused login leaves the connection in step.
func TestDovecotListingAfterLogin(t *testing.T) {
	t.Parallel()
	s := dovecot.Start(t, nil)
	msgs := [][]byte{[]byte("Subject: a\n\none\n"), []byte("Subject: b\n\ntwo\n")}
	s.Seed(t, "alice", msgs...)
	for _, mech := range []string{"user", "plain", "scram-sha-256", "auto"} {
		t.Run(mech, func(t *testing.T) {
			ctx := dovecotContext(t)
			var trace bytes.Buffer
			c, err := dovecotDial(t, ctx, s, s.POP3SAddr, pop3.TLSImplicit, &pop3.Options{RootCAs: s.CAPool, Trace: &trace})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Capa(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "wrong", Mechanism: mech}); err == nil {
				t.Fatal("wrong password accepted")
			}
			if err := c.Auth(ctx, pop3.Credentials{Username: "alice", Secret: "secret", Mechanism: mech}); err != nil {
				t.Fatalf("login: %v", err)
			}
			list, err := c.Listing(ctx)
			if err != nil || len(list) != 2 || list[0].UID == "" || list[1].Size != wireSize(msgs[1]) {
				t.Fatalf("Listing = %+v, %v", list, err)
			}
			// LIST went out after the login's verdict came back.
			tr := trace.String()
			if i, j := strings.LastIndex(tr, "C: LIST"), strings.LastIndex(tr, "S: +OK Logged in"); i < 0 || j < 0 || i < j {
				t.Errorf("LIST was sent before the login's verdict:\n%s", tr)
			}
			if err := c.Quit(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
