package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/popfetch/popfetch/internal/httpsafe"
)

// The Gmail API (https://developers.google.com/workspace/gmail/api/reference/rest), called directly
// over REST with net/http: users.messages.import (media upload, multipart), users.messages.list (the
// rfc822msgid: search of the settle step), users.messages.get (format=metadata), users.labels.list
// and users.labels.create. See docs/BENCHMARKS.md for why not google.golang.org/api/gmail/v1.

// Defaults of GmailOptions.
const (
	DefaultGmailAPIURL = "https://gmail.googleapis.com"
	// GmailMaxSize is the largest message users.messages.import accepts ("Maximum file size: 150MB").
	GmailMaxSize = 150_000_000
	// GmailMarkerHeader is the header popfetch adds to every message it imports into Gmail.
	GmailMarkerHeader = "X-Popfetch-ID"
	// GmailMarkerDomain is the domain of the Message-ID popfetch adds to a message without one.
	GmailMarkerDomain = "popfetch.invalid"

	defaultGmailConcurrency = 4
	defaultGmailAttempts    = 6
	defaultGmailBackoff     = time.Second
	maxGmailBackoff         = 32 * time.Second
	maxGmailRetryAfter      = 2 * time.Minute
	gmailHeaderScanLimit    = 1 << 20 // the header section is searched for a Message-ID this far
)

// Gmail label IDs popfetch uses by default (system labels: their ID is their name).
var defaultGmailLabels = []string{"INBOX", "UNREAD"}

// GmailOptions configure a Gmail destination.
type GmailOptions struct {
	// APIURL is the API's root, "https://gmail.googleapis.com" when empty; tests and proxies point it
	// elsewhere. Paths /gmail/v1/... and /upload/gmail/v1/... are appended.
	APIURL string
	// User is the mailbox: "me" (the token's user) when empty.
	User string
	// Token returns an OAuth2 access token. refused is "" normally; after the API answered 401 to a
	// token, Token is called once more with that token, and must return a fresh one (refreshed).
	Token func(ctx context.Context, refused string) (string, error)
	// LoginHint is the command that logs the destination in again, for errors (exit 77).
	LoginHint string
	// Client makes the requests; nil means one that refuses redirects (a bearer token must never
	// follow one). Timeout bounds each request's silences: no progress of the upload, or no answer,
	// for that long abandons the try (then retried as a network error). 0 = 60s.
	Client  *http.Client
	Timeout time.Duration

	// SystemLabels are label IDs every message gets; nil means INBOX and UNREAD (as Gmail's POP
	// fetcher did). Labels are more labels by name, resolved with users.labels.list and created when
	// missing (which needs the gmail.labels scope).
	SystemLabels []string
	Labels       []string
	// InternalDateSource is "dateHeader" (the default: Gmail shows the message's Date:) or
	// "receivedTime".
	InternalDateSource string
	NeverMarkSpam      bool
	ProcessForCalendar bool
	ReceivedHeader     bool // prepend ReceivedHeader(env) too

	// SpoolDir holds each message between Deliver and Commit (a private file, mode 0600); it is
	// created (0700) if missing, and files a killed run left there are removed. It must be private to
	// the account, whose lock the caller holds. Required.
	SpoolDir string
	MaxSize  int64 // bytes; 0 = GmailMaxSize. A larger message fails Deliver (exit 74).

	Concurrency int           // imports in flight at once; 0 = 4
	Attempts    int           // tries per request for 429, 5xx and network errors; 0 = 6
	Backoff     time.Duration // the first wait between tries, doubling up to 32s; 0 = 1s
	// Context is used by Resolve, which has none of its own; nil means context.Background().
	Context context.Context
}

// Gmail delivers into a Gmail mailbox with users.messages.import: Gmail files each message as if it
// had arrived by SMTP (spam classification, filters), which is what Gmail's own POP fetcher did.
//
// Exactly once (ARCHITECTURE.md §4): Deliver spools the message to SpoolDir and adds a header
//
//	X-Popfetch-ID: <account>.<first 16 hex digits of SHA-256(UIDL)>.<32 random hex digits>
//
// unique to this attempt, and, when the message has no usable Message-ID (none, or not of the form
// <left@right> without spaces or quotes), a header Message-ID: <popfetch.<random>@popfetch.invalid>,
// because Gmail search cannot look for an arbitrary header but can for a Message-ID (rfc822msgid:).
// Commit journals each message as pending with that Message-ID and marker as its Ref, then imports.
// After a crash Resolve searches rfc822msgid:<Message-ID> (spam and trash included) and, for a
// Message-ID popfetch did not add, reads the X-Popfetch-ID of each hit (format=metadata): a hit with
// this attempt's marker means imported; none means fetch again. Two POP messages sharing a
// Message-ID (or one already in Gmail) therefore never hide each other. The same check runs before
// an import is retried after an answer that leaves its fate unknown (a dropped connection, 5xx).
//
// The search needs a scope that may read (gmail.readonly); importing needs gmail.insert.
type Gmail struct {
	opts   GmailOptions
	client *http.Client
	base   *url.URL

	mu       sync.Mutex
	tmu      sync.Mutex // guards token; mu is held by Commit around the concurrent imports
	token    string
	batch    []gmailMessage
	labelIDs []string // resolved once; nil until the first Commit
	buf      []byte
	// uploaded holds, for each message a killed run left in the spool, when that run last finished
	// uploading it (the spool file's modification time; by the spool file's nonce): Resolve's grace.
	uploaded map[string]time.Time
	stale    []string // those files, removed once settled (removeStale)
}

type gmailMessage struct {
	pending Pending
	uid     string
	path    string // the spool file: the message as received, lines ending CRLF
	prefix  []byte // the headers popfetch adds, CRLF-terminated
	size    int64  // of the spool file
	msgID   string // the Message-ID searched for, with its angle brackets
	marker  string
	ours    bool // msgID is one popfetch added (unique: a hit is this message)
}

var (
	_ Destination = (*Gmail)(nil)
	_ Resolver    = (*Gmail)(nil)
)

// NewGmail returns a Gmail destination. It makes no request: the first Commit resolves the labels.
func NewGmail(opts GmailOptions) (*Gmail, error) {
	if opts.SpoolDir == "" {
		return nil, errors.New("store: gmail: no spool directory")
	}
	if opts.Token == nil {
		return nil, errors.New("store: gmail: no token source")
	}
	if opts.APIURL == "" {
		opts.APIURL = DefaultGmailAPIURL
	}
	base, err := url.Parse(strings.TrimRight(opts.APIURL, "/"))
	if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") {
		return nil, fmt.Errorf("store: gmail: api_url %q is not an http(s) URL", opts.APIURL)
	}
	if opts.User == "" {
		opts.User = "me"
	}
	if opts.SystemLabels == nil {
		opts.SystemLabels = defaultGmailLabels
	}
	if opts.InternalDateSource == "" {
		opts.InternalDateSource = "dateHeader"
	}
	if opts.MaxSize <= 0 || opts.MaxSize > GmailMaxSize {
		opts.MaxSize = GmailMaxSize
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = defaultGmailConcurrency
	}
	if opts.Attempts <= 0 {
		opts.Attempts = defaultGmailAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = defaultGmailBackoff
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if err := os.MkdirAll(opts.SpoolDir, 0o700); err != nil {
		return nil, ioErr("mkdir", opts.SpoolDir, err)
	}
	// What a killed run left in the spool holds no mail of its own: its messages are still on the POP
	// server or settled by Resolve. But each file's modification time says when its upload ended
	// (uploadEnd), which Resolve's grace needs: the files stay until Resolve has settled the pending
	// entries, or until the first Commit (a run killed during the grace leaves them to the next). The
	// caller holds the account's lock, so no other run is writing there.
	uploaded := map[string]time.Time{}
	stale, _ := filepath.Glob(filepath.Join(opts.SpoolDir, "gmail-*.eml"))
	for _, f := range stale {
		if fi, err := os.Lstat(f); err == nil {
			uploaded[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "gmail-"), ".eml")] = fi.ModTime()
		}
	}
	client := opts.Client
	if client == nil {
		client = NewGmailHTTPClient(opts.Timeout)
	}
	return &Gmail{opts: opts, client: client, base: base, buf: make([]byte, 32<<10), uploaded: uploaded,
		stale: stale}, nil
}

// isRedirect reports whether err is a refused redirect: api_url (or a proxy) is wrong, and trying
// again will not help.
func isRedirect(err error) bool {
	_, ok := httpsafe.AsRedirect(err)
	return ok
}

// NewGmailHTTPClient returns the HTTP client a Gmail destination uses by default: it refuses
// redirects (an Authorization header must not follow one to another host) and waits at most timeout
// (0 = 60s) for a response's headers once the request is sent.
func NewGmailHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = timeout
	tr.TLSHandshakeTimeout = timeout
	tr.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: tr, CheckRedirect: httpsafe.RefuseRedirect}
}

// Deliver spools the message read from body to a private file in SpoolDir, in the form it had on the
// wire (lines ending CRLF; the POP3 client hands them over ending LF), and finds its Message-ID. It
// sends nothing: Commit imports. A message larger than MaxSize fails with a *GmailError (exit 74).
func (g *Gmail) Deliver(ctx context.Context, env Envelope, body io.Reader) (Pending, error) {
	if err := ctx.Err(); err != nil {
		return Pending{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()

	nonce := randomHex(16)
	path := filepath.Join(g.opts.SpoolDir, "gmail-"+nonce+".eml")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Pending{}, ioErr("create", path, err)
	}
	fail := func(err error) (Pending, error) {
		f.Close()
		os.Remove(path)
		return Pending{}, err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	hs := &headerScan{}
	var (
		size   int64
		lastCR bool
	)
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		n, rerr := body.Read(g.buf)
		chunk := g.buf[:n]
		hs.feed(chunk)
		// LF -> CRLF, unless the LF already follows a CR (a lone CR stays as it is).
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				w.Write(chunk)
				size += int64(len(chunk))
				lastCR = chunk[len(chunk)-1] == '\r'
				break
			}
			w.Write(chunk[:i])
			size += int64(i)
			if !(i > 0 && chunk[i-1] == '\r' || i == 0 && lastCR) {
				w.WriteByte('\r')
				size++
			}
			w.WriteByte('\n')
			size++
			lastCR = false
			chunk = chunk[i+1:]
		}
		if size > g.opts.MaxSize {
			return fail(&GmailError{Op: "import", UID: env.UID, Status: http.StatusRequestEntityTooLarge,
				Message: fmt.Sprintf("the message is larger than %d bytes, the most Gmail imports (set max_size and oversize: skip or delete to leave such messages on the server or delete them)", g.opts.MaxSize)})
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fail(fmt.Errorf("reading the message: %w", rerr))
		}
	}
	if err := w.Flush(); err != nil {
		return fail(ioErr("write", path, err))
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return Pending{}, ioErr("write", path, err)
	}
	// Not uploaded yet: an old modification time, which uploadEnd replaces (Resolve's grace counts
	// only uploads). Should this fail, the next run after a crash merely waits out a grace.
	os.Chtimes(path, time.Time{}, notUploaded)

	uidHash := sha256.Sum256([]byte(env.UID))
	m := gmailMessage{uid: env.UID, path: path, size: size,
		marker: sanitizeMarker(env.Account) + "." + hex.EncodeToString(uidHash[:8]) + "." + nonce}
	var prefix bytes.Buffer
	prefix.WriteString(GmailMarkerHeader + ": " + m.marker + "\r\n")
	if id, ok := hs.messageID(); ok {
		m.msgID = id
	} else {
		m.msgID, m.ours = "<popfetch."+nonce+"@"+GmailMarkerDomain+">", true
		prefix.WriteString("Message-ID: " + m.msgID + "\r\n")
	}
	if g.opts.ReceivedHeader {
		prefix.WriteString(strings.ReplaceAll(ReceivedHeader(env), "\n", "\r\n"))
	}
	m.prefix = prefix.Bytes()
	m.pending = Pending{UID: env.UID, Ref: gmailRef(m.marker, m.msgID)}
	g.batch = append(g.batch, m)
	return m.pending, nil
}

// gmailRef is the Ref of a pending import: "gmail1 MARKER MESSAGE-ID".
func gmailRef(marker, msgID string) string { return "gmail1 " + marker + " " + msgID }

func parseGmailRef(ref string) (marker, msgID string, ok bool) {
	f := strings.SplitN(ref, " ", 3)
	if len(f) != 3 || f[0] != "gmail1" {
		return "", "", false
	}
	return f[1], f[2], true
}

// Commit resolves the labels (the first time), journals the batch as pending, then imports every
// message (Concurrency at a time). It returns nil only when Gmail accepted every one. On failure the
// journal's pending entries stay: the next run's Resolve settles which messages Gmail has.
func (g *Gmail) Commit(ctx context.Context, journal func([]Pending) error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.batch) == 0 {
		return nil
	}
	defer g.abortLocked()
	g.removeStale() // the run has settled what a killed run left (OpenAccount resolves first)
	if g.labelIDs == nil {
		ids, err := g.resolveLabels(ctx)
		if err != nil {
			return err
		}
		g.labelIDs = ids
	}
	if journal != nil {
		ps := make([]Pending, len(g.batch))
		for i, m := range g.batch {
			ps[i] = m.pending
		}
		if err := journal(ps); err != nil {
			return err
		}
	}
	errs := make([]error, len(g.batch))
	sem := make(chan struct{}, g.opts.Concurrency)
	var wg sync.WaitGroup
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := range g.batch {
		sem <- struct{}{}
		if ictx.Err() != nil {
			<-sem
			errs[i] = ictx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = g.importOne(ictx, &g.batch[i])
			if errs[i] != nil && !isTemporaryGmail(errs[i]) {
				cancel() // a permanent refusal: the batch fails anyway, stop early
			}
		}()
	}
	wg.Wait()
	// Report the most telling error: a permanent one before a temporary one before a cancellation.
	var first error
	for _, err := range errs {
		switch {
		case err == nil:
		case first == nil:
			first = err
		case errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled):
			first = err
		case isTemporaryGmail(first) && !isTemporaryGmail(err) && !errors.Is(err, context.Canceled):
			first = err
		}
	}
	if first != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// Abort removes the spooled messages of the batch.
func (g *Gmail) Abort() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.abortLocked()
	return nil
}

func (g *Gmail) abortLocked() {
	for _, m := range g.batch {
		os.Remove(m.path)
	}
	g.batch = nil
}

// Close discards what was not committed.
func (g *Gmail) Close() error { return g.Abort() }

// Resolve reports which pending imports Gmail has (see Gmail), Concurrency searches at a time. An
// error to search fails it: the state keeps the entries pending, and nothing is fetched again until
// the search works. A message not found whose upload a killed run completed less than the timeout
// ago is searched for again once that time has passed (resolveLate).
func (g *Gmail) Resolve(refs []string) (map[string]bool, error) {
	ctx, cancel := context.WithCancel(g.opts.Context)
	defer cancel()
	visible := make(map[string]bool, len(refs))
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, g.opts.Concurrency) // searches in flight at once
	for _, ref := range refs {
		marker, msgID, ok := parseGmailRef(ref)
		if !ok {
			continue // not ours (another destination's): not visible here
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ours := ourMessageID(msgID)
			found, err := g.find(ctx, "", marker, msgID, ours)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			visible[ref] = found
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	visible, err := g.resolveLate(ctx, visible)
	if err == nil {
		g.mu.Lock()
		g.removeStale()
		g.mu.Unlock()
	}
	return visible, err
}

// removeStale removes the spool files a killed run left. g.mu is held.
func (g *Gmail) removeStale() {
	for _, f := range g.stale {
		os.Remove(f)
	}
	g.stale = nil
}

// resolveLate searches again, once their grace is over, for the messages not found whose upload a
// killed run had completed less than the timeout ago: Gmail may still have been storing them when
// Resolve first looked (nobody waits for the answer to a killed run's request), and a late import
// must be seen rather than duplicated. The wait happens only when a run restarts within the timeout
// of a crash in the middle of a Commit.
func (g *Gmail) resolveLate(ctx context.Context, visible map[string]bool) (map[string]bool, error) {
	var late []string
	var until time.Time
	for ref, found := range visible {
		marker, _, _ := parseGmailRef(ref)
		nonce := marker[strings.LastIndexByte(marker, '.')+1:]
		at, ok := g.uploaded[nonce]
		if found || !ok {
			continue
		}
		// A time in the future (the clock was set back since) counts as now: the wait never exceeds
		// the timeout plus 2 s.
		if now := time.Now(); at.After(now) {
			at = now
		}
		if end := at.Add(g.opts.Timeout + 2*time.Second); time.Now().Before(end) {
			late = append(late, ref)
			if end.After(until) {
				until = end
			}
		}
	}
	if len(late) == 0 {
		return visible, nil
	}
	t := time.NewTimer(time.Until(until))
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return nil, ctx.Err()
	}
	for _, ref := range late {
		marker, msgID, _ := parseGmailRef(ref)
		ours := ourMessageID(msgID)
		found, err := g.find(ctx, "", marker, msgID, ours)
		if err != nil {
			return nil, err
		}
		visible[ref] = found
	}
	return visible, nil
}

// find reports whether the mailbox holds the message with marker and msgID.
func (g *Gmail) find(ctx context.Context, uid, marker, msgID string, ours bool) (bool, error) {
	q := url.Values{"q": {"rfc822msgid:" + msgID}, "includeSpamTrash": {"true"}, "maxResults": {"500"}}
	for page := 0; page < 20; page++ {
		var res struct {
			Messages []struct {
				ID string `json:"id"`
			} `json:"messages"`
			NextPageToken string `json:"nextPageToken"`
		}
		if err := g.getJSON(ctx, "search", uid, g.apiPath("messages")+"?"+q.Encode(), &res); err != nil {
			return false, err
		}
		if ours && len(res.Messages) > 0 {
			return true, nil
		}
		for _, m := range res.Messages {
			var msg struct {
				Payload struct {
					Headers []struct{ Name, Value string } `json:"headers"`
				} `json:"payload"`
			}
			p := g.apiPath("messages/"+url.PathEscape(m.ID)) + "?" +
				url.Values{"format": {"metadata"}, "metadataHeaders": {GmailMarkerHeader}}.Encode()
			if err := g.getJSON(ctx, "get", uid, p, &msg); err != nil {
				var ge *GmailError
				if errors.As(err, &ge) && ge.Status == http.StatusNotFound {
					continue // deleted since the search
				}
				return false, err
			}
			for _, h := range msg.Payload.Headers {
				if strings.EqualFold(h.Name, GmailMarkerHeader) && strings.TrimSpace(h.Value) == marker {
					return true, nil
				}
			}
		}
		if res.NextPageToken == "" {
			return false, nil
		}
		q.Set("pageToken", res.NextPageToken)
	}
	return false, nil
}

// importOne uploads one message (multipart media upload: the labels as JSON, then the message).
func (g *Gmail) importOne(ctx context.Context, m *gmailMessage) error {
	f, err := os.Open(m.path)
	if err != nil {
		return ioErr("open", m.path, err)
	}
	defer f.Close()
	meta, _ := json.Marshal(struct {
		LabelIDs []string `json:"labelIds"`
	}{g.labelIDs})
	boundary := "popfetch-" + randomHex(16)
	head := "--" + boundary + "\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n" + string(meta) +
		"\r\n--" + boundary + "\r\nContent-Type: message/rfc822\r\n\r\n"
	tail := "\r\n--" + boundary + "--\r\n"
	length := int64(len(head)+len(m.prefix)+len(tail)) + m.size
	body := func() io.Reader {
		return io.MultiReader(strings.NewReader(head), bytes.NewReader(m.prefix),
			io.NewSectionReader(f, 0, m.size), uploadEnd(m.path), strings.NewReader(tail))
	}
	q := url.Values{"uploadType": {"multipart"}, "internalDateSource": {g.opts.InternalDateSource},
		"neverMarkSpam":      {strconv.FormatBool(g.opts.NeverMarkSpam)},
		"processForCalendar": {strconv.FormatBool(g.opts.ProcessForCalendar)}}
	u := g.base.String() + "/upload/gmail/v1/users/" + url.PathEscape(g.opts.User) + "/messages/import?" + q.Encode()
	req := func(ctx context.Context) (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body())
		if err != nil {
			return nil, err
		}
		r.ContentLength = length
		r.Header.Set("Content-Type", "multipart/related; boundary="+boundary)
		return r, nil
	}
	// Before a retry after an answer that leaves the import's fate unknown, look whether it arrived.
	check := func(ctx context.Context) (bool, error) { return g.find(ctx, m.uid, m.marker, m.msgID, m.ours) }
	_, err = g.do(ctx, "import", m.uid, req, check)
	return err
}

// ourMessageID reports whether msgID is one popfetch gave a message that had none: only that
// message can carry it, so a search hit needs no check of the marker.
func ourMessageID(msgID string) bool {
	return strings.HasPrefix(msgID, "<popfetch.") && strings.HasSuffix(msgID, "@"+GmailMarkerDomain+">")
}

// notUploaded is the modification time of a spool file whose message has not been uploaded.
var notUploaded = time.Unix(1, 0)

// uploadEnd is an empty reader placed before the request's last part (the closing boundary): when
// the HTTP client reaches it, every byte of the message has been handed over and only those last
// octets, without which Gmail stores nothing, remain. It sets the spool file's modification time to
// now: if this run is killed while Gmail stores the message, the next run's Resolve knows when the
// upload ended (NewGmail reads the time, Resolve waits out its grace).
type uploadEnd string

func (p uploadEnd) Read([]byte) (int, error) {
	now := time.Now()
	os.Chtimes(string(p), now, now)
	return 0, io.EOF
}

// resolveLabels returns the label IDs for every message: SystemLabels plus Labels by name, created
// when missing.
func (g *Gmail) resolveLabels(ctx context.Context) ([]string, error) {
	ids := append([]string{}, g.opts.SystemLabels...)
	if len(g.opts.Labels) == 0 {
		return ids, nil
	}
	var res struct {
		Labels []struct{ ID, Name string } `json:"labels"`
	}
	if err := g.getJSON(ctx, "labels.list", "", g.apiPath("labels"), &res); err != nil {
		return nil, err
	}
next:
	for _, name := range g.opts.Labels {
		for _, l := range res.Labels {
			if strings.EqualFold(l.Name, name) {
				ids = append(ids, l.ID)
				continue next
			}
		}
		body, _ := json.Marshal(map[string]string{"name": name, "labelListVisibility": "labelShow", "messageListVisibility": "show"})
		var created struct{ ID string }
		req := func(ctx context.Context) (*http.Request, error) {
			r, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base.String()+g.apiPath("labels"), bytes.NewReader(body))
			if err == nil {
				r.Header.Set("Content-Type", "application/json; charset=UTF-8")
			}
			return r, err
		}
		data, err := g.do(ctx, "labels.create", "", req, nil)
		if err != nil {
			var ge *GmailError
			if errors.As(err, &ge) && ge.Status == http.StatusForbidden {
				ge.Message = fmt.Sprintf("label %q does not exist and the token may not create it (%s); create the label in Gmail, or add the scope https://www.googleapis.com/auth/gmail.labels and log in again", name, ge.Message)
			}
			return nil, err
		}
		if err := json.Unmarshal(data, &created); err != nil || created.ID == "" {
			return nil, &GmailError{Op: "labels.create", Status: 200, Message: "the answer names no label ID"}
		}
		ids = append(ids, created.ID)
	}
	return ids, nil
}

func (g *Gmail) apiPath(rest string) string {
	return "/gmail/v1/users/" + url.PathEscape(g.opts.User) + "/" + rest
}

func (g *Gmail) getJSON(ctx context.Context, op, uid, pathQuery string, v any) error {
	req := func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, g.base.String()+pathQuery, nil)
	}
	data, err := g.do(ctx, op, uid, req, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &GmailError{Op: op, UID: uid, Status: 200, Message: "the answer is not the JSON expected: " + err.Error()}
	}
	return nil
}

// accessToken returns the current token; with refused set, a fresh one replacing refused.
func (g *Gmail) accessToken(ctx context.Context, refused string) (string, error) {
	g.tmu.Lock()
	defer g.tmu.Unlock()
	if refused == "" && g.token != "" {
		return g.token, nil
	}
	if refused != "" && g.token != refused && g.token != "" {
		return g.token, nil // another request refreshed it already
	}
	t, err := g.opts.Token(ctx, refused)
	if err != nil {
		return "", err
	}
	g.token = t
	return t, nil
}

// do sends a request built by mk with the bearer token: 401 refreshes the token once; 429, 5xx,
// rate-limit 403s and network errors are tried again (Attempts in all) after an exponential backoff
// or the Retry-After the server asked for. With check, a retry after an answer that leaves the
// request's effect unknown (network error, 5xx) first asks check whether it took effect.
func (g *Gmail) do(ctx context.Context, op, uid string, mk func(context.Context) (*http.Request, error),
	check func(context.Context) (bool, error)) ([]byte, error) {
	var (
		refused  string
		backoff  = g.opts.Backoff
		lastErr  error
		unknown  bool // the last try may have taken effect
		attempts int
	)
	for attempts < g.opts.Attempts {
		if unknown && check != nil {
			if ok, err := check(ctx); err == nil && ok {
				return nil, nil
			} else if err != nil && !isTemporaryGmail(err) {
				return nil, err
			}
		}
		attempts++
		tok, err := g.accessToken(ctx, refused)
		if err != nil {
			return nil, err
		}
		// A watchdog: the try is abandoned when the upload makes no progress, or the answer does not
		// come, for Timeout (a server that stops reading would otherwise block the write forever).
		actx, cancel := context.WithCancelCause(ctx)
		watchdog := time.AfterFunc(g.opts.Timeout, func() {
			cancel(fmt.Errorf("no progress for %v", g.opts.Timeout))
		})
		req, err := mk(actx)
		if err != nil {
			watchdog.Stop()
			cancel(nil)
			return nil, err
		}
		if req.Body != nil {
			req.Body = &progressBody{ReadCloser: req.Body, t: watchdog, d: g.opts.Timeout}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := g.client.Do(req)
		var (
			wait  time.Duration
			asked bool // the server said when to try again (Retry-After)
		)
		if err != nil {
			watchdog.Stop()
			if actx.Err() != nil && ctx.Err() == nil {
				err = context.Cause(actx) // the watchdog's "no progress"
			}
			cancel(nil)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			ge := &GmailError{Op: op, UID: uid, Err: err, Attempts: attempts}
			if _, redirected := httpsafe.AsRedirect(err); redirected {
				return nil, ge // the API (or a proxy) redirects: api_url is wrong; trying again will not help
			}
			lastErr = ge
			unknown = true
		} else {
			data, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			watchdog.Stop()
			if rerr != nil && actx.Err() != nil && ctx.Err() == nil {
				rerr = context.Cause(actx)
			}
			cancel(nil)
			if resp.StatusCode/100 == 2 && rerr == nil {
				return data, nil
			}
			if rerr != nil {
				lastErr = &GmailError{Op: op, UID: uid, Err: rerr, Attempts: attempts}
				unknown = true
			} else {
				ge := gmailErrorFrom(op, uid, resp, data)
				ge.Attempts = attempts
				ge.Login = g.opts.LoginHint
				lastErr = ge
				switch {
				case resp.StatusCode == http.StatusUnauthorized && refused == "":
					refused = tok // refresh once, and try again at once
					attempts--
					continue
				case !ge.Temporary():
					return nil, ge
				}
				unknown = resp.StatusCode >= 500
				wait, asked = retryAfter(resp.Header.Get("Retry-After"))
			}
		}
		if attempts >= g.opts.Attempts || asked && wait > maxGmailRetryAfter {
			break // a server that asks for a long pause gets it from the next run (exit 75)
		}
		if !asked {
			wait = backoff
			backoff = min(backoff*2, maxGmailBackoff)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	if unknown && check != nil {
		if ok, err := check(ctx); err == nil && ok {
			return nil, nil
		}
	}
	return nil, lastErr
}

// progressBody resets a watchdog timer whenever the HTTP transport reads more of a request body.
type progressBody struct {
	io.ReadCloser
	t *time.Timer
	d time.Duration
}

func (p *progressBody) Read(b []byte) (int, error) {
	n, err := p.ReadCloser.Read(b)
	if n > 0 {
		p.t.Reset(p.d)
	}
	return n, err
}

// retryAfter parses a Retry-After header (RFC 9110 §10.2.3): seconds, or an HTTP date.
func retryAfter(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(s); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// GmailError is a request the Gmail API refused, or could not be sent. Its exit code (ARCHITECTURE.md §5): 75
// for what may work later (429, 5xx, a rate limit, the network) once the tries are used up; 77 for
// authentication and authorization (401 after a refresh, 403 for a missing scope or a disabled API),
// with the login command; 74 for a message Gmail refuses (400, 413) or another answer.
type GmailError struct {
	Op       string // "import", "search", "get", "labels.list", "labels.create"
	UID      string // the POP message's UIDL, when about one message
	Status   int    // HTTP status; 0 for a network error
	Reason   string // Google's reason (errors[0].reason or ErrorInfo.reason), e.g. "insufficientPermissions"
	Message  string
	Attempts int
	Login    string // the command that logs the destination in again
	Err      error  // a network error
}

func (e *GmailError) Error() string {
	var b strings.Builder
	b.WriteString("gmail: " + e.Op)
	if e.UID != "" {
		fmt.Fprintf(&b, " of message UIDL %q", e.UID)
	}
	switch {
	case e.Err != nil:
		fmt.Fprintf(&b, ": %v", e.Err)
	default:
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
		if e.Reason != "" {
			b.WriteString(" " + e.Reason)
		}
		if e.Message != "" {
			b.WriteString(": " + e.Message)
		}
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d tries)", e.Attempts)
	}
	switch {
	case e.Is(ErrAuth):
		if e.scope() {
			b.WriteString("; the token lacks a scope popfetch needs (gmail.insert to import, gmail.readonly to check after an interruption, gmail.labels to create labels)")
		}
		if e.Login != "" && (e.Status == http.StatusUnauthorized || e.scope()) {
			b.WriteString("; log in again with: " + e.Login)
		}
	case e.Is(ErrTemporary):
		b.WriteString("; nothing was deleted on the POP server, try again later")
	}
	return b.String()
}

func (e *GmailError) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed.
func (e *GmailError) Temporary() bool {
	switch {
	case isRedirect(e.Err):
		return false
	case e.Err != nil, e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return true
	case e.Status == http.StatusForbidden:
		switch e.Reason {
		case "rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED", "quotaExceeded":
			return true
		}
	}
	return false
}

func (e *GmailError) scope() bool {
	return e.Reason == "insufficientPermissions" || e.Reason == "ACCESS_TOKEN_SCOPE_INSUFFICIENT" ||
		e.Reason == "insufficient_scope"
}

// Is says what the error means (see GmailError): ErrTemporary, ErrAuth (401, or a 403 that is not a
// rate limit), or ErrRefused (anything else: a message Gmail will not take, a redirect).
func (e *GmailError) Is(target error) bool {
	switch {
	case e.Temporary():
		return target == ErrTemporary
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusForbidden:
		return target == ErrAuth
	}
	return target == ErrRefused
}

func isTemporaryGmail(err error) bool {
	var ge *GmailError
	return errors.As(err, &ge) && ge.Temporary()
}

// gmailErrorFrom reads Google's JSON error ({"error": {"code", "message", "errors": [{"reason"}],
// "status", "details": [{"reason"}]}}) and the WWW-Authenticate header.
func gmailErrorFrom(op, uid string, resp *http.Response, data []byte) *GmailError {
	ge := &GmailError{Op: op, UID: uid, Status: resp.StatusCode}
	if resp.StatusCode/100 == 3 {
		ge.Message = fmt.Sprintf("redirect refused (to %q; check api_url)", resp.Header.Get("Location"))
		return ge
	}
	var body struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
			Errors  []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
			Details []struct {
				Reason string `json:"reason"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil {
		ge.Message = body.Error.Message
		for _, d := range body.Error.Details {
			if d.Reason != "" {
				ge.Reason = d.Reason
			}
		}
		if len(body.Error.Errors) > 0 && body.Error.Errors[0].Reason != "" {
			ge.Reason = body.Error.Errors[0].Reason
		}
		if ge.Reason == "" {
			ge.Reason = body.Error.Status
		}
	} else {
		ge.Message = firstLineOf(string(data), 200)
	}
	if ge.Reason == "" && strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		ge.Reason = "insufficient_scope"
	}
	return ge
}

func firstLineOf(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sanitizeMarker keeps an account name safe in a header and in a state Ref (no spaces).
func sanitizeMarker(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// headerScan finds the Message-ID in a message's header section as it streams past, holding at most
// one (unfolded) header field, bounded.
type headerScan struct {
	done    bool
	n       int
	line    []byte // the current physical line
	field   []byte // the current logical field (folded lines joined)
	msgID   string
	found   bool
	invalid bool
}

var msgIDPattern = regexp.MustCompile(`^\s*(<[^<>\s"\\]+@[^<>\s"\\]+>)`)

func (h *headerScan) feed(b []byte) {
	for _, c := range b {
		if h.done {
			return
		}
		h.n++
		if h.n > gmailHeaderScanLimit {
			h.endField()
			h.done = true
			return
		}
		if c != '\n' {
			if len(h.line) < 8<<10 {
				h.line = append(h.line, c)
			}
			continue
		}
		line := bytes.TrimSuffix(h.line, []byte("\r"))
		h.line = h.line[:0]
		switch {
		case len(line) == 0:
			h.endField()
			h.done = true
		case line[0] == ' ' || line[0] == '\t':
			if len(h.field) < 8<<10 {
				h.field = append(h.field, line...)
			}
		default:
			h.endField()
			h.field = append(h.field[:0], line...)
		}
	}
}

func (h *headerScan) endField() {
	name, value, ok := bytes.Cut(h.field, []byte(":"))
	h.field = h.field[:0]
	if !ok || !strings.EqualFold(strings.TrimSpace(string(name)), "Message-ID") {
		return
	}
	if h.found || h.invalid {
		h.invalid = true // two Message-IDs: which one Gmail searches is unknown
		return
	}
	if m := msgIDPattern.FindSubmatch(value); m != nil {
		h.msgID, h.found = string(m[1]), true
	} else {
		h.invalid = true
	}
}

// messageID returns the message's Message-ID when it is one Gmail search can find: exactly one
// Message-ID field, of the form <left@right> without spaces, quotes or backslashes.
func (h *headerScan) messageID() (string, bool) {
	if !h.done {
		h.feed([]byte("\n\n")) // a message that is all header, perhaps without a final newline
	}
	return h.msgID, h.found && !h.invalid
}
