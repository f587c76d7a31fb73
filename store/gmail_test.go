package store

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popfetch/popfetch/store/gmailtest"
)

// gmailDest opens a Gmail destination on srv with the fake's token and fast retries.
func gmailDest(t *testing.T, srv *gmailtest.Server, mod func(*GmailOptions)) *Gmail {
	t.Helper()
	o := GmailOptions{APIURL: srv.URL, SpoolDir: filepath.Join(t.TempDir(), "spool"),
		Token:     func(context.Context, string) (string, error) { return "test-access-token", nil },
		LoginHint: "popfetch oauth2 login --deliver work", Backoff: time.Millisecond, Attempts: 3}
	if mod != nil {
		mod(&o)
	}
	g, err := NewGmail(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func gmailDeliver(t *testing.T, g *Gmail, uid, msg string) Pending {
	t.Helper()
	p, err := g.Deliver(t.Context(), Envelope{Account: "work", UID: uid}, strings.NewReader(msg))
	if err != nil {
		t.Fatalf("Deliver %s: %v", uid, err)
	}
	return p
}

// The hard messages arrive byte-exact: lines end CRLF (as on the POP3 wire), popfetch's marker header
// first, and a Message-ID only where the message has no usable one. Each request is checked by the
// fake (path, uploadType, bearer token, multipart body), and the labels are INBOX, UNREAD plus the
// named ones, created when missing.
func TestGmailImportByteExact(t *testing.T) {
	srv := gmailtest.NewServer(t, nil)
	g := gmailDest(t, srv, func(o *GmailOptions) { o.Labels = []string{"Imported/ISP", "starred"} })
	msgs := map[string]string{
		"u1": "Message-ID: <one@example.com>\nSubject: dots\n\n.\n..leading dot\nline\n",
		"u2": "Subject: no id\nFrom: a@example.com\n\nbody \x00 NUL and 8-bit \xe9\xff\r lone CR\nno final newline",
		"u3": "Subject: long\nMessage-Id:\n <folded@example.com>\n\n" + strings.Repeat("x", 100000) + "\n",
		"u4": "Message-ID: not an id\nSubject: bad id\n\nbody\n",
	}
	uids := []string{"u1", "u2", "u3", "u4"}
	var pend []Pending
	for _, u := range uids {
		pend = append(pend, gmailDeliver(t, g, u, msgs[u]))
	}
	journaled := false
	err := g.Commit(t.Context(), func(ps []Pending) error {
		if n := len(srv.Messages()); n != 0 {
			t.Errorf("journal called after %d imports; it must come first", n)
		}
		if !slices.Equal(ps, pend) {
			t.Errorf("journal got %v, want %v", ps, pend)
		}
		journaled = true
		return nil
	})
	if err != nil || !journaled {
		t.Fatalf("Commit: %v (journaled %v)", err, journaled)
	}
	got := srv.Messages()
	if len(got) != 4 {
		t.Fatalf("%d messages in Gmail, want 4", len(got))
	}
	var labelIDs []string
	for _, name := range []string{"Imported/ISP", "STARRED"} {
		for _, l := range srv.Labels() {
			if l.Name == name {
				labelIDs = append(labelIDs, l.ID)
			}
		}
	}
	if len(labelIDs) != 2 {
		t.Fatalf("labels %v: want Imported/ISP created and STARRED found", srv.Labels())
	}
	byMarker := map[string]gmailtest.Message{}
	for _, m := range got {
		byMarker[m.Header(GmailMarkerHeader)] = m
	}
	for i, u := range uids {
		marker, msgID, ok := parseGmailRef(pend[i].Ref)
		if !ok {
			t.Fatalf("%s: ref %q", u, pend[i].Ref)
		}
		m, ok := byMarker[marker]
		if !ok {
			t.Fatalf("%s: no message with marker %s", u, marker)
		}
		want := GmailMarkerHeader + ": " + marker + "\r\n"
		if u == "u2" || u == "u4" { // no usable Message-ID: popfetch adds one
			if !strings.HasPrefix(msgID, "<popfetch.") {
				t.Errorf("%s: ref's Message-ID %q, want one popfetch made", u, msgID)
			}
			want += "Message-ID: " + msgID + "\r\n"
		} else if msgID != map[string]string{"u1": "<one@example.com>", "u3": "<folded@example.com>"}[u] {
			t.Errorf("%s: ref's Message-ID %q", u, msgID)
		}
		crlf := strings.ReplaceAll(msgs[u], "\n", "\r\n")
		want += crlf
		if !bytes.Equal(m.Raw, []byte(want)) {
			t.Errorf("%s: Gmail has %q…, want %q…", u, trunc(string(m.Raw)), trunc(want))
		}
		if wantL := append([]string{"INBOX", "UNREAD"}, labelIDs...); !slices.Equal(m.LabelIDs, wantL) {
			t.Errorf("%s: labels %v, want %v", u, m.LabelIDs, wantL)
		}
		for k, v := range map[string]string{"uploadType": "multipart", "internalDateSource": "dateHeader",
			"neverMarkSpam": "false", "processForCalendar": "false"} {
			if m.Params.Get(k) != v {
				t.Errorf("%s: %s=%q, want %q", u, k, m.Params.Get(k), v)
			}
		}
	}
	if n := srv.Requests("labels.list"); n != 1 {
		t.Errorf("labels.list %d times, want once", n)
	}
	// Nothing is left in the spool.
	if ents, _ := os.ReadDir(g.opts.SpoolDir); len(ents) != 0 {
		t.Errorf("spool not empty after Commit: %v", ents)
	}
}

// The profile's keys reach the request: never_mark_spam, process_for_calendar, internal_date_source,
// no default labels.
func TestGmailImportOptions(t *testing.T) {
	srv := gmailtest.NewServer(t, nil)
	g := gmailDest(t, srv, func(o *GmailOptions) {
		o.NeverMarkSpam, o.ProcessForCalendar, o.InternalDateSource = true, true, "receivedTime"
		o.SystemLabels = []string{"INBOX"}
	})
	gmailDeliver(t, g, "u1", "Subject: x\n\nx\n")
	if err := g.Commit(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0]
	if m.Params.Get("neverMarkSpam") != "true" || m.Params.Get("processForCalendar") != "true" ||
		m.Params.Get("internalDateSource") != "receivedTime" || !slices.Equal(m.LabelIDs, []string{"INBOX"}) {
		t.Errorf("params %v labels %v", m.Params, m.LabelIDs)
	}
}

// After a crash, Resolve finds exactly the imports that happened, even when another message with the
// same Message-ID is in the mailbox (the marker tells them apart).
func TestGmailResolve(t *testing.T) {
	srv := gmailtest.NewServer(t, nil)
	srv.Add([]byte("Message-ID: <same@example.com>\r\nSubject: already there\r\n\r\nx\r\n"), "INBOX")
	g := gmailDest(t, srv, nil)
	p1 := gmailDeliver(t, g, "u1", "Message-ID: <same@example.com>\nSubject: ours\n\nx\n")
	p2 := gmailDeliver(t, g, "u2", "Subject: no id\n\nx\n")
	if err := g.Commit(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	// Two deliveries that never reached Gmail (the crash came before their import).
	p3 := gmailDeliver(t, g, "u3", "Message-ID: <same@example.com>\nSubject: not imported\n\nx\n")
	p4 := gmailDeliver(t, g, "u4", "Subject: not imported, no id\n\nx\n")
	g.Abort()

	vis, err := g.Resolve([]string{p1.Ref, p2.Ref, p3.Ref, p4.Ref, "cur/not-a-gmail-ref"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{p1.Ref: true, p2.Ref: true, p3.Ref: false, p4.Ref: false}
	for ref, w := range want {
		if vis[ref] != w {
			t.Errorf("Resolve(%q) = %v, want %v", ref, vis[ref], w)
		}
	}
	if vis["cur/not-a-gmail-ref"] {
		t.Error("a foreign ref resolved as visible")
	}
}

// 429 then success: the import is tried again after Retry-After, and arrives once.
func TestGmail429ThenSuccess(t *testing.T) {
	srv := gmailtest.NewServer(t, nil)
	srv.Fail("import", 2, 429, "rateLimitExceeded", "0")
	g := gmailDest(t, srv, nil)
	gmailDeliver(t, g, "u1", "Subject: x\n\nx\n")
	if err := g.Commit(t.Context(), nil); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if n, r := len(srv.Messages()), srv.Requests("import"); n != 1 || r != 3 {
		t.Errorf("%d messages after %d import requests, want 1 after 3", n, r)
	}
}

// 429 until the tries are used up: a temporary error (exit 75) that names the message.
func TestGmail429Exhausted(t *testing.T) {
	srv := gmailtest.NewServer(t, nil)
	srv.Fail("import", -1, 429, "rateLimitExceeded", "")
	g := gmailDest(t, srv, nil)
	gmailDeliver(t, g, "u1", "Subject: x\n\nx\n")
	err := g.Commit(t.Context(), nil)
	if code := exitCodeOf(err); code != 75 || !strings.Contains(err.Error(), `"u1"`) {
		t.Fatalf("Commit: %v (exit %d), want 75 naming u1", err, code)
	}
	if r := srv.Requests("import"); r != 3 {
		t.Errorf("%d import requests, want 3 (Attempts)", r)
	}
}

// A 503 after Gmail stored the message: the retry first searches, finds it, and does not import again.
func TestGmail5xxAfterImportNoDuplicate(t *testing.T) {
	srv := gmailtest.NewServer(t, nil)
	srv.FailAfterImport(1, 503)
	g := gmailDest(t, srv, nil)
	gmailDeliver(t, g, "u1", "Message-ID: <a@example.com>\nSubject: x\n\nx\n")
	if err := g.Commit(t.Context(), nil); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages in Gmail, want 1", n)
	}
}

// An expired access token (401) is refreshed once and the request sent again; a second 401 is exit 77
// with the login command.
func TestGmailTokenRefresh(t *testing.T) {
	var issued atomic.Int32
	srv := gmailtest.NewServer(t, &gmailtest.Options{Token: func(tok string) bool { return strings.HasPrefix(tok, "tok-") }})
	var refusedSeen []string
	g := gmailDest(t, srv, func(o *GmailOptions) {
		o.Token = func(_ context.Context, refused string) (string, error) {
			if refused != "" {
				refusedSeen = append(refusedSeen, refused)
			}
			return "tok-" + string(rune('a'+issued.Add(1)-1)), nil
		}
	})
	gmailDeliver(t, g, "u1", "Subject: 1\n\n1\n")
	if err := g.Commit(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	srv.Expire("tok-a") // mid-run: the token expires between two batches
	gmailDeliver(t, g, "u2", "Subject: 2\n\n2\n")
	if err := g.Commit(t.Context(), nil); err != nil {
		t.Fatalf("Commit after expiry: %v", err)
	}
	if len(srv.Messages()) != 2 || !slices.Equal(refusedSeen, []string{"tok-a"}) {
		t.Errorf("%d messages, refused tokens %v; want 2 and [tok-a]", len(srv.Messages()), refusedSeen)
	}

	srv2 := gmailtest.NewServer(t, &gmailtest.Options{Token: func(string) bool { return false }})
	g2 := gmailDest(t, srv2, nil)
	gmailDeliver(t, g2, "u1", "Subject: 1\n\n1\n")
	err := g2.Commit(t.Context(), nil)
	if code := exitCodeOf(err); code != 77 || !strings.Contains(err.Error(), "popfetch oauth2 login --deliver work") {
		t.Fatalf("Commit: %v (exit %d), want 77 with the login hint", err, code)
	}
	if r := srv2.Requests("import"); r != 2 {
		t.Errorf("%d import requests, want 2 (one refresh)", r)
	}
}

// A token without the gmail.insert scope: exit 77 with the login hint, no retries.
func TestGmail403Scope(t *testing.T) {
	srv := gmailtest.NewServer(t, &gmailtest.Options{Scopes: []string{gmailtest.ScopeReadonly}})
	g := gmailDest(t, srv, nil)
	gmailDeliver(t, g, "u1", "Subject: x\n\nx\n")
	err := g.Commit(t.Context(), nil)
	if code := exitCodeOf(err); code != 77 || !strings.Contains(err.Error(), "scope") ||
		!strings.Contains(err.Error(), "popfetch oauth2 login --deliver work") {
		t.Fatalf("Commit: %v (exit %d), want 77 about the scope with the login hint", err, code)
	}
	if r := srv.Requests("import"); r != 1 {
		t.Errorf("%d import requests, want 1", r)
	}
}

// A message Gmail refuses (400): exit 74 naming the message's UIDL.
func TestGmail400(t *testing.T) {
	srv := gmailtest.NewServer(t, nil)
	srv.Fail("import", 1, 400, "invalidArgument", "")
	g := gmailDest(t, srv, nil)
	gmailDeliver(t, g, "uidl-42", "Subject: x\n\nx\n")
	err := g.Commit(t.Context(), nil)
	if code := exitCodeOf(err); code != 74 || !strings.Contains(err.Error(), `"uidl-42"`) {
		t.Fatalf("Commit: %v (exit %d), want 74 naming uidl-42", err, code)
	}
}

// A message over the size limit fails Deliver (74) and leaves nothing in the spool.
func TestGmailOversize(t *testing.T) {
	srv := gmailtest.NewServer(t, nil)
	g := gmailDest(t, srv, func(o *GmailOptions) { o.MaxSize = 1000 })
	_, err := g.Deliver(t.Context(), Envelope{UID: "big"}, io.LimitReader(zeroReader{}, 5000))
	if code := exitCodeOf(err); code != 74 || !strings.Contains(err.Error(), `"big"`) {
		t.Fatalf("Deliver: %v (exit %d), want 74 naming big", err, code)
	}
	if ents, _ := os.ReadDir(g.opts.SpoolDir); len(ents) != 0 {
		t.Errorf("spool not empty: %v", ents)
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 'a'
	}
	return len(b), nil
}

// Spool files are private.
func TestGmailSpoolMode(t *testing.T) {
	srv := gmailtest.NewServer(t, nil)
	g := gmailDest(t, srv, nil)
	gmailDeliver(t, g, "u1", "Subject: x\n\nx\n")
	ents, _ := os.ReadDir(g.opts.SpoolDir)
	if len(ents) != 1 {
		t.Fatalf("spool: %v", ents)
	}
	fi, _ := ents[0].Info()
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("spool file mode %v, want 0600", fi.Mode())
	}
	if di, _ := os.Stat(g.opts.SpoolDir); di.Mode().Perm() != 0o700 {
		t.Errorf("spool dir mode %v, want 0700", di.Mode())
	}
}

// The API answering with a redirect: popfetch does not follow it (the bearer token would go along),
// and the import fails as a refusal naming the message; the other host sees no request.
func TestGmailRefusesRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	g, err := NewGmail(GmailOptions{APIURL: redirector.URL, SpoolDir: t.TempDir(), Attempts: 2, Backoff: time.Millisecond,
		Token: func(context.Context, string) (string, error) { return "test-access-token", nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gmailDeliver(t, g, "u1", "Subject: x\n\nx\n")
	err = g.Commit(t.Context(), nil)
	if err == nil || !strings.Contains(err.Error(), "redirect refused") || !strings.Contains(err.Error(), `"u1"`) {
		t.Fatalf("Commit: %v, want the redirect refused", err)
	}
	if exitCodeOf(err) != 74 {
		t.Errorf("Commit: exit %d, want 74", exitCodeOf(err))
	}
	_, err = g.Resolve([]string{gmailRef("m", "<a@example.com>")})
	if err == nil || !strings.Contains(err.Error(), "does not follow redirects") || exitCodeOf(err) != 74 || strings.Contains(err.Error(), "tries") {
		t.Errorf("Resolve: %v (exit %d), want the redirect refused at once (74)", err, exitCodeOf(err))
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("%d requests reached the redirect's target", n)
	}
}

// A server that stops reading in the middle of an upload: the try is abandoned after Timeout without
// progress (not after the whole upload's time), and the error is temporary (exit 75).
func TestGmailStalledUpload(t *testing.T) {
	release := make(chan struct{})
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			got.Add(1)
		}
		io.CopyN(io.Discard, r.Body, 1000) // read a little, then nothing more
		<-release
	}))
	defer func() { close(release); srv.Close() }()
	g, err := NewGmail(GmailOptions{APIURL: srv.URL, SpoolDir: t.TempDir(), Attempts: 1, Timeout: 300 * time.Millisecond,
		Token: func(context.Context, string) (string, error) { return "test-access-token", nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	big := "Subject: big\n\n" + strings.Repeat(strings.Repeat("z", 99)+"\n", 200000) // 20 MB: more than the socket buffers
	gmailDeliver(t, g, "u1", big)
	start := time.Now()
	err = g.Commit(t.Context(), nil)
	if code := exitCodeOf(err); code != 75 || !strings.Contains(err.Error(), "no progress") {
		t.Fatalf("Commit: %v (exit %d), want 75 for no progress", err, code)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("gave up after %v", took)
	}
	if got.Load() != 1 {
		t.Errorf("%d requests", got.Load())
	}
}

// A label that does not exist and a token without gmail.labels: exit 77 naming the label and the
// scope; nothing is journaled or imported.
func TestGmailLabelNoScope(t *testing.T) {
	srv := gmailtest.NewServer(t, &gmailtest.Options{Scopes: []string{gmailtest.ScopeInsert, gmailtest.ScopeReadonly}})
	g := gmailDest(t, srv, func(o *GmailOptions) { o.Labels = []string{"INBOX", "New Label"} })
	gmailDeliver(t, g, "u1", "Subject: x\n\nx\n")
	journaled := false
	err := g.Commit(t.Context(), func([]Pending) error { journaled = true; return nil })
	if code := exitCodeOf(err); code != 77 || !strings.Contains(err.Error(), `label "New Label"`) ||
		!strings.Contains(err.Error(), "gmail.labels") {
		t.Fatalf("Commit: %v (exit %d)", err, code)
	}
	if journaled || len(srv.Messages()) != 0 {
		t.Errorf("journaled %v, %d imported", journaled, len(srv.Messages()))
	}
}

// Which Message-ID Gmail search can find: exactly one field of the form <left@right>.
func TestGmailMessageID(t *testing.T) {
	for _, c := range []struct{ msg, id string }{
		{"Message-ID: <a@b>\n\nbody", "<a@b>"},
		{"message-id:   <a@b> (comment)\nX: y\n\n", "<a@b>"},
		{"Message-Id:\n\t<folded@b>\n\n", "<folded@b>"},
		{"Subject: x\n\nMessage-ID: <in-body@b>\n", ""},
		{"Message-ID: <a@b>\nMessage-ID: <c@d>\n\n", ""}, // two: which one Gmail indexes is unknown
		{"Message-ID: a@b\n\n", ""},
		{"Message-ID: <a b@c>\n\n", ""},
		{"Message-ID: <\"q\"@c>\n\n", ""},
		{"Message-ID: <a@b>", "<a@b>"}, // all header, no final newline
		{"Subject: x\r\nMessage-ID: <crlf@b>\r\n\r\n", "<crlf@b>"},
	} {
		h := &headerScan{}
		for i := 0; i < len(c.msg); i += 3 { // in small pieces, as a stream arrives
			h.feed([]byte(c.msg[i:min(i+3, len(c.msg))]))
		}
		id, ok := h.messageID()
		if c.id == "" && ok || c.id != "" && (!ok || id != c.id) {
			t.Errorf("%q: %q %v, want %q", c.msg, id, ok, c.id)
		}
	}
}

// After a crash, a token that may not search (no gmail.readonly): Resolve fails with exit 77 and says
// which scope is missing; the state then keeps the entries pending (nothing is fetched twice).
func TestGmailResolveNoScope(t *testing.T) {
	srv := gmailtest.NewServer(t, &gmailtest.Options{Scopes: []string{gmailtest.ScopeInsert}})
	g := gmailDest(t, srv, nil)
	_, err := g.Resolve([]string{gmailRef("work.x.y", "<a@example.com>")})
	if code := exitCodeOf(err); code != 77 || !strings.Contains(err.Error(), "gmail.readonly") ||
		!strings.Contains(err.Error(), "popfetch oauth2 login --deliver work") {
		t.Fatalf("Resolve: %v (exit %d)", err, code)
	}
}

// TestGmailResolveLateImport: a run is killed after uploading a message whole and before Gmail has
// answered, and Gmail stores it only after the next run's first search. The next run's Resolve waits
// out the grace (the upload's end, which the spool file records, plus the timeout) and searches again:
// the message is seen as delivered, not fetched and imported a second time.
func TestGmailResolveLateImport(t *testing.T) {
	srv := gmailtest.NewServer(t, nil)
	spool := filepath.Join(t.TempDir(), "spool")
	held, hold := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	var heldOnce sync.Once
	srv.OnRequest(func(op string) {
		if op == "import" {
			heldOnce.Do(func() { close(held) })
			<-hold
		}
	})
	killed := gmailDest(t, srv, func(o *GmailOptions) { o.SpoolDir, o.Timeout = spool, time.Second })
	t.Cleanup(release) // before killed's Close, which waits for its Commit
	p := gmailDeliver(t, killed, "u1", "Subject: stored late\n\nx\n")
	go killed.Commit(context.Background(), nil) // "killed": nobody reads its answer
	<-held
	// The server may see the request before the client has handed over the message's last bytes (the
	// headers go first): wait until the spool file says the upload ended, as it would before a kill.
	files, _ := filepath.Glob(filepath.Join(spool, "gmail-*.eml"))
	if len(files) != 1 {
		t.Fatalf("spool files %v, want one", files)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fi, err := os.Stat(files[0]); err != nil || !fi.ModTime().After(notUploaded); fi, err = os.Stat(files[0]) {
		if time.Now().After(deadline) {
			t.Fatalf("the spool file never recorded the upload's end: %v, %v", fi, err)
		}
		time.Sleep(time.Millisecond) // polling a condition, not a guess of how long it takes
	}

	next := gmailDest(t, srv, func(o *GmailOptions) { o.SpoolDir, o.Timeout = spool, time.Second })
	var searches atomic.Int32
	srv.OnAnswered(func(op string) {
		if searches.Add(1) == 1 {
			release() // Gmail stores the killed run's message only now
		}
	})
	vis, err := next.Resolve([]string{p.Ref})
	if err != nil {
		t.Fatal(err)
	}
	if !vis[p.Ref] {
		t.Errorf("Resolve after %d search(es): the late import is not seen; the message would be imported twice", searches.Load())
	}
	if n := searches.Load(); n != 2 {
		t.Errorf("%d searches, want 2 (one, then one after the grace)", n)
	}
}

// TestGmailResolveNotUploaded: messages a killed run had spooled but not uploaded cost the next run
// no grace: Gmail cannot be storing them, so Resolve searches once.
func TestGmailResolveNotUploaded(t *testing.T) {
	srv := gmailtest.NewServer(t, nil)
	spool := filepath.Join(t.TempDir(), "spool")
	killed := gmailDest(t, srv, func(o *GmailOptions) { o.SpoolDir, o.Timeout = spool, time.Minute })
	p := gmailDeliver(t, killed, "u1", "Subject: spooled only\n\nx\n")

	next := gmailDest(t, srv, func(o *GmailOptions) { o.SpoolDir, o.Timeout = spool, time.Minute })
	vis, err := next.Resolve([]string{p.Ref})
	if err != nil || vis[p.Ref] {
		t.Fatalf("Resolve = %v, %v; want not visible", vis, err)
	}
	if n := srv.Requests("search"); n != 1 {
		t.Errorf("%d searches, want 1 (no grace for a message never uploaded)", n)
	}
}
