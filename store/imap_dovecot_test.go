package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test/dovecot"
	"github.com/popfetch/popfetch/store"
)

// imapServer starts a private Dovecot with IMAP; the destination user is bob.
func imapServer(t *testing.T, quota string) *dovecot.Server {
	t.Helper()
	return dovecot.Start(t, &dovecot.Options{IMAP: true, Quota: quota,
		Users: []dovecot.User{{Name: "alice", Password: "secret"}, {Name: "bob", Password: "hunter2"}}})
}

func imapOptions(t *testing.T, srv *dovecot.Server) store.IMAPOptions {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, srv.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return store.IMAPOptions{Addr: srv.IMAPSAddr, TLS: store.IMAPImplicitTLS, CAFile: caFile, User: "bob",
		Secret:  func(context.Context) (string, error) { return "hunter2", nil },
		Account: "work", SpoolDir: t.TempDir(), Timeout: 20 * time.Second}
}

// deliverBatch delivers msgs through d and commits them, recording the journal.
func deliverBatch(t *testing.T, d *store.IMAP, msgs []string) ([]store.Pending, error) {
	t.Helper()
	ctx := context.Background()
	for i, m := range msgs {
		env := store.Envelope{Account: "work", UID: fmt.Sprintf("u%d", i), Received: time.Date(2026, 12, 1, 10, 0, i, 0, time.UTC)}
		if _, err := d.Deliver(ctx, env, strings.NewReader(m)); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
	var journal []store.Pending
	err := d.Commit(ctx, func(ps []store.Pending) error { journal = append(journal, ps...); return nil })
	return journal, err
}

// hardMessages are the messages a naive fetcher gets wrong, as POP3 hands them over (LF line ends).
func hardMessages() []string {
	long := strings.Repeat("x", 100_000)
	return []string{
		"Subject: dots\n\n.\n..two\n.\nFrom x\n>From y\n",
		"Subject: long\n\n" + long + "\n" + long + "\n",
		"Subject: 8bit\nContent-Type: text/plain; charset=utf-8\n\nGrüße \xff\xfe raw\n",
		"Subject: nul\n\nbefore\x00after\n",
		"Subject: no final newline\n\nlast line",
		"Subject: crlf already\r\n\r\nkept\r\nbare\rcr\n",
	}
}

// wantOnServer is what an IMAP client must read back: the marker, then the message with bare LF as
// CRLF and nothing else changed.
func wantOnServer(marker, msg string) string {
	var b strings.Builder
	b.WriteString("X-Popfetch-ID: " + marker + "\r\n")
	for i := 0; i < len(msg); i++ {
		if msg[i] == '\n' && (i == 0 || msg[i-1] != '\r') {
			b.WriteString("\r\n")
			continue
		}
		b.WriteByte(msg[i])
	}
	return b.String()
}

func TestIMAPDovecotHardMessagesByteExact(t *testing.T) {
	srv := imapServer(t, "")
	o := imapOptions(t, srv)
	d, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	msgs := hardMessages()
	journal, err := deliverBatch(t, d, msgs)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if len(journal) != len(msgs) {
		t.Fatalf("journal got %d entries, want %d", len(journal), len(msgs))
	}
	got := srv.IMAPMailbox(t, "bob", "hunter2", "INBOX")
	if len(got) != len(msgs) {
		t.Fatalf("mailbox holds %d messages, want %d", len(got), len(msgs))
	}
	for i, m := range msgs {
		marker, _, _ := strings.Cut(journal[i].Ref, "@") // the Ref is the marker and the journal time
		want := wantOnServer(marker, m)
		if strings.Contains(m, "\x00") {
			// Dovecot's own rule: a NUL is shown as 0x80 in FETCH. popfetch sent it: the file
			// Dovecot stored holds it (checked below).
			want = strings.ReplaceAll(want, "\x00", "\x80")
		}
		if !bytes.Equal(got[i].Body, []byte(want)) {
			t.Errorf("message %d differs:\n got %q\nwant %q", i, trunc(got[i].Body), trunc([]byte(want)))
		}
		if !strings.HasPrefix(marker, "work/") || len(marker) != len("work/")+32 {
			t.Errorf("marker %q is not work/<32 hex>", marker)
		}
	}
	if !maildirHolds(t, srv.Maildir("bob"), "before\x00after") {
		t.Errorf("the NUL did not reach the server")
	}
	// Resolve finds every marker, and not an unknown one.
	refs := []string{journal[0].Ref, journal[3].Ref, "work/00000000000000000000000000000000"}
	vis, err := d.Resolve(refs)
	if err != nil {
		t.Fatal(err)
	}
	if !vis[refs[0]] || !vis[refs[1]] || vis[refs[2]] {
		t.Fatalf("Resolve = %v", vis)
	}
}

func trunc(b []byte) []byte {
	if len(b) > 200 {
		return append(b[:200:200], "..."...)
	}
	return b
}

func TestIMAPDovecotFlagsAndInternalDate(t *testing.T) {
	srv := imapServer(t, "")
	o := imapOptions(t, srv)
	o.Flags = []string{`\Seen`, `\Flagged`}
	o.InternalDate = store.IMAPDateHeader
	d, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	msgs := []string{"Date: Tue, 3 Mar 2015 04:05:06 +0100\nSubject: dated\n\nx\n", "Subject: undated\n\ny\n"}
	if _, err := deliverBatch(t, d, msgs); err != nil {
		t.Fatal(err)
	}
	got := srv.IMAPMailbox(t, "bob", "hunter2", "INBOX")
	if len(got) != 2 {
		t.Fatalf("%d messages", len(got))
	}
	if want := time.Date(2015, 3, 3, 3, 5, 6, 0, time.UTC); !got[0].InternalDate.Equal(want) {
		t.Errorf("internal date %v, want the Date: header %v", got[0].InternalDate, want)
	}
	if want := time.Date(2026, 12, 1, 10, 0, 1, 0, time.UTC); !got[1].InternalDate.Equal(want) {
		t.Errorf("internal date %v, want the received time %v", got[1].InternalDate, want)
	}
	for _, m := range got {
		f := strings.Join(m.Flags, " ")
		if !strings.Contains(f, `\Seen`) || !strings.Contains(f, `\Flagged`) {
			t.Errorf("flags %q, want \\Seen and \\Flagged", f)
		}
	}
}

func TestIMAPDovecotTryCreate(t *testing.T) {
	srv := imapServer(t, "")
	o := imapOptions(t, srv)
	o.Mailbox = "Imported"
	d, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = deliverBatch(t, d, []string{"Subject: a\n\n1\n"})
	d.Close()
	var ie *store.IMAPError
	if !errors.As(err, &ie) || imapExit(err) != 74 || !strings.Contains(err.Error(), "create: true") || !strings.Contains(err.Error(), "TRYCREATE") {
		t.Fatalf("without create: err = %v, want exit 74 naming TRYCREATE and create: true", err)
	}
	if got := srv.IMAPMailbox(t, "bob", "hunter2", "Imported"); len(got) != 0 {
		t.Fatalf("%d messages in a mailbox that should not exist", len(got))
	}

	o.Create = true
	d, err = store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := deliverBatch(t, d, []string{"Subject: a\n\n1\n", "Subject: b\n\n2\n"}); err != nil {
		t.Fatalf("with create: %v", err)
	}
	if got := srv.IMAPMailbox(t, "bob", "hunter2", "Imported"); len(got) != 2 {
		t.Fatalf("%d messages in the created mailbox, want 2", len(got))
	}
}

func TestIMAPDovecotQuota(t *testing.T) {
	srv := imapServer(t, "20K")
	o := imapOptions(t, srv)
	d, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	big := "Subject: big\n\n" + strings.Repeat("y", 30_000) + "\n"
	_, err = deliverBatch(t, d, []string{big})
	var ie *store.IMAPError
	if !errors.As(err, &ie) || imapExit(err) != 74 || !strings.Contains(err.Error(), "OVERQUOTA") {
		t.Fatalf("err = %v, want exit 74 with OVERQUOTA", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

func TestIMAPDovecotWrongPassword(t *testing.T) {
	srv := imapServer(t, "")
	o := imapOptions(t, srv)
	o.Secret = func(context.Context) (string, error) { return "wrong", nil }
	d, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = deliverBatch(t, d, []string{"Subject: a\n\n1\n"})
	var ie *store.IMAPError
	if !errors.As(err, &ie) || imapExit(err) != 77 {
		t.Fatalf("err = %v, want exit 77", err)
	}
}

func TestIMAPDovecotFingerprintMismatch(t *testing.T) {
	srv := imapServer(t, "")
	o := imapOptions(t, srv)
	o.CAFile = ""
	o.Fingerprint = "sha256:" + strings.Repeat("ab", 32)
	d, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = deliverBatch(t, d, []string{"Subject: a\n\n1\n"})
	var ie *store.IMAPError
	if !errors.As(err, &ie) || imapExit(err) != 69 || !strings.Contains(err.Error(), "tls_fingerprint") {
		t.Fatalf("err = %v, want exit 69 naming tls_fingerprint", err)
	}
	// The right pin works, over STARTTLS too.
	o.Fingerprint = fmt.Sprintf("sha256:%x", srv.Fingerprint)
	o.TLS, o.Addr = store.IMAPStartTLS, srv.IMAPAddr
	d2, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if _, err := deliverBatch(t, d2, []string{"Subject: a\n\n1\n"}); err != nil {
		t.Fatalf("pinned STARTTLS: %v", err)
	}
}

// cutProxy forwards to addr and cuts every connection after limit octets from the client.
func cutProxy(t *testing.T, addr string, limit int64) string {
	return testProxy(t, addr, func(c, s net.Conn) {
		io.CopyN(s, c, limit)
		c.Close()
		s.Close()
	})
}

// testProxy forwards each connection to addr: the server's octets to the client as they come, the
// client's through up (which returns when that direction is done). It stops when the test ends.
func testProxy(t *testing.T, addr string, up func(c, s net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(c, s); c.Close() }()
			go func() { defer wg.Done(); up(c, s) }()
		}
	}()
	return ln.Addr().String()
}

func TestIMAPDovecotDroppedMidAppend(t *testing.T) {
	srv := imapServer(t, "")
	o := imapOptions(t, srv)
	o.Addr = cutProxy(t, srv.IMAPAddr, 60_000) // plain IMAP: the cut lands inside the literal
	o.TLS, o.AllowPlaintext = store.IMAPNoTLS, true
	d, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	msgs := []string{"Subject: a\n\n1\n", "Subject: b\n\n" + strings.Repeat("z", 200_000) + "\n"}
	_, err = deliverBatch(t, d, msgs)
	var ie *store.IMAPError
	if !errors.As(err, &ie) || imapExit(err) != 75 {
		t.Fatalf("err = %v, want exit 75", err)
	}
	got := srv.IMAPMailbox(t, "bob", "hunter2", "INBOX")
	for _, m := range got {
		if strings.Contains(string(m.Body), "Subject: b") {
			t.Fatalf("the cut message arrived")
		}
	}
}

// maildirHolds reports whether a message file in the maildir md contains s.
func maildirHolds(t *testing.T, md, s string) bool {
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(md, sub, "*"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(s)) {
				return true
			}
		}
	}
	return false
}

// turnProxy forwards to addr and counts round trips: each time the server sends after the client
// did (a client that waits for an answer causes one).
type turnProxy struct {
	mu    sync.Mutex
	last  int // 1: client sent last, 2: server sent last
	turns int
}

func (p *turnProxy) note(dir int) {
	p.mu.Lock()
	if dir == 2 && p.last == 1 {
		p.turns++
	}
	p.last = dir
	p.mu.Unlock()
}

func (p *turnProxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.turns
}

type noteWriter struct {
	w   io.Writer
	p   *turnProxy
	dir int
}

func (n noteWriter) Write(b []byte) (int, error) {
	n.p.note(n.dir)
	return n.w.Write(b)
}

func startTurnProxy(t *testing.T, addr string) (*turnProxy, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &turnProxy{}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(noteWriter{c, p, 2}, s); c.Close() }()
			go func() { defer wg.Done(); io.Copy(noteWriter{s, p, 1}, c); s.Close() }()
		}
	}()
	return p, ln.Addr().String()
}

// TestIMAPDovecotRoundTrips: a batch of messages over 4 KiB costs a constant number of round trips,
// not one per message (non-synchronising literals with LITERAL+, one MULTIAPPEND).
func TestIMAPDovecotRoundTrips(t *testing.T) {
	srv := imapServer(t, "")
	o := imapOptions(t, srv)
	p, addr := startTurnProxy(t, srv.IMAPAddr) // plain IMAP: the turns are the protocol's
	o.Addr, o.TLS, o.AllowPlaintext = addr, store.IMAPNoTLS, true
	for _, multi := range []bool{true, false} {
		d, err := store.NewIMAP(o)
		if err != nil {
			t.Fatal(err)
		}
		before := p.count()
		msgs := make([]string, 50)
		for i := range msgs {
			msgs[i] = fmt.Sprintf("Subject: %d\n\n%s\n", i, strings.Repeat("r", 6000))
		}
		if !multi {
			// As with a server without MULTIAPPEND: one pipelined APPEND per message.
			store.DisableIMAPStreamForTest(d)
		}
		if _, err := deliverBatch(t, d, msgs); err != nil {
			t.Fatal(err)
		}
		d.Close()
		if n := p.count() - before; n > 8 {
			t.Errorf("multiappend %v: 50 messages of 6 KB cost %d round trips, want at most 8", multi, n)
		}
	}
	if got := srv.IMAPMailbox(t, "bob", "hunter2", "INBOX"); len(got) != 100 {
		t.Errorf("%d messages in the mailbox, want 100", len(got))
	}
}

// TestIMAPDovecotNothingVisibleBeforeJournal: the batch is streamed to the server as it is
// delivered, but nothing of it is in the mailbox before the journal has run (so a crash before the
// journal leaves nothing to duplicate), and an aborted batch never appears.
func TestIMAPDovecotNothingVisibleBeforeJournal(t *testing.T) {
	srv := imapServer(t, "")
	o := imapOptions(t, srv)
	d, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	deliver := func(tag string, n int) {
		for i := range n {
			body := fmt.Sprintf("Subject: %s %d\n\n%s\n", tag, i, strings.Repeat("s", 5000))
			if _, err := d.Deliver(ctx, store.Envelope{Account: "work", UID: fmt.Sprintf("%s%d", tag, i)}, strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func() int { return len(srv.IMAPMailbox(t, "bob", "hunter2", "INBOX")) }

	deliver("aborted", 5)
	if n := count(); n != 0 {
		t.Fatalf("%d messages visible before Commit", n)
	}
	if err := d.Abort(); err != nil {
		t.Fatal(err)
	}
	deliver("kept", 4)
	journaled := -1
	if err := d.Commit(ctx, func(ps []store.Pending) error { journaled = count(); return nil }); err != nil {
		t.Fatal(err)
	}
	if journaled != 0 {
		t.Errorf("%d messages were visible when the journal ran, want 0", journaled)
	}
	got := srv.IMAPMailbox(t, "bob", "hunter2", "INBOX")
	if len(got) != 4 {
		t.Fatalf("%d messages after Commit, want 4", len(got))
	}
	for _, m := range got {
		if strings.Contains(string(m.Body), "aborted") {
			t.Errorf("an aborted message arrived")
		}
	}
}

// TestIMAPDovecotSynchronisingLiterals: a server like Gmail (LITERAL-, no LITERAL+, no MULTIAPPEND)
// gets synchronising literals for messages over 4 KiB; [TRYCREATE] with create: true and a refusal
// still work, and every message arrives once.
func TestIMAPDovecotSynchronisingLiterals(t *testing.T) {
	srv := dovecot.Start(t, &dovecot.Options{IMAP: true, Quota: "200K",
		IMAPCapability: "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL- UIDPLUS UNSELECT CHILDREN NAMESPACE",
		Users:          []dovecot.User{{Name: "bob", Password: "hunter2"}}})
	o := imapOptions(t, srv)
	o.Mailbox, o.Create = "Imported", true
	d, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	msgs := []string{"Subject: small\n\nx\n", "Subject: big\n\n" + strings.Repeat("b", 10_000) + "\n", "Subject: big2\n\n" + strings.Repeat("c", 9_000) + "\n"}
	if _, err := deliverBatch(t, d, msgs); err != nil {
		t.Fatalf("first batch (creates the mailbox): %v", err)
	}
	if _, err := deliverBatch(t, d, msgs[1:]); err != nil {
		t.Fatalf("second batch: %v", err)
	}
	if got := srv.IMAPMailbox(t, "bob", "hunter2", "Imported"); len(got) != 5 {
		t.Fatalf("%d messages, want 5", len(got))
	}
	_, err = deliverBatch(t, d, []string{"Subject: huge\n\n" + strings.Repeat("h", 300_000) + "\n"})
	var ie *store.IMAPError
	if !errors.As(err, &ie) || imapExit(err) != 74 || !strings.Contains(err.Error(), "OVERQUOTA") {
		t.Fatalf("over quota: %v, want exit 74 with OVERQUOTA", err)
	}
}

// stallProxy forwards to addr, but stops reading from the client after limit octets (the
// connection stays open): a server that stops reading.
func stallProxy(t *testing.T, addr string, limit int64) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
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
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(c, s) }()
			go func() { defer wg.Done(); io.CopyN(s, c, limit) }() // then nothing is read
		}
	}()
	return ln.Addr().String()
}

// TestIMAPDovecotServerStopsReading: a server that stops reading in the middle of the messages
// fails the commit after the profile's timeout (exit 75), instead of go-imap's 5 minutes per literal.
func TestIMAPDovecotServerStopsReading(t *testing.T) {
	srv := imapServer(t, "")
	o := imapOptions(t, srv)
	o.Addr, o.TLS, o.AllowPlaintext = stallProxy(t, srv.IMAPAddr, 100_000), store.IMAPNoTLS, true
	o.Timeout = time.Second
	d, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	msgs := make([]string, 3)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("Subject: %d\n\n%s\n", i, strings.Repeat("w", 8<<20))
	}
	start := time.Now()
	_, err = deliverBatch(t, d, msgs)
	took := time.Since(start)
	var ie *store.IMAPError
	if !errors.As(err, &ie) || imapExit(err) != 75 {
		t.Fatalf("err = %v, want exit 75", err)
	}
	if took > 30*time.Second {
		t.Errorf("took %v with a 1 s timeout", took)
	}
	t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
}

// watchProxy forwards to addr and closes seen the first time the client sends word.
func watchProxy(t *testing.T, addr, word string) (string, <-chan struct{}) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(c, s); c.Close() }()
			go func() {
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if strings.Contains(string(buf[:n]), word) {
							once.Do(func() { close(seen) })
						}
						s.Write(buf[:n])
					}
					if err != nil {
						s.Close()
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), seen
}

// TestIMAPDovecotResolveLateCommit: a batch journaled moments ago may still be being stored by the
// server for a connection that died (a crashed run); Resolve must see it once it lands instead of
// answering "not there" at once (which would deliver it a second time).
func TestIMAPDovecotResolveLateCommit(t *testing.T) {
	srv := imapServer(t, "")
	o := imapOptions(t, srv)
	addr, searched := watchProxy(t, srv.IMAPAddr, "SEARCH")
	o.Addr, o.TLS, o.AllowPlaintext, o.Timeout = addr, store.IMAPNoTLS, true, 2*time.Second
	// The late batch: journaled now, stored by "the dead connection" right after the first search.
	d0, err := store.NewIMAP(imapOptions(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	defer d0.Close()
	ctx := context.Background()
	if _, err := d0.Deliver(ctx, store.Envelope{Account: "work", UID: "late"}, strings.NewReader("Subject: late\n\nx\n")); err != nil {
		t.Fatal(err)
	}
	refs := []string{store.PendingRefForTest(d0)} // what the crashed run's journal recorded
	committed := make(chan error, 1)
	go func() {
		<-searched
		committed <- d0.Commit(ctx, nil)
	}()
	d, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	vis, err := d.Resolve(refs)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if !vis[refs[0]] {
		t.Fatalf("Resolve = %v: the batch that landed after the first search was not seen", vis)
	}
}

// slowProxy forwards to addr, passing the client's octets at about rate octets per second.
func slowProxy(t *testing.T, addr string, rate int) string {
	return testProxy(t, addr, func(c, s net.Conn) {
		defer s.Close()
		// A small receive window, so that what the link has not carried yet waits in the sender's
		// socket, as on a real slow link (not in this proxy's buffers).
		c.(*net.TCPConn).SetReadBuffer(16 << 10)
		buf := make([]byte, rate/10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, err := s.Write(buf[:n]); err != nil {
					return
				}
				time.Sleep(time.Duration(n) * time.Second / time.Duration(rate)) // the link's speed
			}
			if err != nil {
				return
			}
		}
	})
}

// TestIMAPDovecotSlowUpload: a batch that takes 35 s to upload on a slow link, with a 5 s timeout,
// is delivered: the server says nothing while it receives the literals and much of the batch waits in
// the socket's send queue after the last write, and the wait for the answer counts the queue
// draining as progress (it failed after 6 s when only octets written or read counted).
func TestIMAPDovecotSlowUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 40 s; skipped with -short")
	}
	srv := imapServer(t, "")
	o := imapOptions(t, srv)
	o.Addr, o.TLS, o.AllowPlaintext, o.Timeout = slowProxy(t, srv.IMAPAddr, 100_000), store.IMAPNoTLS, true, 5*time.Second
	d, err := store.NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	msg := "Subject: big\n\n" + strings.Repeat(strings.Repeat("u", 76)+"\n", 45_000) // 3.5 MB: 35 s at 100 kB/s
	start := time.Now()
	if _, err := deliverBatch(t, d, []string{msg}); err != nil {
		t.Fatalf("after %v: %v", time.Since(start).Round(time.Second), err)
	}
	if got := srv.IMAPMailbox(t, "bob", "hunter2", "INBOX"); len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
}

// imapExit is the exit code the CLI gives err, from what it means (cmd/popfetch/classify.go).
func imapExit(err error) int {
	switch {
	case errors.Is(err, store.ErrConfig):
		return 78
	case errors.Is(err, store.ErrTLS):
		return 69
	case errors.Is(err, store.ErrAuth):
		return 77
	case errors.Is(err, store.ErrTemporary):
		return 75
	case errors.Is(err, store.ErrRefused), errors.Is(err, store.ErrLocalIO):
		return 74
	}
	return -1
}
