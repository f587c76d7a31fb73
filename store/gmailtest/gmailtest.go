// Package gmailtest is a fake Gmail API on loopback, httptest style, for popfetch's Gmail destination:
// users.messages.import (multipart media upload), users.messages.list with q=rfc822msgid:,
// users.messages.get with format=metadata, users.labels.list and users.labels.create. It checks each
// request as Google documents it (method, path, uploadType, query parameters, the multipart body, the
// bearer token) and fails the test on a malformed one; it can refuse requests (429, 5xx, 401, 403,
// 400) to test popfetch's retries and exit codes, and keeps every imported message byte for byte.
package gmailtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Scopes a token may have (Options.Scopes).
const (
	ScopeInsert   = "https://www.googleapis.com/auth/gmail.insert"
	ScopeReadonly = "https://www.googleapis.com/auth/gmail.readonly"
	ScopeLabels   = "https://www.googleapis.com/auth/gmail.labels"
)

// Message is one message in the fake mailbox.
type Message struct {
	ID       string
	Raw      []byte   // the message/rfc822 part, exactly as uploaded
	LabelIDs []string // from the JSON part
	Params   url.Values
}

// Header returns the first header field name of the message (unfolded), or "".
func (m Message) Header(name string) string {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(m.Raw)))
	h, _ := tp.ReadMIMEHeader()
	return h.Get(name)
}

// Label is a label of the fake mailbox.
type Label struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// Options configure a Server. The zero value accepts the token "test-access-token" with the scopes
// gmail.insert, gmail.readonly and gmail.labels.
type Options struct {
	// Token reports whether an access token is valid (else 401). nil: only "test-access-token".
	Token func(token string) bool
	// Scopes are the scopes every valid token has; nil means insert, readonly and labels.
	Scopes []string
}

// Server is a running fake Gmail API.
type Server struct {
	URL string // http://127.0.0.1:port, for api_url

	t    testing.TB
	srv  *httptest.Server
	opts Options

	mu       sync.Mutex
	messages []Message
	labels   []Label
	faults   []fault
	requests map[string]int // per operation
	seq      int
	expired  map[string]bool
	hook     func(op string)
	answered func(op string)
	imported func(n int)
}

type fault struct {
	op         string
	n          int // how many requests of op to refuse; -1 = all
	status     int
	reason     string
	retryAfter string
	apply      bool // for import: import the message, then answer with the fault
}

// NewServer starts a Server on 127.0.0.1 and closes it when the test ends.
func NewServer(t testing.TB, opts *Options) *Server {
	t.Helper()
	s := &Server{t: t, requests: map[string]int{}, expired: map[string]bool{},
		labels: []Label{{"INBOX", "INBOX", "system"}, {"UNREAD", "UNREAD", "system"}, {"SPAM", "SPAM", "system"},
			{"TRASH", "TRASH", "system"}, {"STARRED", "STARRED", "system"}}}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Token == nil {
		s.opts.Token = func(tok string) bool { return tok == "test-access-token" }
	}
	if s.opts.Scopes == nil {
		s.opts.Scopes = []string{ScopeInsert, ScopeReadonly, ScopeLabels}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /upload/gmail/v1/users/{user}/messages/import", s.importMessage)
	mux.HandleFunc("GET /gmail/v1/users/{user}/messages", s.list)
	mux.HandleFunc("GET /gmail/v1/users/{user}/messages/{id}", s.get)
	mux.HandleFunc("GET /gmail/v1/users/{user}/labels", s.listLabels)
	mux.HandleFunc("POST /gmail/v1/users/{user}/labels", s.createLabel)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("gmailtest: unexpected request %s %s", r.Method, r.URL)
		apiError(w, http.StatusNotFound, "notFound", "Not Found")
	})
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Start()
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Fail makes the next n requests of op ("import", "search", "get", "labels.list", "labels.create")
// fail with status and Google's reason; n < 0 fails all of them. retryAfter, if not "", is sent as
// Retry-After.
func (s *Server) Fail(op string, n, status int, reason, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{op: op, n: n, status: status, reason: reason, retryAfter: retryAfter})
}

// FailAfterImport makes the next n imports store the message and then answer status anyway (a
// gateway that timed out after the backend committed).
func (s *Server) FailAfterImport(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{op: "import", n: n, status: status, reason: "backendError", apply: true})
}

// Expire makes token invalid from now on (401), as if it had expired.
func (s *Server) Expire(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired[token] = true
}

// OnRequest calls f (outside the server's lock) at the start of every request, with its operation.
func (s *Server) OnRequest(f func(op string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = f
}

// OnAnswered calls f (outside the server's lock) after a search has been answered, with "search".
func (s *Server) OnAnswered(f func(op string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answered = f
}

// OnImported calls f (outside the server's lock) after the n-th import (counting from 1) is stored and
// before it is answered.
func (s *Server) OnImported(f func(n int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.imported = f
}

// Messages returns the mailbox's messages in import order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// Add puts a message into the mailbox as if it had arrived another way.
func (s *Server) Add(raw []byte, labels ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.messages = append(s.messages, Message{ID: fmt.Sprintf("%016x", s.seq), Raw: raw, LabelIDs: labels})
}

// Labels returns the mailbox's labels.
func (s *Server) Labels() []Label {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.labels)
}

// Requests returns how many requests of op the server answered (faults included).
func (s *Server) Requests(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[op]
}

func apiError(w http.ResponseWriter, status int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if status == http.StatusForbidden && reason == "insufficientPermissions" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="insufficient_scope"`)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg,
		"errors": []map[string]string{{"message": msg, "domain": "global", "reason": reason}},
		"status": http.StatusText(status)}})
}

// begin counts the request, checks the token and scope and applies a fault; it reports whether the
// handler should go on (and, for import, whether a fault applies after the import).
func (s *Server) begin(w http.ResponseWriter, r *http.Request, op string, scopes ...string) (ok bool, after *fault) {
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[op]++
	if u := r.PathValue("user"); u != "me" {
		s.t.Errorf("gmailtest: %s: user %q, want \"me\"", op, u)
	}
	tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || !s.opts.Token(tok) || s.expired[tok] {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		apiError(w, http.StatusUnauthorized, "authError", "Request had invalid authentication credentials.")
		return false, nil
	}
	if !slices.ContainsFunc(scopes, func(sc string) bool { return slices.Contains(s.opts.Scopes, sc) }) {
		apiError(w, http.StatusForbidden, "insufficientPermissions", "Request had insufficient authentication scopes.")
		return false, nil
	}
	for i := range s.faults {
		f := &s.faults[i]
		if f.op != op || f.n == 0 {
			continue
		}
		if f.n > 0 {
			f.n--
		}
		if f.apply {
			c := *f
			return true, &c
		}
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		apiError(w, f.status, f.reason, "injected by gmailtest")
		return false, nil
	}
	return true, nil
}

func (s *Server) importMessage(w http.ResponseWriter, r *http.Request) {
	ok, after := s.begin(w, r, "import", ScopeInsert)
	if !ok {
		io.Copy(io.Discard, r.Body)
		return
	}
	q := r.URL.Query()
	bad := func(format string, args ...any) {
		s.t.Errorf("gmailtest: import: "+format, args...)
		apiError(w, http.StatusBadRequest, "invalidArgument", fmt.Sprintf(format, args...))
	}
	if q.Get("uploadType") != "multipart" {
		bad("uploadType=%q, want multipart", q.Get("uploadType"))
		return
	}
	for _, k := range []string{"neverMarkSpam", "processForCalendar"} {
		if v := q.Get(k); v != "" {
			if _, err := strconv.ParseBool(v); err != nil {
				bad("%s=%q is not a boolean", k, v)
				return
			}
		}
	}
	if v := q.Get("internalDateSource"); v != "" && v != "dateHeader" && v != "receivedTime" {
		bad("internalDateSource=%q", v)
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/related" || params["boundary"] == "" {
		bad("Content-Type %q, want multipart/related with a boundary", r.Header.Get("Content-Type"))
		return
	}
	if r.ContentLength < 0 {
		bad("no Content-Length")
		return
	}
	// Read the whole request first: a client killed in the middle of its upload is no malformed
	// request (crash tests kill popfetch at any moment), and then nothing is imported.
	body, err := io.ReadAll(r.Body)
	if err != nil || int64(len(body)) != r.ContentLength {
		return
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	meta, err := mr.NextRawPart()
	if err != nil || meta.Header.Get("Content-Type") != "application/json; charset=UTF-8" {
		bad("first part: %v, Content-Type %q", err, meta.Header.Get("Content-Type"))
		return
	}
	var m struct {
		LabelIDs []string `json:"labelIds"`
	}
	dec := json.NewDecoder(meta)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		bad("metadata part: %v", err)
		return
	}
	media, err := mr.NextRawPart()
	if err != nil || media.Header.Get("Content-Type") != "message/rfc822" {
		bad("second part: %v, Content-Type %q", err, media.Header.Get("Content-Type"))
		return
	}
	raw, err := io.ReadAll(media)
	if err != nil {
		bad("reading the message: %v", err)
		return
	}
	if _, err := mr.NextRawPart(); err != io.EOF {
		bad("more than two parts (%v)", err)
		return
	}
	s.mu.Lock()
	for _, id := range m.LabelIDs {
		if !slices.ContainsFunc(s.labels, func(l Label) bool { return l.ID == id }) {
			s.mu.Unlock()
			apiError(w, http.StatusBadRequest, "invalidArgument", "Invalid label: "+id)
			return
		}
	}
	s.seq++
	msg := Message{ID: fmt.Sprintf("%016x", s.seq), Raw: raw, LabelIDs: m.LabelIDs, Params: q}
	s.messages = append(s.messages, msg)
	imported, n := s.imported, len(s.messages)
	s.mu.Unlock()
	if imported != nil {
		imported(n)
	}
	if after != nil {
		apiError(w, after.status, after.reason, "injected by gmailtest after the import")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(map[string]any{"id": msg.ID, "threadId": msg.ID, "labelIds": msg.LabelIDs})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if ok, _ := s.begin(w, r, "search", ScopeReadonly); !ok {
		return
	}
	q := r.URL.Query()
	id, found := strings.CutPrefix(q.Get("q"), "rfc822msgid:")
	if !found || strings.ContainsAny(id, " \t") {
		s.t.Errorf("gmailtest: search: q=%q, want rfc822msgid:<id>", q.Get("q"))
	}
	if q.Get("includeSpamTrash") != "true" {
		s.t.Errorf("gmailtest: search without includeSpamTrash=true")
	}
	s.mu.Lock()
	var hits []map[string]string
	for _, m := range s.messages {
		// Gmail matches the Message-ID with or without its angle brackets.
		if mid := m.Header("Message-Id"); mid != "" && strings.Trim(mid, "<>") == strings.Trim(id, "<>") {
			hits = append(hits, map[string]string{"id": m.ID, "threadId": m.ID})
		}
	}
	answered := s.answered
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	res := map[string]any{"resultSizeEstimate": len(hits)}
	if len(hits) > 0 {
		res["messages"] = hits
	}
	json.NewEncoder(w).Encode(res)
	if answered != nil {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		answered("search")
	}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	if ok, _ := s.begin(w, r, "get", ScopeReadonly); !ok {
		return
	}
	q := r.URL.Query()
	if q.Get("format") != "metadata" {
		s.t.Errorf("gmailtest: get: format=%q, want metadata", q.Get("format"))
	}
	s.mu.Lock()
	i := slices.IndexFunc(s.messages, func(m Message) bool { return m.ID == r.PathValue("id") })
	var m Message
	if i >= 0 {
		m = s.messages[i]
	}
	s.mu.Unlock()
	if i < 0 {
		apiError(w, http.StatusNotFound, "notFound", "Requested entity was not found.")
		return
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(m.Raw)))
	h, _ := tp.ReadMIMEHeader()
	var headers []map[string]string
	for _, name := range q["metadataHeaders"] {
		for _, v := range h.Values(name) {
			headers = append(headers, map[string]string{"name": name, "value": v})
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(map[string]any{"id": m.ID, "threadId": m.ID, "labelIds": m.LabelIDs,
		"payload": map[string]any{"headers": headers}})
}

func (s *Server) listLabels(w http.ResponseWriter, r *http.Request) {
	if ok, _ := s.begin(w, r, "labels.list", ScopeReadonly, ScopeLabels); !ok {
		return
	}
	s.mu.Lock()
	labels := slices.Clone(s.labels)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(map[string]any{"labels": labels})
}

func (s *Server) createLabel(w http.ResponseWriter, r *http.Request) {
	if ok, _ := s.begin(w, r, "labels.create", ScopeLabels); !ok {
		return
	}
	var l struct {
		Name                  string `json:"name"`
		LabelListVisibility   string `json:"labelListVisibility"`
		MessageListVisibility string `json:"messageListVisibility"`
	}
	if err := json.NewDecoder(r.Body).Decode(&l); err != nil || l.Name == "" {
		s.t.Errorf("gmailtest: labels.create: %v (name %q)", err, l.Name)
		apiError(w, http.StatusBadRequest, "invalidArgument", "bad label")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.ContainsFunc(s.labels, func(x Label) bool { return strings.EqualFold(x.Name, l.Name) }) {
		apiError(w, http.StatusConflict, "duplicate", "Label name exists or conflicts")
		return
	}
	s.seq++
	nl := Label{ID: fmt.Sprintf("Label_%d", s.seq), Name: l.Name, Type: "user"}
	s.labels = append(s.labels, nl)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(nl)
}
