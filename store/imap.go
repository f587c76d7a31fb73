package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/popfetch/popfetch/internal/capool"
	"github.com/popfetch/popfetch/internal/certfp"
)

// IMAP TLS modes (IMAPOptions.TLS).
const (
	IMAPImplicitTLS = "implicit" // TLS from the first octet (port 993, RFC 8314)
	IMAPStartTLS    = "starttls" // STARTTLS (RFC 9051 §6.2.1); refused when not offered
	IMAPNoTLS       = "none"     // plaintext; needs AllowPlaintext to send a password
)

// Internal dates of appended messages (IMAPOptions.InternalDate).
const (
	IMAPDateReceived = "received" // when popfetch retrieved the message
	IMAPDateHeader   = "header"   // the message's Date: header; the received time when it has none
)

// IMAPOptions configure an IMAP destination.
type IMAPOptions struct {
	Addr        string // host:port
	TLS         string // IMAPImplicitTLS (default), IMAPStartTLS or IMAPNoTLS
	CAFile      string // extra trust anchors (PEM)
	Fingerprint string // "sha256:" + 64 hex digits: pin the server certificate instead of verifying it
	User        string
	// Secret yields the password, or with Mechanism xoauth2/oauthbearer the access token. It is called
	// once per connection, after the greeting.
	Secret         func(ctx context.Context) (string, error)
	Mechanism      string // "" (LOGIN, or AUTHENTICATE PLAIN under LOGINDISABLED), "xoauth2" or "oauthbearer"
	AllowPlaintext bool   // may send the secret without TLS

	Mailbox      string   // default INBOX
	Create       bool     // create Mailbox when the server answers [TRYCREATE], then append again
	Flags        []string // flags of appended messages, e.g. `\Seen`
	InternalDate string   // IMAPDateReceived (default) or IMAPDateHeader

	Account        string        // the account name, first part of the X-Popfetch-ID marker
	SpoolDir       string        // where messages wait for Commit (the state directory)
	ReceivedHeader bool          // add a Received: trace header (after the marker)
	Timeout        time.Duration // dial, TLS handshake and login; default 60s
	// TLSConfig is a base TLS configuration (tests); CAFile and Fingerprint apply on top.
	TLSConfig *tls.Config

	noMulti bool // tests: behave as with a server without MULTIAPPEND
}

// IMAPError is a failure of an IMAP destination. Kind says what it means (errors.Is matches it):
// ErrRefused when the mailbox refuses a message (NO, BAD, [OVERQUOTA], [TRYCREATE] without create),
// ErrTemporary for temporary failures (the network, a dropped connection, [UNAVAILABLE], [INUSE]),
// ErrAuth when the login is refused, ErrTLS when TLS or the certificate fails, ErrConfig when the
// profile's TLS settings cannot be used (an unreadable ca_file). Nothing on the POP3 side is deleted
// after one.
type IMAPError struct {
	Op   string // "connect", "TLS", "login", "APPEND", "CREATE", "SEARCH", "SELECT"
	Addr string
	Err  error
	Kind error
}

func (e *IMAPError) Error() string {
	return fmt.Sprintf("imap %s: %s: %v", e.Addr, e.Op, oneLine(e.Err.Error()))
}

func (e *IMAPError) Unwrap() error { return e.Err }

// Is makes the error match its Kind.
func (e *IMAPError) Is(target error) bool { return target == e.Kind }

// ErrIMAPFingerprint is returned (inside an *IMAPError, exit 69) when the server's certificate does
// not match tls_fingerprint.
var ErrIMAPFingerprint = errors.New("the server's certificate does not match tls_fingerprint")

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}

// imapErr classifies err from operation op.
func (d *IMAP) imapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var ie *IMAPError
	if errors.As(err, &ie) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	kind := ErrTemporary
	var (
		se  *imap.Error
		cve *tls.CertificateVerificationError
		ue  x509.UnknownAuthorityError
		he  x509.HostnameError
		ae  tls.AlertError
		rhe tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &se):
		switch se.Code {
		case imap.ResponseCodeUnavailable, imap.ResponseCodeInUse, imap.ResponseCodeServerBug, imap.ResponseCodeLimit:
			kind = ErrTemporary
		default:
			if op == "login" {
				kind = ErrAuth
			} else {
				kind = ErrRefused
			}
		}
	case errors.Is(err, ErrIMAPFingerprint), errors.As(err, &cve), errors.As(err, &ue), errors.As(err, &he),
		errors.As(err, &ae), errors.As(err, &rhe):
		kind = ErrTLS
	case op == "TLS" && !isTimeout(err) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
		kind = ErrTLS
	case op == "login" && errors.Is(err, errIMAPPlaintext):
		kind = ErrAuth
	}
	return &IMAPError{Op: op, Addr: d.o.Addr, Err: err, Kind: kind}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

var errIMAPPlaintext = errors.New("refusing to send the password without TLS (set allow_plaintext_auth: true, or use tls: implicit or starttls)")

// IMAP appends messages to a mailbox on an IMAP server (RFC 9051 §6.3.12 APPEND), exactly once
// across crashes: Deliver spools each message (bare LF made CRLF, the X-Popfetch-ID marker header
// added; see MarkerHeader) to a private file; Commit records the batch as pending through the
// journal, then sends one APPEND per message, pipelined with non-synchronizing literals when the
// server offers LITERAL+ (RFC 7888), and returns nil only when every APPEND was answered OK.
// Resolve (after a crash) searches the mailbox for the markers of pending messages.
//
// One connection is kept from the first Commit to Close, and opened again when the server closed it
// in between. IMAP is not safe for concurrent use.
type IMAP struct {
	o     IMAPOptions
	spool *spool
	batch []imapItem

	mu       sync.Mutex
	c        *imapclient.Client
	lastUsed time.Time
	created  bool // Mailbox was created by this destination

	// stream is the batch's MULTIAPPEND command while Deliver sends it message by message, so that
	// the server stores the batch while the next messages are still being retrieved. Nothing of it
	// becomes visible until Commit ends the command (after the journal). streamed counts the
	// messages sent in it; noStream is set once streaming failed or cannot be used in this batch.
	stream   *imapclient.MultiAppendCommand
	streamC  *imapclient.Client
	streamed int
	noStream bool
}

type imapItem struct {
	p         Pending
	off, size int64
	date      time.Time
}

var _ Resolver = (*IMAP)(nil)

// NewIMAP returns an IMAP destination. It does not connect: the first Commit or Resolve does.
func NewIMAP(o IMAPOptions) (*IMAP, error) {
	if o.Mailbox == "" {
		o.Mailbox = "INBOX"
	}
	if o.TLS == "" {
		o.TLS = IMAPImplicitTLS
	}
	if o.InternalDate == "" {
		o.InternalDate = IMAPDateReceived
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.SpoolDir == "" {
		o.SpoolDir = os.TempDir()
	}
	if err := os.MkdirAll(o.SpoolDir, 0o700); err != nil {
		return nil, ioErr("mkdir", o.SpoolDir, err)
	}
	return &IMAP{o: o}, nil
}

// Deliver spools one message. It does not touch the server.
func (d *IMAP) Deliver(ctx context.Context, env Envelope, body io.Reader) (Pending, error) {
	if err := ctx.Err(); err != nil {
		return Pending{}, err
	}
	if d.spool == nil {
		sp, err := newSpool(d.o.SpoolDir)
		if err != nil {
			return Pending{}, err
		}
		d.spool = sp
	}
	marker, err := newMarker(d.o.Account, env.UID)
	if err != nil {
		return Pending{}, err
	}
	headers := MarkerHeader + ": " + marker + "\n"
	if d.o.ReceivedHeader {
		headers += ReceivedHeader(env)
	}
	var sniff *dateSniffer
	if d.o.InternalDate == IMAPDateHeader {
		sniff = &dateSniffer{}
	}
	off, size, err := d.spool.add(headers, body, sniff)
	if err != nil {
		return Pending{}, err
	}
	date := env.Received
	if date.IsZero() {
		date = time.Now()
	}
	if sniff != nil {
		if t, ok := sniff.Date(); ok {
			date = t
		}
	}
	p := Pending{UID: env.UID, Ref: marker}
	it := imapItem{p: p, off: off, size: size, date: date}
	d.batch = append(d.batch, it)
	d.streamOne(ctx, it)
	return p, nil
}

// streamOne sends a spooled message in the batch's MULTIAPPEND command, opening it (and the
// connection) with the batch's first message. It is only an optimisation: any failure turns it off
// for the batch, and Commit then appends the batch from the spool on a fresh connection (and reports
// the failure if that fails too). It needs MULTIAPPEND (RFC 3502) and LITERAL+ (RFC 7888), so that
// no message waits for the server.
func (d *IMAP) streamOne(ctx context.Context, it imapItem) {
	if d.noStream {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stream == nil {
		if len(d.batch) != 1 {
			d.noStream = true
			return
		}
		c, err := d.client(ctx)
		if err != nil {
			d.noStream = true
			return
		}
		if caps := c.Caps(); d.o.noMulti || !caps.Has(imap.CapMultiAppend) || !caps.Has(imap.CapLiteralPlus) {
			d.noStream = true
			return
		}
		d.stream, d.streamC, d.streamed = c.MultiAppend(d.o.Mailbox), c, 0
	}
	w := d.stream.Message(it.size, &imap.AppendOptions{Flags: d.flags(), Time: it.date})
	werr := d.spool.copyTo(w, it.off, it.size)
	if cerr := w.Close(); werr != nil || cerr != nil {
		d.breakStream()
		return
	}
	d.streamed++
}

// breakStream abandons the batch's MULTIAPPEND command: the connection is closed in the middle of
// it, so the server appends none of its messages. d.mu is held.
func (d *IMAP) breakStream() {
	if d.stream != nil {
		d.streamC.Close()
		d.stream.Close() // releases go-imap's command lock; the write fails
		d.stream.Wait()
		if d.c == d.streamC {
			d.c = nil
		}
	}
	d.stream, d.streamC, d.streamed, d.noStream = nil, nil, 0, true
}

// finishStream ends the batch's MULTIAPPEND command when every message of the batch is in it: the
// batch becomes visible with the server's OK. sent is false when there was nothing to finish (or
// the command was abandoned before its end, so nothing of it is visible). d.mu is held.
func (d *IMAP) finishStream(ctx context.Context) (sent bool, err error) {
	if d.stream == nil {
		return false, nil
	}
	select {
	case <-d.streamC.Closed():
		d.breakStream()
		return false, nil
	default:
	}
	if d.streamed != len(d.batch) {
		d.breakStream()
		return false, nil
	}
	stop := context.AfterFunc(ctx, func() { d.streamC.Close() })
	defer stop()
	d.stream.Close() // the final CRLF
	err = d.stream.Wait()
	d.stream, d.streamC, d.streamed = nil, nil, 0
	return true, err
}

func (d *IMAP) flags() []imap.Flag {
	flags := make([]imap.Flag, len(d.o.Flags))
	for i, f := range d.o.Flags {
		flags[i] = imap.Flag(f)
	}
	return flags
}

// Commit records the batch as pending (journal), then appends it. It returns nil only when the
// server answered OK to the APPEND of every message. After an error, messages of the batch may or
// may not be in the mailbox: they are pending in the state, and the next run's Resolve tells.
func (d *IMAP) Commit(ctx context.Context, journal func([]Pending) error) error {
	if len(d.batch) == 0 {
		return nil
	}
	if journal != nil {
		ps := make([]Pending, len(d.batch))
		at := "@" + strconv.FormatInt(time.Now().Unix(), 10)
		for i, it := range d.batch {
			ps[i] = Pending{UID: it.p.UID, Ref: it.p.Ref + at}
		}
		if err := journal(ps); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	sent, err := d.finishStream(ctx)
	var se *imap.Error
	switch {
	case sent && err == nil:
		return d.committed()
	case sent && ctx.Err() != nil:
		d.dropLocked()
		return ctx.Err()
	case sent && !(d.o.Create && errors.As(err, &se) && se.Code == imap.ResponseCodeTryCreate):
		// The end of the command may have reached the server: the batch may be visible. It stays
		// pending, and the next run's Resolve settles it.
		return d.appendErr(ctx, err)
	}
	todo := d.batch
	for attempt := 0; ; attempt++ {
		c, cerr := d.client(ctx)
		if cerr != nil {
			return cerr
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		var failed []imapItem
		if attempt > 0 || err == nil {
			failed, err = d.appendAll(c, todo)
			stop()
			if err == nil {
				break
			}
		} else {
			stop()
			failed = todo // the streamed batch was refused with [TRYCREATE]
		}
		if attempt == 0 && d.o.Create && errors.As(err, &se) && se.Code == imap.ResponseCodeTryCreate {
			if c, cerr = d.client(ctx); cerr != nil { // appendAll may have dropped it
				return cerr
			}
			stop := context.AfterFunc(ctx, func() { c.Close() })
			cerr := c.Create(d.o.Mailbox, nil).Wait()
			stop()
			if cerr != nil {
				var ce *imap.Error
				if !errors.As(cerr, &ce) || ce.Code != imap.ResponseCodeAlreadyExists {
					return d.fail(ctx, "CREATE", fmt.Errorf("creating mailbox %q: %w", d.o.Mailbox, cerr))
				}
			}
			d.created = true
			todo = failed
			continue
		}
		return d.appendErr(ctx, err)
	}
	return d.committed()
}

// committed forgets the batch the server accepted. d.mu is held.
func (d *IMAP) committed() error {
	d.lastUsed = time.Now()
	d.batch = nil
	d.noStream = false
	return d.spool.reset()
}

// appendErr classifies a failed APPEND. d.mu is held.
func (d *IMAP) appendErr(ctx context.Context, err error) error {
	d.noStream = false
	var se *imap.Error
	if errors.As(err, &se) && se.Code == imap.ResponseCodeTryCreate {
		err = fmt.Errorf("mailbox %q does not exist (set create: true to create it): %w", d.o.Mailbox, err)
	} else {
		err = fmt.Errorf("appending to %q: %w", d.o.Mailbox, err)
	}
	return d.fail(ctx, "APPEND", err)
}

// fail classifies err; a connection that broke is dropped.
func (d *IMAP) fail(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		d.dropLocked()
		return ctx.Err()
	}
	var se *imap.Error
	if !errors.As(err, &se) {
		d.dropLocked()
	}
	return d.imapErr(op, err)
}

// appendAll sends one APPEND per item, all before reading any answer (RFC 9051 §5.5 allows several
// commands in progress), and then waits for every tagged response. It returns the items that were
// not appended (all that did not get OK) and the first failure.
//
// After a synchronising literal the server refused (NO instead of a continuation request, as for
// [TRYCREATE] on a server without LITERAL+), go-imap closes the connection; d.c is then dropped so
// that the caller's next command dials again.
func (d *IMAP) appendAll(c *imapclient.Client, items []imapItem) (failed []imapItem, first error) {
	flags := d.flags()
	if len(items) > 1 && !d.o.noMulti && c.Caps().Has(imap.CapMultiAppend) {
		if err := d.multiAppend(c, items, flags); err != nil {
			return items, err
		}
		return nil, nil
	}
	cmds := make([]*imapclient.AppendCommand, 0, len(items))
	broken := false
	defer func() {
		if broken {
			d.dropLocked()
		}
	}()
	for _, it := range items {
		cmd := c.Append(d.o.Mailbox, it.size, &imap.AppendOptions{Flags: flags, Time: it.date})
		werr := d.spool.copyTo(cmd, it.off, it.size)
		cerr := cmd.Close()
		cmds = append(cmds, cmd)
		if werr != nil || cerr != nil {
			broken = true
			break // the connection is broken or the server refused the literal: wait for answers
		}
	}
	for i, it := range items {
		if i >= len(cmds) {
			failed = append(failed, it)
			continue
		}
		if _, err := cmds[i].Wait(); err != nil {
			failed = append(failed, it)
			if first == nil {
				first = err
			}
		}
	}
	if first == nil && len(failed) > 0 {
		first = errors.New("connection closed while appending")
	}
	return failed, first
}

// multiAppend appends items with one APPEND command (RFC 3502 MULTIAPPEND): the server appends all
// of them or none, and one transaction costs a server such as Dovecot one lock and one fsync instead
// of one per message.
func (d *IMAP) multiAppend(c *imapclient.Client, items []imapItem, flags []imap.Flag) error {
	cmd := c.MultiAppend(d.o.Mailbox)
	for _, it := range items {
		w := cmd.Message(it.size, &imap.AppendOptions{Flags: flags, Time: it.date})
		werr := d.spool.copyTo(w, it.off, it.size)
		if cerr := w.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			// The command is cut short on the wire: the connection cannot be used any more.
			c.Close()
			cmd.Close() // releases the client's command lock; the write fails
			if err := cmd.Wait(); err != nil {
				var se *imap.Error
				if errors.As(err, &se) {
					return err // the server refused (a synchronising literal it did not want)
				}
			}
			return werr
		}
	}
	cmd.Close()
	return cmd.Wait()
}

// Abort forgets the messages spooled since the last Commit (and abandons their MULTIAPPEND command:
// the server appends none of them).
func (d *IMAP) Abort() error {
	d.mu.Lock()
	d.breakStream()
	d.noStream = false
	d.mu.Unlock()
	d.batch = nil
	if d.spool != nil {
		return d.spool.reset()
	}
	return nil
}

// Close logs out and removes the spool.
func (d *IMAP) Close() error {
	d.Abort()
	if d.spool != nil {
		d.spool.close()
		d.spool = nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c != nil {
		done := make(chan struct{})
		c := d.c
		go func() {
			c.Logout().Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(d.o.Timeout):
		}
		c.Close()
		d.c = nil
	}
	return nil
}

// Resolve reports which pending deliveries are in the mailbox. A Ref is the message's marker and
// the time its batch was journaled ("work/0123…@1765100000"). Each marker is searched for with
// `UID SEARCH HEADER X-Popfetch-ID <marker>` (RFC 9051 §6.4.4) after EXAMINE (read-only: nothing
// changes in the mailbox). A mailbox that does not exist holds none of them.
//
// A batch whose connection died right after its last octet may still be being stored by the server
// (for a crashed run, nobody waits for its answer): a marker not found in a batch journaled less than
// the timeout ago is searched for again once that time has passed, so that a late commit is seen
// rather than duplicated. That wait happens only when a run restarts within the timeout of a crash.
func (d *IMAP) Resolve(refs []string) (map[string]bool, error) {
	markers := make([]string, len(refs))
	journaled := map[string]time.Time{}
	for i, ref := range refs {
		markers[i] = ref
		if m, at, ok := strings.Cut(ref, "@"); ok {
			markers[i] = m
			if sec, err := strconv.ParseInt(at, 10, 64); err == nil {
				journaled[m] = time.Unix(sec, 0)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*d.o.Timeout+time.Duration(len(refs))*time.Second)
	defer cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	found, err := d.search(ctx, markers)
	if err != nil {
		return nil, err
	}
	var missing []string
	var grace time.Time // the end of the newest missing batch's grace time
	for _, m := range markers {
		if !found[m] {
			missing = append(missing, m)
			if g := journaled[m].Add(d.o.Timeout + 2*time.Second); g.After(grace) { // whole seconds
				grace = g
			}
		}
	}
	if len(missing) > 0 && time.Now().Before(grace) {
		t := time.NewTimer(time.Until(grace))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		again, err := d.search(ctx, missing)
		if err != nil {
			return nil, err
		}
		for m := range again {
			found[m] = true
		}
	}
	visible := map[string]bool{}
	for i, ref := range refs {
		if found[markers[i]] {
			visible[ref] = true
		}
	}
	d.lastUsed = time.Now()
	return visible, nil
}

// search returns which markers are in the mailbox. d.mu is held.
func (d *IMAP) search(ctx context.Context, markers []string) (map[string]bool, error) {
	c, err := d.client(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	found := map[string]bool{}
	if _, err := c.Select(d.o.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		var se *imap.Error
		if errors.As(err, &se) && se.Type == imap.StatusResponseTypeNo &&
			(se.Code == imap.ResponseCodeNonExistent || se.Code == imap.ResponseCodeTryCreate || se.Code == "") {
			return found, nil // no mailbox, no message in it
		}
		return nil, d.fail(ctx, "EXAMINE", err)
	}
	// Untagged SEARCH answers cannot be told apart, so searches are not pipelined: one search per
	// chunk of markers (ORed), then the markers of the messages found are fetched.
	for start := 0; start < len(markers); start += resolveChunk {
		chunk := markers[start:min(start+resolveChunk, len(markers))]
		var crit *imap.SearchCriteria
		for _, ref := range chunk {
			one := imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: MarkerHeader, Value: ref}}}
			if crit == nil {
				crit = &one
			} else {
				crit = &imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{*crit, one}}}
			}
		}
		data, err := c.UIDSearch(crit, nil).Wait()
		if err != nil {
			return nil, d.fail(ctx, "SEARCH", err)
		}
		uids := data.AllUIDs()
		if len(uids) == 0 {
			continue
		}
		want := map[string]bool{}
		for _, ref := range chunk {
			want[ref] = true
		}
		section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{MarkerHeader}, Peek: true}
		msgs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			return nil, d.fail(ctx, "FETCH", err)
		}
		for _, m := range msgs {
			for _, bs := range m.BodySection {
				for _, line := range strings.Split(string(bs.Bytes), "\n") {
					name, value, ok := strings.Cut(line, ":")
					if ok && strings.EqualFold(strings.TrimSpace(name), MarkerHeader) {
						if v := strings.TrimSpace(value); want[v] {
							found[v] = true
						}
					}
				}
			}
		}
	}
	if err := c.Unselect().Wait(); err != nil {
		d.dropLocked() // a server without UNSELECT: start afresh for the APPENDs
	}
	return found, nil
}

// resolveChunk is how many markers one SEARCH asks for.
const resolveChunk = 32

// idleLimit is how long a connection may sit unused before Commit opens a new one instead: go-imap
// closes a connection that stays silent for 30 s while it waits for the server.
const idleLimit = 20 * time.Second

// client returns the connection, opening it (again) when needed. d.mu is held.
func (d *IMAP) client(ctx context.Context) (*imapclient.Client, error) {
	if d.c != nil {
		select {
		case <-d.c.Closed():
			d.c = nil
		default:
			if time.Since(d.lastUsed) > idleLimit {
				d.dropLocked()
			}
		}
	}
	if d.c != nil {
		return d.c, nil
	}
	c, err := d.dial(ctx)
	if err != nil {
		return nil, err
	}
	d.c, d.lastUsed = c, time.Now()
	return c, nil
}

func (d *IMAP) dropLocked() {
	if d.c != nil {
		d.c.Close()
		d.c = nil
	}
}

// tlsConfig builds the TLS configuration: the system roots plus CAFile, or the pinned fingerprint.
func (d *IMAP) tlsConfig() (*tls.Config, error) {
	host, _, err := net.SplitHostPort(d.o.Addr)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{}
	if d.o.TLSConfig != nil {
		cfg = d.o.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if d.o.CAFile != "" {
		pool, err := capool.SystemPlus(d.o.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if d.o.Fingerprint != "" {
		want, _, err := certfp.Parse(d.o.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("tls_fingerprint %q is not sha256: and 64 hex digits", d.o.Fingerprint)
		}
		cfg.InsecureSkipVerify = true // replaced by the pin
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrIMAPFingerprint
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				return fmt.Errorf("%w (the server's is sha256:%x)", ErrIMAPFingerprint, got)
			}
			return nil
		}
	}
	return cfg, nil
}

// dial connects, secures and logs in.
func (d *IMAP) dial(ctx context.Context) (*imapclient.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	cfg, err := d.tlsConfig()
	if err != nil {
		return nil, &IMAPError{Op: "TLS", Addr: d.o.Addr, Err: err, Kind: ErrConfig}
	}
	var nd net.Dialer
	tcp, err := nd.DialContext(ctx, "tcp", d.o.Addr)
	if err != nil {
		return nil, d.imapErr("connect", err)
	}
	raw := newProgressConn(tcp, d.o.Timeout)
	// Everything below runs under the timeout: a silent server cannot hold the run.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	opts := &imapclient.Options{TLSConfig: cfg}
	var c *imapclient.Client
	switch d.o.TLS {
	case IMAPImplicitTLS:
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			if ctx.Err() != nil {
				return nil, d.imapErr("connect", fmt.Errorf("TLS handshake: %w", context.DeadlineExceeded))
			}
			return nil, d.imapErr("TLS", err)
		}
		c = imapclient.New(tc, opts)
	case IMAPStartTLS:
		if c, err = imapclient.NewStartTLS(raw, opts); err != nil {
			raw.Close()
			var se *imap.Error
			switch {
			case ctx.Err() != nil:
				return nil, d.imapErr("connect", fmt.Errorf("STARTTLS: %w", context.DeadlineExceeded))
			case errors.As(err, &se):
				return nil, &IMAPError{Op: "STARTTLS", Addr: d.o.Addr, Kind: ErrTLS,
					Err: fmt.Errorf("the server refused STARTTLS (tls: starttls needs it): %w", err)}
			}
			return nil, d.imapErr("TLS", err)
		}
	default:
		c = imapclient.New(raw, opts)
	}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, d.imapErr("connect", err)
	}
	if err := d.login(ctx, c); err != nil {
		c.Close()
		if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
			return nil, d.imapErr("login", fmt.Errorf("%w: %v", context.DeadlineExceeded, err))
		}
		return nil, err
	}
	return c, nil
}

func (d *IMAP) login(ctx context.Context, c *imapclient.Client) error {
	if d.o.TLS == IMAPNoTLS && !d.o.AllowPlaintext {
		return d.imapErr("login", errIMAPPlaintext)
	}
	secret := ""
	if d.o.Secret != nil {
		s, err := d.o.Secret(ctx)
		if err != nil {
			return err // the secret's own error (keyring, command, OAuth2) knows its exit code
		}
		secret = s
	}
	var err error
	switch d.o.Mechanism {
	case "xoauth2":
		err = c.Authenticate(&xoauth2Client{user: d.o.User, token: secret})
	case "oauthbearer":
		err = c.Authenticate(sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: d.o.User, Token: secret}))
	default:
		if c.Caps().Has(imap.CapLoginDisabled) {
			err = c.Authenticate(sasl.NewPlainClient("", d.o.User, secret))
		} else {
			err = c.Login(d.o.User, secret).Wait()
		}
	}
	if err != nil {
		return d.imapErr("login", fmt.Errorf("as %q: %w", d.o.User, err))
	}
	return nil
}

// progressConn replaces go-imap's deadlines (30 s for each answer; 5 minutes per literal, whatever
// its size) by one rule: the connection fails when nothing has moved for the profile's timeout —
// octets written, octets read, or (Linux) the socket's send queue draining. A server that stops
// reading or answering fails the run after timeout, and a large batch on a slow link is not cut off
// while it moves. It also bounds how long a server may take to answer the end of a batch, which
// Resolve's grace time relies on.
type progressConn struct {
	net.Conn
	timeout time.Duration
	last    atomic.Int64 // UnixNano of the last octet moved either way
	queued  int          // the send queue when Read last looked (Read's goroutine only)
}

func newProgressConn(c net.Conn, timeout time.Duration) *progressConn {
	p := &progressConn{Conn: c, timeout: timeout}
	p.last.Store(time.Now().UnixNano())
	return p
}

func (c *progressConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *progressConn) Read(b []byte) (int, error) {
	for {
		last := c.last.Load()
		c.Conn.SetReadDeadline(time.Unix(0, last).Add(c.timeout))
		n, err := c.Conn.Read(b)
		if n > 0 {
			c.last.Store(time.Now().UnixNano())
		}
		if n == 0 && err != nil && isTimeout(err) {
			if c.last.Load() != last {
				continue // the other direction moved meanwhile: wait on
			}
			// What was written may still be on its way (a slow link): as long as the peer
			// acknowledges more of it, the connection moves.
			if q := unsent(c.Conn); q > 0 && q != c.queued {
				c.queued = q
				c.last.Store(time.Now().UnixNano())
				continue
			}
		}
		return n, err
	}
}

func (c *progressConn) SetDeadline(time.Time) error      { return nil }
func (c *progressConn) SetReadDeadline(time.Time) error  { return nil }
func (c *progressConn) SetWriteDeadline(time.Time) error { return nil }

// xoauth2Client is the client side of Google's and Microsoft's XOAUTH2 SASL mechanism
// (https://developers.google.com/gmail/imap/xoauth2-protocol); go-sasl has none.
type xoauth2Client struct{ user, token string }

func (x *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next answers an error challenge (a JSON status) with an empty response, as the protocol asks; the
// server then fails the command.
func (x *xoauth2Client) Next([]byte) ([]byte, error) { return []byte{}, nil }
