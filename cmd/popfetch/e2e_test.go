package main

// End-to-end tests of the real binary (built once by TestMain in cli_test.go) against pop3test on
// loopback: what a user notices — bytes on disk, messages left on the server, exit codes and what
// is printed.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/internal/report"
	"github.com/popfetch/popfetch/store"
)

// hardMessages are messages that a careless client corrupts: dot lines (dot-stuffing), "From " lines
// (mbox quoting), a 16 KiB line, 8-bit bytes that are not UTF-8. They end with LF: pop3test sends
// LF as CRLF and the maildir stores LF, so what arrives must be these bytes exactly.
func hardMessages() []pop3test.Message {
	return []pop3test.Message{
		{UID: "uid-plain", Data: []byte("From: bob@example.org\nTo: alice@example.org\nSubject: plain\n\nHello, Alice.\n")},
		{UID: "uid-dots", Data: []byte("Subject: dots\n\n.\n..\n. a leading dot\n.hidden\n...\n")},
		{UID: "uid-from", Data: []byte("Subject: from\n\nFrom here on\n>From quoted\n>>From twice\nFrom \n")},
		{UID: "uid-long", Data: []byte("Subject: long\n\n" + strings.Repeat("0123456789abcdef", 1024) + "\nshort\n")},
		{UID: "uid-8bit", Data: []byte("Subject: 8bit\nContent-Type: text/plain; charset=iso-8859-1\n" +
			"Content-Transfer-Encoding: 8bit\n\nGr\xfc\xdfe, na\xefve caf\xe9 \xff\xfe\x80\n")},
	}
}

// numbered returns n small messages uid-1..uid-n.
func numbered(n int) []pop3test.Message {
	msgs := make([]pop3test.Message, n)
	for i := range msgs {
		msgs[i] = pop3test.Message{UID: fmt.Sprintf("uid-%d", i+1),
			Data: fmt.Appendf(nil, "From: bob@example.org\nSubject: message %d\n\nBody of message %d.\n", i+1, i+1)}
	}
	return msgs
}

func newServer(t *testing.T, msgs []pop3test.Message, opts *pop3test.Options) *pop3test.Server {
	t.Helper()
	if opts == nil {
		opts = &pop3test.Options{TLS: pop3test.ImplicitTLS}
	}
	opts.Messages = msgs
	return pop3test.NewServer(t, opts)
}

// wireSize is the size pop3test's LIST reports for data ending in LF without CRs: LF counts as CRLF.
func wireSize(data []byte) int {
	return len(data) + bytes.Count(data, []byte("\n"))
}

func contents(msgs []pop3test.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Data)
	}
	slices.Sort(out)
	return out
}

func uids(msgs []pop3test.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.UID
	}
	return out
}

// maildirFiles returns the contents of the files in a maildir's new/ and cur/, sorted; it fails the
// test if tmp/ holds anything.
func maildirFiles(t *testing.T, maildir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(maildir, sub))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if sub == "tmp" && len(ents) > 0 {
			t.Errorf("%s/tmp holds %d file(s) after the run", maildir, len(ents))
			continue
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(maildir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
	}
	slices.Sort(out)
	return out
}

// sameMessages reports a difference between two sorted lists of messages.
func sameMessages(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d message(s), want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s: message %d differs:\n got %.200q\nwant %.200q", what, i, got[i], want[i])
			return
		}
	}
}

// waitFor polls cond until it holds, failing the test after 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func received(s *pop3test.Server, line string) bool {
	return slices.Contains(s.Received(), line)
}

func expectCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

// TestSyncDeleteMode: the default mode retrieves everything byte for byte, then empties the server;
// run by cron it prints nothing at all.
func TestSyncDeleteMode(t *testing.T) {
	t.Parallel()
	msgs := hardMessages()
	s := newServer(t, msgs, nil)
	p := newProfile(t)
	md := p.add("work", s)

	r := p.run("sync")
	expectCode(t, r, 0)
	if r.stdout != "" || r.stderr != "" {
		t.Errorf("a successful run without a terminal printed something:\nstdout: %q\nstderr: %q", r.stdout, r.stderr)
	}
	sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs))
	if left := s.Messages(); len(left) != 0 {
		t.Errorf("the server still holds %d message(s)", len(left))
	}
	// The messages were deleted after the retrieval, in the same session.
	if got := s.Sessions(); got != 1 {
		t.Errorf("%d sessions, want 1", got)
	}

	// Nothing more to do: no new file.
	r = p.run("-v", "sync")
	expectCode(t, r, 0)
	if want := "work: no new mail (0 on the server)\n"; r.stderr != want {
		t.Errorf("-v: stderr %q, want %q", r.stderr, want)
	}
	if n := len(maildirFiles(t, md)); n != len(msgs) {
		t.Errorf("after a second run the maildir holds %d messages, want %d", n, len(msgs))
	}
}

// TestSyncKeepMode: keep leaves the server as it is, and a second run fetches nothing. With the
// default received_header each file is the message after one Received: header.
func TestSyncKeepMode(t *testing.T) {
	t.Parallel()
	msgs := hardMessages()
	s := newServer(t, msgs, nil)
	p := newProfile(t)
	md := p.add("work", s, "keep: true", "received_header: -")

	r := p.run("sync")
	expectCode(t, r, 0)
	if got := s.Messages(); !slices.Equal(uids(got), uids(msgs)) {
		t.Errorf("keep mode changed the server: %v", uids(got))
	}
	files := maildirFiles(t, md)
	stripped := make([]string, len(files))
	for i, f := range files {
		if !strings.HasPrefix(f, "Received: from 127.0.0.1 by popfetch (account work);\n\t") {
			t.Errorf("file %d does not start with popfetch's Received: header: %.100q", i, f)
		}
		// The header is one line and its continuation.
		_, rest, _ := strings.Cut(f, "\n\t")
		_, stripped[i], _ = strings.Cut(rest, "\n")
	}
	slices.Sort(stripped)
	sameMessages(t, "maildir without the Received: header", stripped, contents(msgs))

	r = p.run("--json", "sync")
	expectCode(t, r, 0)
	var sum report.Summary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("--json: %v: %q", err, r.stdout)
	}
	if sum.Account != "work" || sum.Listed != len(msgs) || sum.Fetched != 0 || sum.Deleted != 0 || sum.Skipped != len(msgs) {
		t.Errorf("second run: %+v, want nothing fetched, %d skipped", sum, len(msgs))
	}
	if n := len(maildirFiles(t, md)); n != len(msgs) {
		t.Errorf("after the second run the maildir holds %d messages, want %d", n, len(msgs))
	}
	for _, l := range s.ReceivedLines() {
		if l.Session == 2 && (strings.HasPrefix(l.Text, "RETR") || strings.HasPrefix(l.Text, "DELE")) {
			t.Errorf("the second run sent %q", l.Text)
		}
	}
	if got := s.Messages(); len(got) != len(msgs) {
		t.Errorf("the second run left %d messages on the server, want %d", len(got), len(msgs))
	}
}

// TestSyncFlags: --keep overrides a delete profile for one run, --all fetches again what was
// fetched before, and the next plain run deletes what popfetch already has without retrieving it.
func TestSyncFlags(t *testing.T) {
	t.Parallel()
	msgs := numbered(2)
	s := newServer(t, msgs, nil)
	p := newProfile(t)
	md := p.add("work", s)
	expectCode(t, p.run("sync", "--keep"), 0)
	if got := s.Messages(); len(got) != 2 {
		t.Errorf("--keep: the server holds %d messages, want 2", len(got))
	}
	sameMessages(t, "maildir after --keep", maildirFiles(t, md), contents(msgs))
	expectCode(t, p.run("sync", "--keep", "--all"), 0)
	sameMessages(t, "maildir after --all", maildirFiles(t, md), contents(append(slices.Clone(msgs), msgs...)))
	expectCode(t, p.run("sync"), 0)
	if got := s.Messages(); len(got) != 0 {
		t.Errorf("the server holds %d messages, want none", len(got))
	}
	if n := len(maildirFiles(t, md)); n != 4 {
		t.Errorf("the delete run fetched again: %d files, want 4", n)
	}
	for _, l := range s.ReceivedLines() {
		if l.Session == 3 && strings.HasPrefix(l.Text, "RETR") {
			t.Errorf("the delete run sent %q for a message popfetch has", l.Text)
		}
	}
	r := p.run("sync", "--keep", "--no-keep")
	expectCode(t, r, exitUsage)
	if !strings.Contains(r.stderr, "--keep and --no-keep exclude each other") {
		t.Errorf("stderr: %q", r.stderr)
	}
}

// TestTraceRedacts: --trace shows the dialogue on stderr, prefixed with the account, without the
// password.
func TestTraceRedacts(t *testing.T) {
	t.Parallel()
	const pw = "hunter2-e2e-secret"
	for auth, redacted := range map[string]string{"user": "work: C: PASS <redacted>\n", "plain": "work: C: AUTH PLAIN <redacted>\n"} {
		t.Run(auth, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, numbered(1), &pop3test.Options{TLS: pop3test.ImplicitTLS, Password: pw})
			p := newProfile(t)
			p.add("work", s, "auth: "+auth, "password: "+pw)
			r := p.run("--trace", "sync")
			expectCode(t, r, 0)
			if strings.Contains(r.stderr, pw) {
				t.Errorf("--trace shows the password:\n%s", r.stderr)
			}
			for _, want := range []string{redacted, "work: C: RETR 1\n", "work: C: QUIT\n"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("--trace does not show %q:\n%s", want, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("--trace wrote on stdout: %q", r.stdout)
			}
		})
	}
}

// TestSyncKeepDays: with keep_days only the messages first seen longer ago are deleted, unread. The
// clock is injected through the state: the test records two UIDLs as delivered 30 days ago and one
// yesterday, with store's own clock option, before running the binary.
func TestSyncKeepDays(t *testing.T) {
	t.Parallel()
	msgs := numbered(5)
	s := newServer(t, msgs, nil)
	p := newProfile(t)
	md := p.add("work", s, "keep: true", "keep_days: 7")

	now := time.Now()
	old := now.AddDate(0, 0, -30)
	for _, rec := range []struct {
		at   time.Time
		uids []string
	}{{old, []string{"uid-1", "uid-2"}}, {now.AddDate(0, 0, -1), []string{"uid-3"}}} {
		st, err := store.OpenStateOptions(p.stateDir, "work", store.Options{Now: func() time.Time { return rec.at }})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.MarkDelivered(rec.uids, rec.at); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}

	r := p.run("--json", "sync")
	expectCode(t, r, 0)
	if got, want := uids(s.Messages()), []string{"uid-3", "uid-4", "uid-5"}; !slices.Equal(got, want) {
		t.Errorf("server holds %v, want %v (only the two old ones deleted)", got, want)
	}
	// Deleted without being retrieved again; uid-3 is known; only 4 and 5 are new.
	sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs[3:]))
	for _, l := range s.Received() {
		if l == "RETR 1" || l == "RETR 2" || l == "RETR 3" {
			t.Errorf("the server received %q", l)
		}
	}
	var sum report.Summary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Fetched != 2 || sum.Deleted != 2 {
		t.Errorf("--json: %+v, %v; want 2 fetched, 2 deleted", sum, err)
	}
}

// TestSyncMaxSize: a message over max_size is left on the server (oversize: skip) or deleted there
// unread (oversize: delete); the others are fetched.
func TestSyncMaxSize(t *testing.T) {
	t.Parallel()
	big := pop3test.Message{UID: "uid-big", Data: []byte("Subject: big\n\n" + strings.Repeat("x", 70) + "\n")}
	for i := 0; i < 5; i++ {
		big.Data = append(big.Data, big.Data[14:]...)
	}
	small := numbered(2)
	for _, policy := range []string{"skip", "delete"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			msgs := []pop3test.Message{small[0], big, small[1]}
			s := newServer(t, msgs, nil)
			p := newProfile(t)
			md := p.add("work", s, "max_size: 1kB", "oversize: "+policy)
			r := p.run("-v", "sync")
			expectCode(t, r, 0)
			sameMessages(t, "maildir", maildirFiles(t, md), contents(small))
			if slices.Contains(s.Received(), "RETR 2") {
				t.Errorf("the oversized message was retrieved")
			}
			left := uids(s.Messages())
			switch policy {
			case "skip":
				if !slices.Equal(left, []string{"uid-big"}) {
					t.Errorf("server holds %v, want the big message only", left)
				}
				if !strings.Contains(r.stderr, "work: 2 fetched") || !strings.Contains(r.stderr, "1 left on the server") {
					t.Errorf("-v summary: %q", r.stderr)
				}
			case "delete":
				if len(left) != 0 {
					t.Errorf("server holds %v, want nothing", left)
				}
				if !strings.Contains(r.stderr, "work: 2 fetched") || !strings.Contains(r.stderr, "3 deleted") {
					t.Errorf("-v summary: %q", r.stderr)
				}
			}
		})
	}
}

// TestSyncMaxMessages: max_messages limits each run; the rest comes in the next runs, in order.
func TestSyncMaxMessages(t *testing.T) {
	t.Parallel()
	msgs := numbered(5)
	s := newServer(t, msgs, nil)
	p := newProfile(t)
	md := p.add("work", s, "max_messages: 2")
	for run, want := range [][]string{{"uid-3", "uid-4", "uid-5"}, {"uid-5"}, {}} {
		expectCode(t, p.run("sync"), 0)
		if got := uids(s.Messages()); !slices.Equal(got, want) {
			t.Errorf("after run %d the server holds %v, want %v", run+1, got, want)
		}
	}
	sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs))
}

// TestSyncDryRun: --dry-run prints the plan and changes nothing: not the server, not the maildir,
// not the state.
func TestSyncDryRun(t *testing.T) {
	t.Parallel()
	msgs := numbered(3)
	s := newServer(t, msgs, nil)
	p := newProfile(t)
	md := p.add("work", s, "max_messages: 2")
	r := p.run("sync", "--dry-run")
	expectCode(t, r, 0)
	for _, want := range []string{"work: retrieve, delete", "uid-1", "uid-2", "work: leave", "uid-3", "over max_messages"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan does not contain %q:\n%s", want, r.stdout)
		}
	}
	if got := s.Messages(); len(got) != 3 {
		t.Errorf("dry run changed the server: %v", uids(got))
	}
	for _, l := range s.Received() {
		if strings.HasPrefix(l, "RETR") || strings.HasPrefix(l, "DELE") {
			t.Errorf("dry run sent %q", l)
		}
	}
	if files := maildirFiles(t, md); len(files) != 0 {
		t.Errorf("dry run delivered %d message(s)", len(files))
	}
	st, err := store.OpenState(p.stateDir, "work")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Len() != 0 {
		t.Errorf("dry run recorded %v in the state", st.UIDs())
	}
}

// TestSyncStdout: --stdout writes an mboxrd stream that parses back into the same messages, in the
// server's order; stderr stays quiet and the maildir untouched.
func TestSyncStdout(t *testing.T) {
	t.Parallel()
	msgs := hardMessages()
	s := newServer(t, msgs, nil)
	p := newProfile(t)
	md := p.add("work", s, "keep: true")
	r := p.run("sync", "--stdout")
	expectCode(t, r, 0)
	if r.stderr != "" {
		t.Errorf("stderr: %q", r.stderr)
	}
	got, err := store.SplitMboxrd(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("SplitMboxrd: %v", err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("%d messages on stdout, want %d:\n%.500s", len(got), len(msgs), r.stdout)
	}
	for i, m := range msgs {
		if !bytes.Equal(got[i], m.Data) {
			t.Errorf("message %d (%s) differs:\n got %.200q\nwant %.200q", i+1, m.UID, got[i], m.Data)
		}
	}
	if !strings.Contains(r.stdout, "\n>From here on\n>>From quoted\n>>>From twice\n") {
		t.Errorf("the stream is not mboxrd-quoted")
	}
	if files := maildirFiles(t, md); len(files) != 0 {
		t.Errorf("--stdout delivered to the maildir too")
	}
	// Recorded: a second run writes nothing.
	r = p.run("sync", "--stdout")
	expectCode(t, r, 0)
	if r.stdout != "" {
		t.Errorf("second --stdout run wrote %d bytes", len(r.stdout))
	}
}

// TestCheck: exit 0 with new mail, 1 without; the count on stdout.
func TestCheck(t *testing.T) {
	t.Parallel()
	s := newServer(t, numbered(3), nil)
	p := newProfile(t)
	p.add("work", s, "keep: true")
	r := p.run("check")
	expectCode(t, r, 0)
	if r.stdout != "work: 3 new message(s)\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	expectCode(t, p.run("sync"), 0)
	r = p.run("check")
	expectCode(t, r, 1)
	if r.stdout != "work: 0 new message(s)\n" || r.stderr != "" {
		t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
	// Nothing retrieved by check.
	for _, l := range s.ReceivedLines() {
		if l.Session != 2 && strings.HasPrefix(l.Text, "RETR") {
			t.Errorf("check sent %q", l.Text)
		}
	}
	r = p.run("--json", "check")
	expectCode(t, r, 1)
	var sum report.Summary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.New == nil || *sum.New != 0 || sum.Listed != 3 {
		t.Errorf("--json check: %q, %v", r.stdout, err)
	}
}

// TestList: number, UIDL, size, and whether popfetch has the message.
func TestList(t *testing.T) {
	t.Parallel()
	msgs := numbered(3)
	s := newServer(t, msgs, nil)
	p := newProfile(t)
	p.add("work", s, "keep: true", "max_messages: 1")
	expectCode(t, p.run("sync"), 0) // fetches uid-1
	r := p.run("list", "work")
	expectCode(t, r, 0)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("list printed %d lines:\n%s", len(lines), r.stdout)
	}
	for i, l := range lines {
		want := []string{strconv.Itoa(i + 1), msgs[i].UID, strconv.Itoa(wireSize(msgs[i].Data)), "new"}
		if i == 0 {
			want[3] = "have"
		}
		if got := strings.Fields(l); !slices.Equal(got, want) {
			t.Errorf("line %d: %q, want fields %q", i+1, l, want)
		}
	}
	if got := s.Messages(); len(got) != 3 {
		t.Errorf("list changed the server")
	}
	r = p.run("--json", "list", "work")
	expectCode(t, r, 0)
	var rows []struct {
		Number int
		UIDL   string
		Size   int
		Status string
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 3 || rows[0].Status != "have" ||
		rows[2].UIDL != "uid-3" || rows[2].Status != "new" {
		t.Errorf("--json list: %v: %s", err, r.stdout)
	}
}

// TestCat: one message's raw bytes by number or by UIDL; nothing deleted.
func TestCat(t *testing.T) {
	t.Parallel()
	msgs := hardMessages()
	s := newServer(t, msgs, nil)
	p := newProfile(t)
	p.add("work", s)
	for i, m := range msgs {
		for _, sel := range []string{strconv.Itoa(i + 1), m.UID} {
			r := p.run("cat", "work", sel)
			expectCode(t, r, 0)
			if r.stdout != string(m.Data) {
				t.Errorf("cat work %s:\n got %.200q\nwant %.200q", sel, r.stdout, m.Data)
			}
		}
	}
	r := p.run("cat", "work", "no-such-uid")
	expectCode(t, r, exitUsage)
	if !strings.Contains(r.stderr, `no message with number or UIDL "no-such-uid"`) {
		t.Errorf("stderr: %q", r.stderr)
	}
	if got := s.Messages(); len(got) != len(msgs) {
		t.Errorf("cat deleted messages: %v", uids(got))
	}
	for _, l := range s.Received() {
		if strings.HasPrefix(l, "DELE") {
			t.Errorf("cat sent %q", l)
		}
	}
}

// TestServerinfo: the greeting, the capabilities, the TLS version and the fingerprint a user pastes
// into tls_fingerprint (which then works).
func TestServerinfo(t *testing.T) {
	t.Parallel()
	s := newServer(t, numbered(1), nil)
	p := newProfile(t)
	p.add("work", s)
	r := p.run("serverinfo", "work")
	expectCode(t, r, 0)
	fp := pop3.FormatFingerprint(s.Fingerprint())
	for _, want := range []string{"Account:      work\n", "Address:      " + s.Addr() + " (implicit)\n",
		"Greeting:     ", "pop3test ready", "TLS:          TLS 1.3, ", "Fingerprint:  " + fp + "\n",
		"Capabilities:\n", "  UIDL\n", "  PIPELINING\n", "  SASL SCRAM-SHA-256", "Subject:      ", "Issuer:       "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("serverinfo does not show %q:\n%s", want, r.stdout)
		}
	}
	if slices.ContainsFunc(s.Received(), func(l string) bool { return strings.HasPrefix(l, "PASS") || strings.HasPrefix(l, "AUTH") }) {
		t.Errorf("serverinfo logged in: %v", s.Received())
	}
	r = p.run("--json", "serverinfo", "work")
	expectCode(t, r, 0)
	var info serverInfo
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info.TLS == nil || info.TLS.Fingerprint != fp {
		t.Errorf("--json: %v: %s", err, r.stdout)
	}

	// The fingerprint pins the certificate without any CA.
	p2 := newProfile(t)
	md := p2.add("work", s, "ca_file: -", "tls_fingerprint: "+fp)
	expectCode(t, p2.run("sync"), 0)
	if n := len(maildirFiles(t, md)); n != 1 {
		t.Errorf("with tls_fingerprint: %d messages delivered, want 1", n)
	}
}

// TestExitCodes produces each exit code of DESIGN §4 with the real binary. 70 (internal error) is
// not among them: it means a bug in popfetch, which no input is meant to provoke. 130 is in
// TestInterrupt, the held lock in TestLockHeld.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		code   int
		opts   *pop3test.Options // nil: implicit TLS
		msgs   []pop3test.Message
		kv     []string
		args   []string
		stderr string // on stderr, after "popfetch: work: " for the errors of an account
	}{
		{name: "ok", code: 0, args: []string{"sync"}},
		{name: "check none new", code: 1, msgs: []pop3test.Message{}, args: []string{"check"}},
		{name: "unknown flag", code: 64, args: []string{"sync", "--bogus"}, stderr: "flag provided but not defined: -bogus"},
		{name: "unknown account", code: 64, args: []string{"sync", "nosuch"}, stderr: `popfetch: no account "nosuch" in`},
		{name: "jobs 0", code: 64, args: []string{"sync", "--jobs", "0"}, stderr: "--jobs must be at least 1"},
		{name: "duplicate UIDLs in keep mode", code: 65, kv: []string{"keep: true"},
			msgs:   []pop3test.Message{{UID: "dup", Data: []byte("a\n")}, {UID: "dup", Data: []byte("b\n")}},
			stderr: "popfetch: work: the server lists two messages with the same UIDL"},
		{name: "untrusted certificate", code: 69, kv: []string{"ca_file: -"},
			stderr: "popfetch: work: pop3: TLS with 127.0.0.1 failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{name: "STLS stripped", code: 69, opts: &pop3test.Options{TLS: pop3test.STLS, NoSTLS: true},
			kv: []string{"tls: starttls"}, stderr: "popfetch: work: pop3: server does not offer STLS"},
		{name: "maildir cannot be created", code: 74, stderr: "popfetch: work: store: mkdir "},
		{name: "IN-USE", code: 75, kv: []string{"auth: user"}, stderr: "popfetch: work: pop3: server refused PASS: -ERR [IN-USE] the maildrop is locked",
			opts: &pop3test.Options{TLS: pop3test.ImplicitTLS, Faults: []pop3test.Fault{{Command: "PASS", Action: pop3test.Reply,
				Reply: "-ERR [IN-USE] the maildrop is locked"}}}},
		{name: "garbage reply to RETR", code: 76, stderr: `popfetch: work: pop3: protocol violation: RETR: unexpected reply "HELLO? this is not POP3"`,
			opts: &pop3test.Options{TLS: pop3test.ImplicitTLS, Faults: []pop3test.Fault{{Command: "RETR", Action: pop3test.Reply,
				Reply: "HELLO? this is not POP3"}}}},
		{name: "wrong password", code: 77, kv: []string{"password: wrong"}, stderr: "popfetch: work: pop3: server refused AUTH: -ERR [AUTH] Authentication failed"},
		{name: "config error", code: 78, kv: []string{"prot: 995"}, stderr: `key "prot": unknown key, did you mean "port"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msgs := tt.msgs
			if msgs == nil {
				msgs = numbered(2)
			}
			s := newServer(t, msgs, tt.opts)
			p := newProfile(t)
			kv := tt.kv
			if tt.code == 74 {
				file := filepath.Join(p.dir, "file")
				if err := os.WriteFile(file, []byte("not a directory\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				kv = append(kv, "deliver: {maildir: "+strconv.Quote(filepath.Join(file, "Maildir"))+"}")
			}
			p.add("work", s, kv...)
			args := tt.args
			if args == nil {
				args = []string{"sync"}
			}
			r := p.run(args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.stderr, r.stderr)
			}
			if tt.code >= 64 && tt.code != 64 && tt.code != 78 {
				// An account's failure: one line on stderr, and the server keeps its mail.
				if n := strings.Count(r.stderr, "\n"); n != 1 || !strings.HasPrefix(r.stderr, "popfetch: work: ") {
					t.Errorf("stderr is not one line prefixed with the account:\n%s", r.stderr)
				}
				if got := s.Messages(); len(got) != len(msgs) {
					t.Errorf("a failed run deleted mail: %d of %d left", len(got), len(msgs))
				}
			}
			if tt.code >= 64 && r.stdout != "" {
				t.Errorf("an error printed on stdout, which carries data only:\n%s", r.stdout)
			}
			if tt.code == 0 || tt.code == 1 {
				if r.stderr != "" {
					t.Errorf("stderr: %q", r.stderr)
				}
			}
		})
	}
}
