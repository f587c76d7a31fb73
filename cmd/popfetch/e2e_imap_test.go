package main

// End-to-end tests of deliver: imap: (issue 14): the real binary fetches from pop3test and appends
// to a private Dovecot's IMAP; what a user notices is what an IMAP client reads back, what is left
// on the POP3 server, and the exit status.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test/dovecot"
	"github.com/popfetch/popfetch/internal/report"
)

// imapDovecot starts a Dovecot whose IMAP receives the messages: user bob, password hunter2.
func imapDovecot(t *testing.T, quota string) *dovecot.Server {
	t.Helper()
	return dovecot.Start(t, &dovecot.Options{IMAP: true, Quota: quota,
		Users: []dovecot.User{{Name: "alice", Password: "secret"}, {Name: "bob", Password: "hunter2"}}})
}

// imapDeliver is the deliver: value appending to d's IMAP (implicit TLS, its CA as ca_file) as bob;
// kv are more keys of the imap: mapping ("mailbox: X"), or replacements of these.
func imapDeliver(t *testing.T, d *dovecot.Server, kv ...string) string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "imap-ca.pem")
	if err := os.WriteFile(ca, d.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(d.IMAPSAddr)
	keys := []string{"host", "port", "ca_file", "user", "password", "timeout"}
	vals := map[string]string{"host": "127.0.0.1", "port": port, "ca_file": strconv.Quote(ca), "user": "bob",
		"password": "hunter2", "timeout": "20s"}
	for _, l := range kv {
		k, v, _ := strings.Cut(l, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	var parts []string
	for _, k := range keys {
		if vals[k] != "-" {
			parts = append(parts, k+": "+vals[k])
		}
	}
	return "{imap: {" + strings.Join(parts, ", ") + "}}"
}

// imapHardMessages are the e2e hard messages plus those an IMAP path can get wrong: 100,000-character
// lines, a NUL, a CR alone.
func imapHardMessages() []pop3test.Message {
	long := strings.Repeat("x", 100_000)
	return append(hardMessages(),
		pop3test.Message{UID: "uid-100k", Data: []byte("Subject: 100k\n\n" + long + "\n" + long + "\n")},
		pop3test.Message{UID: "uid-nul", Data: []byte("Subject: nul\n\nbefore\x00after\n")},
		pop3test.Message{UID: "uid-cr", Data: []byte("Subject: cr\n\na lone\rcarriage return\n")},
	)
}

var markerLine = regexp.MustCompile(`^X-Popfetch-ID: ([A-Za-z0-9._-]+)/([0-9a-f]{32})\r\n`)

// imapBodies returns what bob's mailbox holds, each without its marker line (which must be there,
// naming account), sorted; and the markers.
func imapBodies(t *testing.T, d *dovecot.Server, mailbox, account string) (bodies, markers []string) {
	t.Helper()
	for _, m := range d.IMAPMailbox(t, "bob", "hunter2", mailbox) {
		loc := markerLine.FindSubmatchIndex(m.Body)
		if loc == nil || string(m.Body[loc[2]:loc[3]]) != account {
			t.Fatalf("message without the X-Popfetch-ID: %s/… line: %.200q", account, m.Body)
		}
		bodies = append(bodies, string(m.Body[loc[1]:]))
		markers = append(markers, string(m.Body[:loc[1]]))
	}
	slices.Sort(bodies)
	return bodies, markers
}

// crlfContents is contents(msgs) as IMAP must hold them: bare LF made CRLF, and (Dovecot's own rule
// when it shows a message) NUL shown as 0x80.
func crlfContents(msgs []pop3test.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		s := strings.ReplaceAll(string(m.Data), "\n", "\r\n")
		out[i] = strings.ReplaceAll(s, "\x00", "\x80")
	}
	slices.Sort(out)
	return out
}

func TestRelIMAPHardMessages(t *testing.T) {
	relTrack(t)
	t.Parallel()
	d := imapDovecot(t, "")
	msgs := imapHardMessages()

	// delete mode: everything arrives once, byte for byte but for CRLF and the marker; the POP3
	// server is emptied; a second run fetches nothing.
	src := newServer(t, msgs, nil)
	p := newProfile(t)
	p.add("isp", src, "deliver: "+imapDeliver(t, d))
	r := p.run("sync")
	expectCode(t, r, 0)
	if r.stdout != "" || r.stderr != "" {
		t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if n := len(src.Messages()); n != 0 {
		t.Errorf("the POP3 server still holds %d message(s)", n)
	}
	got, markers := imapBodies(t, d, "INBOX", "isp")
	sameMessages(t, "IMAP INBOX", got, crlfContents(msgs))
	slices.Sort(markers)
	if len(slices.Compact(markers)) != len(msgs) {
		t.Errorf("markers are not unique: %q", markers)
	}
	r = p.run("--json", "sync")
	expectCode(t, r, 0)
	var sum report.Summary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Fetched != 0 {
		t.Errorf("second run: %v: %s", err, r.stdout)
	}
	if got, _ := imapBodies(t, d, "INBOX", "isp"); len(got) != len(msgs) {
		t.Errorf("after a second run the mailbox holds %d, want %d", len(got), len(msgs))
	}

	// keep mode, into another mailbox: twice, each message once; the POP3 server keeps them all.
	src = newServer(t, msgs, nil)
	p = newProfile(t)
	p.add("isp", src, "keep: true", "deliver: "+imapDeliver(t, d, "mailbox: Kept", "create: true"))
	expectCode(t, p.run("sync"), 0)
	expectCode(t, p.run("sync"), 0)
	if n := len(src.Messages()); n != len(msgs) {
		t.Errorf("keep mode: the POP3 server holds %d message(s), want %d", n, len(msgs))
	}
	got, _ = imapBodies(t, d, "Kept", "isp")
	sameMessages(t, "IMAP Kept", got, crlfContents(msgs))
	relRecord("imap", fmt.Sprintf("%d hard messages (dot lines, From lines, 16 KiB and 100,000-character lines, 8-bit, NUL, a lone CR) into Dovecot IMAP, delete mode, then keep mode run twice", len(msgs)),
		"each message in the mailbox once, byte for byte but bare LF → CRLF and the X-Popfetch-ID line (Dovecot shows NUL as 0x80); delete: POP3 server empty, a second run fetches nothing; keep: POP3 server unchanged", "0", 0, 0)
}

// TestIMAPSyncCommandsUnchanged: --dry-run, check, list and --json work with an IMAP destination,
// and touch neither server; config check shows the destination.
func TestIMAPSyncCommandsUnchanged(t *testing.T) {
	t.Parallel()
	d := imapDovecot(t, "")
	msgs := numbered(3)
	src := newServer(t, msgs, nil)
	p := newProfile(t)
	p.add("isp", src, "deliver: "+imapDeliver(t, d))
	r := p.run("sync", "--dry-run")
	expectCode(t, r, 0)
	if strings.Count(r.stdout, "retrieve, delete") != 3 {
		t.Errorf("dry run printed %q", r.stdout)
	}
	r = p.run("check")
	expectCode(t, r, 0)
	if !strings.Contains(r.stdout, "isp: 3 new message(s)") {
		t.Errorf("check printed %q", r.stdout)
	}
	expectCode(t, p.run("list", "isp"), 0)
	r = p.run("--json", "config", "check")
	expectCode(t, r, 0)
	if !strings.Contains(r.stdout, "imap bob at 127.0.0.1:") || strings.Contains(r.stdout, "hunter2") {
		t.Errorf("config check: %s", r.stdout)
	}
	if n := len(src.Messages()); n != 3 {
		t.Errorf("the POP3 server holds %d message(s), want 3", n)
	}
	if got := d.IMAPMailbox(t, "bob", "hunter2", "INBOX"); len(got) != 0 {
		t.Errorf("the IMAP mailbox holds %d message(s)", len(got))
	}
}

// TestIMAPSyncRefusals: every way the destination can refuse is one line with its exit code, and
// nothing is deleted on the POP3 server; once the cause is gone the next run delivers exactly once.
func TestRelIMAPRefusals(t *testing.T) {
	relTrack(t)
	t.Parallel()
	d := imapDovecot(t, "20K")
	msgs := numbered(3)
	cases := []struct {
		name, what, want string
		code             int
		kv               []string
		msgs             []pop3test.Message
	}{
		{"trycreate", "APPEND answered NO [TRYCREATE] (mailbox: Missing, no create)", `mailbox "Missing" does not exist (set create: true to create it)`, 74, []string{"mailbox: Missing"}, msgs},
		{"quota", "APPEND answered NO [OVERQUOTA] (Dovecot quota 20K, a 40 KB message)", "OVERQUOTA", 74, nil, []pop3test.Message{{UID: "big", Data: []byte("Subject: big\n\n" + strings.Repeat("q", 40_000) + "\n")}}},
		{"password", "wrong IMAP password (LOGIN answered NO [AUTHENTICATIONFAILED])", "login", 77, []string{"password: wrong"}, msgs},
		{"pin", "IMAP server certificate does not match tls_fingerprint", "tls_fingerprint", 69, []string{"ca_file: -", "tls_fingerprint: sha256:" + strings.Repeat("ab", 32)}, msgs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := newServer(t, c.msgs, nil)
			p := newProfile(t)
			p.add("isp", src, "deliver: "+imapDeliver(t, d, c.kv...))
			r := p.run("sync")
			expectCode(t, r, c.code)
			line, err := relOneLine(r.stderr, "isp")
			if err != nil || !strings.Contains(line, c.want) {
				t.Errorf("stderr %q (%v), want one line containing %q", r.stderr, err, c.want)
			}
			if n := len(src.Messages()); n != len(c.msgs) {
				t.Errorf("the POP3 server holds %d message(s), want %d", n, len(c.msgs))
			}
			relRecord("imap", c.what, "one line naming the cause; nothing deleted on the POP3 server", c.code, len(c.msgs)-len(src.Messages()), 0)
		})
	}
	// With create: true the missing mailbox is created, and every message arrives once.
	src := newServer(t, msgs, nil)
	p := newProfile(t)
	p.add("isp", src, "deliver: "+imapDeliver(t, d, "mailbox: Missing", "create: true"))
	expectCode(t, p.run("sync"), 0)
	got, _ := imapBodies(t, d, "Missing", "isp")
	sameMessages(t, "IMAP Missing", got, crlfContents(msgs))
	relRecord("imap", "APPEND answered NO [TRYCREATE], with create: true", "created the mailbox, appended again: every message once, POP3 server empty", "0", 0, 0)
}

// TestIMAPSyncDroppedMidAppend: the IMAP connection is cut in the middle of a batch's APPENDs; the
// run exits 75 and deletes nothing; the next run settles what had arrived (by its marker) and
// delivers the rest: every message exactly once, the POP3 server empty.
func TestRelIMAPDroppedMidAppend(t *testing.T) {
	relTrack(t)
	t.Parallel()
	d := imapDovecot(t, "")
	var msgs []pop3test.Message
	for i := range 8 {
		msgs = append(msgs, pop3test.Message{UID: fmt.Sprintf("u%d", i),
			Data: fmt.Appendf(nil, "Subject: %d\n\n%s\n", i, strings.Repeat(strconv.Itoa(i), 20_000))})
	}
	src := newServer(t, msgs, nil)
	_, port, _ := net.SplitHostPort(d.IMAPAddr)
	proxy := newCutProxy(t, "127.0.0.1:"+port, 90_000) // plain IMAP: the cut falls inside a literal
	p := newProfile(t)
	_, pport, _ := net.SplitHostPort(proxy.addr())
	// timeout 3s: the rerun waits that long (plus 2 s) for a cut batch to land before it delivers it again.
	p.add("isp", src, "deliver: "+imapDeliver(t, d, "port: "+pport, "tls: none", "ca_file: -", "allow_plaintext_auth: true", "timeout: 3s"))
	r := p.run("sync")
	expectCode(t, r, 75)
	if n := len(src.Messages()); n != len(msgs) {
		t.Fatalf("after the cut the POP3 server holds %d message(s), want %d", n, len(msgs))
	}
	before := len(d.IMAPMailbox(t, "bob", "hunter2", "INBOX"))
	if before == 0 || before == len(msgs) {
		t.Logf("the cut left %d of %d messages in the mailbox", before, len(msgs))
	}
	proxy.limit.Store(-1) // no more cuts
	r = p.run("-v", "sync")
	expectCode(t, r, 0)
	got, _ := imapBodies(t, d, "INBOX", "isp")
	sameMessages(t, "IMAP INBOX", got, crlfContents(msgs))
	if n := len(src.Messages()); n != 0 {
		t.Errorf("the POP3 server still holds %d message(s)", n)
	}
	relRecord("imap", fmt.Sprintf("IMAP connection cut by a proxy after 90,000 octets, inside the APPEND of a batch of %d × 20 KB", len(msgs)),
		"exit 75, nothing deleted on the POP3 server; the rerun settled the pending batch by its markers and delivered: every message once, POP3 server empty", "75, then 0", 0, 0)
}

// cutProxy forwards loopback connections to a server and cuts each one after limit octets from the
// client (no cut while limit is negative).
type cutProxy struct {
	ln    net.Listener
	limit atomic.Int64
}

func newCutProxy(t *testing.T, backend string, limit int64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	p.limit.Store(limit)
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
			s, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			n := p.limit.Load()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(c, s); c.Close() }()
			go func() {
				defer wg.Done()
				if n < 0 {
					io.Copy(s, c)
				} else {
					io.CopyN(s, c, n)
				}
				c.Close()
				s.Close()
			}()
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// TestIMAPDeliverFlag: --deliver is refused for a destination without a login of its own, and
// `oauth2 login --deliver` names the destination account.
func TestIMAPDeliverFlag(t *testing.T) {
	t.Parallel()
	src := newServer(t, numbered(1), nil)
	p := newProfile(t)
	p.add("local", src)
	p.add("isp", src, "deliver: {imap: {host: imap.example.com, user: bob, password_env: X}}")
	r := p.run("password", "set", "--deliver", "local")
	expectCode(t, r, exitUsage)
	if !strings.Contains(r.stderr, "--deliver is for deliver: imap:") {
		t.Errorf("stderr %q", r.stderr)
	}
	r = p.run("oauth2", "login", "--deliver", "isp")
	expectCode(t, r, exitConfig)
	if !strings.Contains(r.stderr, `account "isp@deliver" has no oauth2: profile`) {
		t.Errorf("stderr %q", r.stderr)
	}
}
