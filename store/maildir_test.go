package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emersion/go-maildir"
)

// newTestMaildir opens a maildir under a fresh temporary directory.
func newTestMaildir(t testing.TB, opts MaildirOptions) *Maildir {
	t.Helper()
	md, err := NewMaildir(filepath.Join(t.TempDir(), "Mail", "inbox"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	return md
}

// dirNames lists one subdirectory of a maildir, sorted.
func dirNames(t testing.TB, md *Maildir, sub string) []string {
	t.Helper()
	names, err := readDirNames(filepath.Join(md.Path(), sub))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func TestMaildirDeliverCommit(t *testing.T) {
	received := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	md := newTestMaildir(t, MaildirOptions{ReceivedHeader: true, Hostname: "mx/1:2"})
	ctx := context.Background()

	for _, sub := range []string{"", "tmp", "new", "cur"} {
		fi, err := os.Stat(filepath.Join(md.Path(), sub))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o700 {
			t.Errorf("%s/%s: mode %o, want 0700", md.Path(), sub, perm)
		}
	}

	bodies := []string{
		"Subject: one\r\n\r\nline\r\n",
		"Subject: two\n\nbare LF\n",
		"Subject: three\r\n\r\na lone \r stays\r\n",
	}
	var refs []string
	for i, b := range bodies {
		env := Envelope{Account: "acct", Host: "pop.example.org", UID: "uid" + string(rune('a'+i)), Received: received}
		p, err := md.Deliver(ctx, env, strings.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if p.UID != env.UID || p.Ref == "" {
			t.Fatalf("Deliver = %+v", p)
		}
		refs = append(refs, p.Ref)
	}
	nameRE := regexp.MustCompile(`^\d+\.M\d{6}P\d+Q\d+R[0-9a-f]{16}\.mx\\0571\\0722$`)
	for _, r := range refs {
		if !nameRE.MatchString(r) {
			t.Errorf("unique name %q does not follow the maildir convention", r)
		}
	}

	var journaled []Pending
	err := md.Commit(ctx, func(ps []Pending) error {
		// The journal runs once the batch is durable and before it is visible.
		if got := dirNames(t, md, "new"); len(got) != 0 {
			t.Errorf("new/ before journal: %v", got)
		}
		if got := dirNames(t, md, "tmp"); len(got) != 3 {
			t.Errorf("tmp/ before journal: %v", got)
		}
		journaled = ps
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(journaled) != 3 || journaled[0].Ref != refs[0] || journaled[2].UID != "uidc" {
		t.Fatalf("journal got %+v", journaled)
	}
	if got := dirNames(t, md, "tmp"); len(got) != 0 {
		t.Errorf("tmp/ after Commit: %v", got)
	}
	sorted := slices.Sorted(slices.Values(refs))
	if got := dirNames(t, md, "new"); !slices.Equal(got, sorted) {
		t.Errorf("new/ = %v, want %v", got, sorted)
	}

	// Read back with go-maildir, as a mail reader would.
	msgs, err := maildir.Dir(md.Path()).Unseen()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("go-maildir sees %d messages", len(msgs))
	}
	hdr := ReceivedHeader(Envelope{Account: "acct", Host: "pop.example.org", Received: received})
	want := map[string]string{
		refs[0]: hdr + "Subject: one\n\nline\n",
		refs[1]: hdr + "Subject: two\n\nbare LF\n",
		refs[2]: hdr + "Subject: three\n\na lone \r stays\n",
	}
	for _, m := range msgs {
		rc, err := m.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != want[m.Key()] {
			t.Errorf("message %s = %q, want %q", m.Key(), b, want[m.Key()])
		}
		fi, err := os.Stat(m.Filename())
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %o, want 0600", m.Filename(), perm)
		}
	}

	// Now in cur/ with ":2," suffixes: still visible to Resolve.
	vis, err := md.Resolve(refs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if !vis[r] {
			t.Errorf("Resolve(%s) = false after a reader moved it to cur/", r)
		}
	}

	// An empty batch commits without calling the journal.
	if err := md.Commit(ctx, func([]Pending) error { t.Error("journal called for an empty batch"); return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestMaildirNoReceivedHeader(t *testing.T) {
	md := newTestMaildir(t, MaildirOptions{})
	p, err := md.Deliver(context.Background(), Envelope{UID: "u"}, strings.NewReader("A: b\r\n\r\nx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := md.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(md.Path(), "new", p.Ref))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "A: b\n\nx" {
		t.Errorf("got %q", b)
	}
}

func TestCopyLF(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"a\r\nb\r\n", "a\nb\n"},
		{"a\rb", "a\rb"},
		{"\r", "\r"},
		{"a\r", "a\r"},
		{"\r\r\n", "\r\n"},
		{"x\r\n\r\n", "x\n\n"},
		{"\n\r\n\r", "\n\n\r"},
		{strings.Repeat("0123456\r\n", 10000), strings.Repeat("0123456\n", 10000)},
	}
	readers := map[string]func(string) io.Reader{
		"whole":   func(s string) io.Reader { return strings.NewReader(s) },
		"bytes":   func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"halves":  func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
		"dataEOF": func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
	}
	for name, mk := range readers {
		for _, c := range cases {
			var out bytes.Buffer
			bw := bufio.NewWriter(&out)
			rerr, werr := copyLF(context.Background(), bw, mk(c.in), make([]byte, 7))
			if rerr != nil || werr != nil {
				t.Fatalf("%s: %v %v", name, rerr, werr)
			}
			bw.Flush()
			if out.String() != c.want {
				in := c.in
				if len(in) > 20 {
					in = in[:20] + "..."
				}
				t.Errorf("%s: copyLF(%q) = %q..., want %q...", name, in, trunc(out.String()), trunc(c.want))
			}
		}
	}
}

func trunc(s string) string {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}

func TestMaildirJournalFailureLeavesNothing(t *testing.T) {
	md := newTestMaildir(t, MaildirOptions{})
	ctx := context.Background()
	for i := range 3 {
		if _, err := md.Deliver(ctx, Envelope{UID: string(rune('a' + i))}, strings.NewReader("x\n")); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("state unwritable")
	if err := md.Commit(ctx, func([]Pending) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Commit = %v, want the journal's error", err)
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if got := dirNames(t, md, sub); len(got) != 0 {
			t.Errorf("%s/ = %v after a failed journal", sub, got)
		}
	}
}

func TestMaildirAbortAndClose(t *testing.T) {
	md := newTestMaildir(t, MaildirOptions{})
	ctx := context.Background()
	if _, err := md.Deliver(ctx, Envelope{UID: "a"}, strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	if err := md.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, md, "tmp"); len(got) != 0 {
		t.Errorf("tmp/ after Abort: %v", got)
	}
	if _, err := md.Deliver(ctx, Envelope{UID: "b"}, strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	if err := md.Close(); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, md, "tmp"); len(got) != 0 {
		t.Errorf("tmp/ after Close: %v", got)
	}
	if _, err := md.Deliver(ctx, Envelope{UID: "c"}, strings.NewReader("x\n")); err == nil {
		t.Error("Deliver after Close succeeded")
	}
}

func TestMaildirCanceledContext(t *testing.T) {
	md := newTestMaildir(t, MaildirOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := md.Deliver(ctx, Envelope{UID: "a"}, strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	// A body whose reader cancels the context half way: the partial file goes away.
	body := io.MultiReader(strings.NewReader("part"), readerFunc(func([]byte) (int, error) {
		cancel()
		return 0, ctx.Err()
	}))
	if _, err := md.Deliver(ctx, Envelope{UID: "b"}, body); !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver = %v, want context.Canceled", err)
	}
	if err := md.Commit(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit = %v, want context.Canceled", err)
	}
	for _, sub := range []string{"tmp", "new"} {
		if got := dirNames(t, md, sub); len(got) != 0 {
			t.Errorf("%s/ = %v", sub, got)
		}
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestMaildirBodyReadErrorIsNotIOError(t *testing.T) {
	md := newTestMaildir(t, MaildirOptions{})
	netErr := errors.New("connection reset")
	_, err := md.Deliver(context.Background(), Envelope{UID: "a"}, iotest.TimeoutReader(strings.NewReader("abc")))
	if err == nil {
		t.Fatal("no error")
	}
	_, err = md.Deliver(context.Background(), Envelope{UID: "a"}, io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(netErr)))
	var ioe *IOError
	if !errors.Is(err, netErr) || errors.As(err, &ioe) {
		t.Fatalf("Deliver = %v, want the reader's error, not an IOError", err)
	}
	if got := dirNames(t, md, "tmp"); len(got) != 0 {
		t.Errorf("tmp/ = %v", got)
	}
}

func TestMaildirResolve(t *testing.T) {
	md := newTestMaildir(t, MaildirOptions{})
	write := func(sub, name string) {
		if err := os.WriteFile(filepath.Join(md.Path(), sub, name), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("new", "1.a.h")
	write("cur", "2.b.h:2,S")
	write("cur", "3.c.h")
	write("cur", "4.d.h:2,")
	write("tmp", "5.e.h")
	write("tmp", "1.a.h") // a leftover beside a visible copy
	refs := []string{"1.a.h", "2.b.h", "3.c.h", "4.d.h", "5.e.h", "6.f.h", "../new/1.a.h", ".hidden"}
	vis, err := md.Resolve(refs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"1.a.h": true, "2.b.h": true, "3.c.h": true, "4.d.h": true}
	for _, r := range refs {
		if vis[r] != want[r] {
			t.Errorf("visible[%q] = %v, want %v", r, vis[r], want[r])
		}
	}
	if got := dirNames(t, md, "tmp"); len(got) != 0 {
		t.Errorf("tmp/ after Resolve = %v, want empty", got)
	}
}
