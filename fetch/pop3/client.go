package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/popfetch/popfetch/internal/termsafe"
)

// TLSMode is how the connection is protected.
type TLSMode int

const (
	// TLSImplicit starts TLS on connect (RFC 8314; port 995). The default.
	TLSImplicit TLSMode = iota
	// TLSStartTLS connects in clear and upgrades with STLS (RFC 2595; port 110). If the server does
	// not offer STLS, Dial fails with ErrSTLSUnavailable.
	TLSStartTLS
	// TLSNone uses no TLS at all.
	TLSNone
)

func (m TLSMode) String() string {
	switch m {
	case TLSImplicit:
		return "implicit"
	case TLSStartTLS:
		return "starttls"
	case TLSNone:
		return "none"
	}
	return "TLSMode(" + strconv.Itoa(int(m)) + ")"
}

// DefaultPort returns the port for the mode: 995 for implicit TLS, 110 otherwise.
func (m TLSMode) DefaultPort() int {
	if m == TLSImplicit {
		return 995
	}
	return 110
}

// Options configure a Client. The zero value (or nil) means the defaults.
type Options struct {
	// TLSConfig is the base TLS configuration; it is cloned, never modified.
	TLSConfig *tls.Config
	// RootCAs, when set, replaces the system's trust anchors; CAFile (PEM) adds trust anchors to
	// RootCAs or, without it, to the system's.
	RootCAs *x509.CertPool
	CAFile  string
	// Fingerprint pins the server's certificate by the SHA-256 of its DER encoding, written as hex
	// with or without colons, optionally prefixed "sha256:". A pinned certificate is trusted whatever
	// its issuer or names (as mpop's --tls-fingerprint); any other certificate is refused.
	Fingerprint string
	// ClientCert is presented when the server asks for one.
	ClientCert *tls.Certificate
	// MinTLSVersion is the lowest TLS version accepted; default TLS 1.2.
	MinTLSVersion uint16
	// Timeout bounds the wait for each reply and each read; default 60s.
	Timeout time.Duration
	// MinRate is the average rate in bytes/s that a reply must keep up once Timeout has passed since
	// it began; default 1024. A negative value disables the check.
	MinRate int64
	// Trace, when set, receives the protocol dialogue, one line per command or reply, with the
	// arguments of PASS, APOP and AUTH replaced by "<redacted>" and bodies summarised.
	Trace io.Writer
	// PipelineWindow bounds the commands in flight when pipelining; default 1000. Commands are a few
	// octets each; the replies wait in the server's socket buffers until they are read.
	PipelineWindow int
	// Dialer dials TCP connections for Dial; default a net.Dialer.
	Dialer *net.Dialer
}

const (
	defaultTimeout = 60 * time.Second
	defaultMinRate = 1024
	defaultWindow  = 1000
	bufferSize     = 64 << 10
)

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Timeout <= 0 {
		r.Timeout = defaultTimeout
	}
	if r.MinRate == 0 {
		r.MinRate = defaultMinRate
	}
	if r.PipelineWindow <= 0 {
		r.PipelineWindow = defaultWindow
	}
	if r.MinTLSVersion == 0 {
		r.MinTLSVersion = tls.VersionTLS12
	}
	return r
}

// tlsConfig builds the client TLS configuration for serverName.
func (o *Options) tlsConfig(serverName string) (*tls.Config, error) {
	var cfg *tls.Config
	if o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = serverName
	}
	if cfg.MinVersion < o.MinTLSVersion {
		cfg.MinVersion = o.MinTLSVersion
	}
	if o.ClientCert != nil {
		cfg.Certificates = append(cfg.Certificates, *o.ClientCert)
	}
	if o.RootCAs != nil || o.CAFile != "" {
		var pool *x509.CertPool
		// With CAFile alone, the system's roots are consulted only when CAFile's fail to verify.
		lazy := o.RootCAs == nil && o.Fingerprint == "" && !cfg.InsecureSkipVerify && cfg.VerifyConnection == nil
		if o.RootCAs != nil {
			pool = o.RootCAs.Clone()
		} else if lazy {
			pool = x509.NewCertPool()
		} else if sys, err := x509.SystemCertPool(); err == nil && sys != nil {
			pool = sys
		} else {
			pool = x509.NewCertPool()
		}
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("pop3: reading CA file: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("pop3: CA file %s holds no PEM certificate", o.CAFile)
			}
			if lazy {
				cfg.InsecureSkipVerify = true // replaced by the same checks, CAFile's roots first
				cfg.VerifyConnection = verifyOwnRootsFirst(pool, pem, cfg.ServerName, cfg.Time)
			}
		}
		cfg.RootCAs = pool
	}
	if o.Fingerprint != "" {
		want, err := ParseFingerprint(o.Fingerprint)
		if err != nil {
			return nil, err
		}
		cfg.InsecureSkipVerify = true // replaced by the pin below
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrFingerprintMismatch
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				return fmt.Errorf("%w: server's is %s", ErrFingerprintMismatch, FormatFingerprint(got))
			}
			return nil
		}
	}
	return cfg, nil
}

// ParseFingerprint parses a SHA-256 certificate fingerprint: 64 hex digits, with or without colons,
// optionally prefixed "sha256:".
func ParseFingerprint(s string) ([32]byte, error) {
	var fp [32]byte
	h := strings.TrimSpace(s)
	if len(h) > 7 && strings.EqualFold(h[:7], "sha256:") {
		h = h[7:]
	}
	h = strings.ReplaceAll(h, ":", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != len(fp) {
		return fp, fmt.Errorf("pop3: invalid SHA-256 fingerprint %q: want 64 hex digits", s)
	}
	copy(fp[:], b)
	return fp, nil
}

// FormatFingerprint formats a SHA-256 fingerprint as "sha256:AB:CD:...", the form ParseFingerprint
// and the tls_fingerprint profile key accept.
func FormatFingerprint(fp [32]byte) string {
	var b strings.Builder
	b.WriteString("sha256:")
	for i, c := range fp {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// Client is a POP3 client connection. It is not safe for concurrent use.
type Client struct {
	opts      Options
	host      string // server name for TLS and messages
	tc        *timedConn
	conn      net.Conn // tc, or TLS over tc
	br        *bufio.Reader
	bw        *bufio.Writer
	greeting  string
	timestamp string // APOP timestamp from the greeting, with its angle brackets
	caps      *Capabilities
	capaDone  bool // CAPA was answered (+OK or -ERR) since the connection or the last STLS
	utf8Sent  bool // UTF8 was sent (RFC 6856)
	tlsState  *tls.ConnectionState
	body      *dotReader // the body of the last RETR/TOP until it is read to the end
	broken    error
	closed    bool
	traceMu   sync.Mutex
	lineBuf   []byte
}

// Dial connects to addr ("host:port"; the port defaults from mode when absent), protects the
// connection as mode says, and reads the greeting. For TLSStartTLS it also issues CAPA and STLS and
// fails with ErrSTLSUnavailable when the server does not offer STLS. ctx bounds dialing and the TLS
// handshake. TLS failures are *TLSError.
func Dial(ctx context.Context, addr string, mode TLSMode, opts *Options) (*Client, error) {
	o := opts.withDefaults()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, strconv.Itoa(mode.DefaultPort())
		addr = net.JoinHostPort(host, port)
	}
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.Timeout}
	}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3: connecting to %s: %w", addr, err)
	}
	tc := &timedConn{Conn: raw, timeout: o.Timeout, minRate: o.MinRate}
	c := &Client{opts: o, host: host, tc: tc, conn: tc}
	if mode == TLSImplicit {
		if err := c.handshake(ctx); err != nil {
			raw.Close()
			return nil, err
		}
	}
	c.br = bufio.NewReaderSize(c.conn, bufferSize)
	c.bw = bufio.NewWriterSize(c.conn, 4096)
	if err := c.readGreeting(ctx); err != nil {
		c.Close()
		return nil, err
	}
	if mode == TLSStartTLS {
		if err := c.requireSTLS(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// NewClient runs a client over an established connection (plain or TLS) and reads the greeting. It
// is how tests inject a transport; opts may be nil. The host for STLS is taken from the remote
// address unless opts.TLSConfig names a ServerName.
func NewClient(conn net.Conn, opts *Options) (*Client, error) {
	o := opts.withDefaults()
	host := ""
	if a := conn.RemoteAddr(); a != nil {
		host, _, _ = net.SplitHostPort(a.String())
	}
	tc := &timedConn{Conn: conn, timeout: o.Timeout, minRate: o.MinRate}
	c := &Client{opts: o, host: host, tc: tc, conn: tc}
	if tcn, ok := conn.(*tls.Conn); ok {
		st := tcn.ConnectionState()
		c.tlsState = &st
	}
	c.br = bufio.NewReaderSize(c.conn, bufferSize)
	c.bw = bufio.NewWriterSize(c.conn, 4096)
	if err := c.readGreeting(context.Background()); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// handshake runs a TLS client handshake over c.conn.
func (c *Client) handshake(ctx context.Context) error {
	cfg, err := c.opts.tlsConfig(c.host)
	if err != nil {
		return err
	}
	tconn := tls.Client(c.conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	if err := tconn.HandshakeContext(hctx); err != nil {
		// A server that is silent, slow or hangs up during the handshake is a network problem, not a
		// TLS one: only what TLS itself decided (certificate, pin, protocol alert) is a *TLSError.
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
			(errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, syscall.ECONNRESET) {
			if ctx.Err() != nil {
				return fmt.Errorf("pop3: TLS handshake with %s: %w", c.host, ctx.Err())
			}
			return fmt.Errorf("pop3: TLS handshake with %s: no answer in time or connection closed: %w", c.host, err)
		}
		return &TLSError{Host: c.host, Err: err}
	}
	st := tconn.ConnectionState()
	c.tlsState = &st
	c.conn = tconn
	c.trace("-- TLS %s %s established with %s", tlsVersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), c.host)
	return nil
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS1.0"
	case tls.VersionTLS11:
		return "TLS1.1"
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return fmt.Sprintf("TLS(0x%04x)", v)
}

func (c *Client) readGreeting(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { c.tc.abort(context.Cause(ctx)) })
	defer stop()
	r, err := c.readStatus("greeting")
	if err != nil {
		return err
	}
	c.greeting = r.text
	c.timestamp = apopTimestamp(r.text)
	return nil
}

// apopTimestamp returns the APOP timestamp of a greeting, or "" when it has none that RFC 1939 §7
// allows: a msg-id (RFC 822) "<local@domain>" of printable ASCII without spaces. Anything else is not
// used: an MD5 over text the server chose freely would only help an attacker.
func apopTimestamp(greeting string) string {
	i := strings.IndexByte(greeting, '<')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(greeting[i:], '>')
	if j < 0 {
		return ""
	}
	ts := greeting[i : i+j+1]
	inner := ts[1 : len(ts)-1]
	at := strings.LastIndexByte(inner, '@')
	if at <= 0 || at == len(inner)-1 || len(ts) > 255 {
		return ""
	}
	for k := 0; k < len(inner); k++ {
		if b := inner[k]; b <= 0x20 || b >= 0x7f || b == '<' || b == '>' {
			return ""
		}
	}
	return ts
}

// requireSTLS issues CAPA and STLS (RFC 2595 §4) and fails with ErrSTLSUnavailable when the server
// does not offer it; nothing but CAPA and STLS is sent in clear.
func (c *Client) requireSTLS(ctx context.Context) error {
	caps, err := c.Capa(ctx)
	var perr *Error
	switch {
	case errors.As(err, &perr):
		// No CAPA (an RFC 1939-only server): try STLS anyway; a refusal is ErrSTLSUnavailable.
	case err != nil:
		return err
	case !caps.STLS:
		return ErrSTLSUnavailable
	}
	if err := c.StartTLS(ctx); err != nil {
		if errors.As(err, &perr) {
			return fmt.Errorf("%w (%v)", ErrSTLSUnavailable, perr)
		}
		return err
	}
	return nil
}

// Greeting returns the text of the server's greeting.
func (c *Client) Greeting() string { return c.greeting }

// Caps returns the capabilities from the last CAPA, or nil if CAPA was not issued since the last STLS
// or was refused.
func (c *Client) Caps() *Capabilities { return c.caps }

// TLSConnectionState returns the TLS state, and false when the connection is not encrypted.
func (c *Client) TLSConnectionState() (tls.ConnectionState, bool) {
	if c.tlsState == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tlsState, true
}

// Err returns why the connection can no longer be used (an I/O error, a timeout, a protocol
// violation, a cancelled context, Quit or Close), or nil while it can.
func (c *Client) Err() error { return c.broken }

// Close closes the connection without QUIT: the server discards deletions (RFC 1939 §6).
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.broken == nil {
		c.broken = errors.New("connection closed")
	}
	return c.conn.Close()
}

// trace writes one line of the dialogue.
func (c *Client) trace(format string, args ...any) {
	if c.opts.Trace == nil {
		return
	}
	// Every line goes through termsafe: server lines (greeting, SASL challenges, listings) reach the
	// terminal escaped, whatever the caller's Trace writer does.
	line := termsafe.String(fmt.Sprintf(format, args...)) + "\n"
	c.traceMu.Lock()
	defer c.traceMu.Unlock()
	io.WriteString(c.opts.Trace, line)
}

// begin prepares for a command: it checks the connection, finishes the previous body, and ties ctx to
// the I/O. The returned stop must be called when the command's I/O is over.
func (c *Client) begin(ctx context.Context, cmd string) (stop func() bool, err error) {
	if c.broken != nil {
		return nil, fmt.Errorf("%w: %s not sent: %v", ErrUnusable, cmd, c.broken)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stop = context.AfterFunc(ctx, func() { c.tc.abort(context.Cause(ctx)) })
	if c.body != nil {
		if _, err := io.Copy(io.Discard, c.body); err != nil {
			stop()
			return nil, c.broken
		}
	}
	return stop, nil
}

// fail marks the connection unusable because of err and closes it; it returns err.
func (c *Client) fail(err error) error {
	if c.broken == nil {
		c.broken = err
	}
	c.conn.Close()
	return err
}

// ioError describes an I/O failure during cmd and marks the connection unusable.
func (c *Client) ioError(cmd string, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("pop3: %s: %w", cmd, err)
	case errors.As(err, &ne) && ne.Timeout():
		err = fmt.Errorf("pop3: %s: server too slow (no progress within %s): %w", cmd, c.opts.Timeout, err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("pop3: %s: server closed the connection: %w", cmd, io.ErrUnexpectedEOF)
	default:
		err = fmt.Errorf("pop3: %s: %w", cmd, err)
	}
	return c.fail(err)
}

// send writes one command line and flushes it. shown is what the trace shows ("" = line).
func (c *Client) send(cmd, line, shown string) error {
	if c.opts.Trace != nil {
		if shown == "" {
			shown = line
		}
		c.trace("C: %s", shown)
	}
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		return c.ioError(cmd, err)
	}
	return nil
}

// readLine reads one line bounded by maxLineLength, without its line ending.
func (c *Client) readLine(cmd string) ([]byte, error) {
	buf := c.lineBuf[:0]
	for {
		chunk, err := c.br.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLineLength {
			return nil, c.fail(protocolError(cmd, "reply line longer than %d octets", maxLineLength))
		}
		buf = append(buf, chunk...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return nil, c.ioError(cmd, err)
		}
	}
	c.lineBuf = buf
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	return buf, nil
}

// readStatus reads and parses a status line. A "-ERR" reply is returned as an *Error (the connection
// stays usable); anything else that is not "+OK" is a protocol violation.
func (c *Client) readStatus(cmd string) (reply, error) {
	c.tc.begin()
	line, err := c.readLine(cmd)
	if err != nil {
		return reply{}, err
	}
	r, ok := parseStatus(line)
	if !ok {
		c.trace("S: %s", sanitize(string(line)))
		return r, c.fail(protocolError(cmd, "unexpected reply %q", sanitize(string(line))))
	}
	if r.cont {
		c.trace("S: + %s", r.text)
		return r, nil
	}
	if c.opts.Trace != nil {
		c.trace("S: %s", sanitize(string(line)))
	}
	if !r.ok {
		return r, &Error{Command: cmd, Code: r.code, Text: sanitize(r.text)}
	}
	return r, nil
}

// readOK reads a status line that must be +OK (a continuation is a protocol violation here).
func (c *Client) readOK(cmd string) (reply, error) {
	r, err := c.readStatus(cmd)
	if err == nil && r.cont {
		return r, c.fail(protocolError(cmd, "unexpected continuation"))
	}
	return r, err
}

// readLines reads the lines of a multi-line reply up to the terminating ".", undoing dot-stuffing,
// and hands each to fn (the slice is reused). maxLines bounds the reply.
func (c *Client) readLines(cmd string, maxLines int, fn func(line []byte) error) error {
	for count := 0; ; count++ {
		line, err := c.readLine(cmd)
		if err != nil {
			return err
		}
		if len(line) > 0 && line[0] == '.' {
			if len(line) == 1 {
				c.trace("S: .")
				return nil
			}
			line = line[1:]
		}
		if c.opts.Trace != nil {
			c.trace("S: %s", sanitize(string(line)))
		}
		if count >= maxLines {
			return c.fail(protocolError(cmd, "reply longer than %d lines", maxLines))
		}
		if err := fn(line); err != nil {
			return c.fail(err)
		}
	}
}

// simple sends a command with a single-line reply.
func (c *Client) simple(ctx context.Context, cmd, line string) (reply, error) {
	stop, err := c.begin(ctx, cmd)
	if err != nil {
		return reply{}, err
	}
	defer stop()
	if err := c.send(cmd, line, ""); err != nil {
		return reply{}, err
	}
	return c.readOK(cmd)
}

// Capa issues CAPA (RFC 2449 §5) and returns the capabilities; they are also kept for Caps and for
// the choices the client makes (pipelining, authentication). A server without CAPA answers with an
// *Error.
func (c *Client) Capa(ctx context.Context) (*Capabilities, error) {
	if _, err := c.simple(ctx, "CAPA", "CAPA"); err != nil {
		if isRefusal(err) {
			c.capaDone = true // a server without CAPA: do not ask again (Auth would)
		}
		return nil, err
	}
	c.capaDone = true
	var lines []string
	err := c.readLines("CAPA", 1000, func(l []byte) error {
		lines = append(lines, string(l))
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.caps = parseCapa(lines)
	return c.caps, nil
}

// StartTLS issues STLS (RFC 2595 §4) and runs the TLS handshake. Afterwards the capabilities are
// forgotten (issue CAPA again). A refusal is an *Error; a handshake failure is a *TLSError and leaves
// the connection unusable.
func (c *Client) StartTLS(ctx context.Context) error {
	if c.tlsState != nil {
		return fmt.Errorf("pop3: STLS: connection is already encrypted")
	}
	stop, err := c.begin(ctx, "STLS")
	if err != nil {
		return err
	}
	defer stop()
	if err := c.send("STLS", "STLS", ""); err != nil {
		return err
	}
	if _, err := c.readOK("STLS"); err != nil {
		return err
	}
	// Anything the server sent after its +OK would be read as if it came over TLS: refuse it
	// (the STARTTLS command-injection attack, CVE-2011-0411 and kin).
	if c.br.Buffered() > 0 {
		return c.fail(protocolError("STLS", "server sent data before the TLS handshake"))
	}
	if err := c.handshake(ctx); err != nil {
		return c.fail(err)
	}
	c.br.Reset(c.conn)
	c.bw.Reset(c.conn)
	c.caps = nil
	c.capaDone = false
	return nil
}

// Stat issues STAT (RFC 1939 §5): the number of messages and their total size.
func (c *Client) Stat(ctx context.Context) (count int, size int64, err error) {
	r, err := c.simple(ctx, "STAT", "STAT")
	if err != nil {
		return 0, 0, err
	}
	n, sz, ok := parseListLine([]byte(r.text)) // "count size" has the shape of a LIST line
	if !ok {
		return 0, 0, c.fail(protocolError("STAT", "malformed reply %q", sanitize(r.text)))
	}
	return n, sz, nil
}

// List issues LIST (RFC 1939 §5) and returns every message's number and size (UID empty). More
// than MaxListing messages is an error matching ErrListingTooLong.
func (c *Client) List(ctx context.Context) ([]MessageInfo, error) {
	if _, err := c.simple(ctx, "LIST", "LIST"); err != nil {
		return nil, err
	}
	return c.readList()
}

// ListOne issues "LIST n".
func (c *Client) ListOne(ctx context.Context, n int) (MessageInfo, error) {
	r, err := c.simple(ctx, "LIST", "LIST "+strconv.Itoa(n))
	if err != nil {
		return MessageInfo{}, err
	}
	num, sz, ok := parseListLine([]byte(r.text))
	if !ok || num != n {
		return MessageInfo{}, c.fail(protocolError("LIST", "malformed reply %q", sanitize(r.text)))
	}
	return MessageInfo{Number: n, Size: sz}, nil
}

// Uidl issues UIDL (RFC 1939 §7) and returns every message's number and unique-id (Size -1).
func (c *Client) Uidl(ctx context.Context) ([]MessageInfo, error) {
	if _, err := c.simple(ctx, "UIDL", "UIDL"); err != nil {
		return nil, err
	}
	return c.readUidl()
}

// UidlOne issues "UIDL n".
func (c *Client) UidlOne(ctx context.Context, n int) (MessageInfo, error) {
	r, err := c.simple(ctx, "UIDL", "UIDL "+strconv.Itoa(n))
	if err != nil {
		return MessageInfo{}, err
	}
	num, uid, ok := parseUIDLLine([]byte(r.text))
	if !ok || num != n {
		return MessageInfo{}, c.fail(protocolError("UIDL", "malformed reply %q", sanitize(r.text)))
	}
	return MessageInfo{Number: n, Size: -1, UID: uid}, nil
}

// Retr issues "RETR n" (RFC 1939 §5) and returns the message as a stream: dot-stuffing undone, CRLF
// turned into LF. The reader is valid until the next command, which first discards what is left of
// it. A refusal is an *Error.
func (c *Client) Retr(ctx context.Context, n int) (io.Reader, error) {
	return c.multiBody(ctx, "RETR", "RETR "+strconv.Itoa(n))
}

// Top issues "TOP n lines" (RFC 1939 §7): the header and the first lines of the body, as a stream like
// Retr's.
func (c *Client) Top(ctx context.Context, n, lines int) (io.Reader, error) {
	return c.multiBody(ctx, "TOP", "TOP "+strconv.Itoa(n)+" "+strconv.Itoa(lines))
}

func (c *Client) multiBody(ctx context.Context, cmd, line string) (io.Reader, error) {
	stop, err := c.begin(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if err := c.send(cmd, line, ""); err != nil {
		stop()
		return nil, err
	}
	if _, err := c.readOK(cmd); err != nil {
		stop()
		return nil, err
	}
	return c.openBody(cmd, stop), nil
}

// openBody starts reading a message body; stop is called when it ends.
func (c *Client) openBody(cmd string, stop func() bool) *dotReader {
	var d *dotReader
	d = newDotReader(c.br, func(err error) error {
		if stop != nil {
			stop()
		}
		if c.body == d {
			c.body = nil
		}
		if err != nil {
			return c.ioError(cmd, err)
		}
		if c.opts.Trace != nil {
			c.trace("S: (message body, %d octets)", d.n)
		}
		return nil
	})
	c.body = d
	return d
}

// Dele issues "DELE n" (RFC 1939 §5). The deletion takes effect only when QUIT succeeds.
func (c *Client) Dele(ctx context.Context, n int) error {
	_, err := c.simple(ctx, "DELE", "DELE "+strconv.Itoa(n))
	return err
}

// Rset issues RSET: the server forgets this session's deletions.
func (c *Client) Rset(ctx context.Context) error {
	_, err := c.simple(ctx, "RSET", "RSET")
	return err
}

// Noop issues NOOP.
func (c *Client) Noop(ctx context.Context) error {
	_, err := c.simple(ctx, "NOOP", "NOOP")
	return err
}

// UTF8 issues UTF8 (RFC 6856 §2) when the server advertises it. Listing sends it by itself, pipelined
// with LIST and UIDL, so that a server such as Courier hands out messages with 8-bit headers as they
// are stored instead of down-converting them.
func (c *Client) UTF8(ctx context.Context) error {
	_, err := c.simple(ctx, "UTF8", "UTF8")
	if err == nil {
		c.utf8Sent = true
	}
	return err
}

// QuitNoWait sends QUIT and closes the connection without waiting for the reply: for a session
// that deleted nothing, where the reply commits nothing and would only cost a round trip. Errors are
// ignored: the connection is closed either way.
func (c *Client) QuitNoWait(ctx context.Context) {
	defer c.Close()
	stop, err := c.begin(ctx, "QUIT")
	if err != nil {
		return
	}
	defer stop()
	c.send("QUIT", "QUIT", "")
}

// Quit issues QUIT and closes the connection. Only a nil error means the server committed the
// session's deletions (RFC 1939 §6); an *Error means it refused to.
func (c *Client) Quit(ctx context.Context) error {
	defer c.Close()
	_, err := c.simple(ctx, "QUIT", "QUIT")
	return err
}
