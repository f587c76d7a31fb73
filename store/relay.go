package store

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

const defaultRelayTimeout = 5 * time.Minute

// RelayError reports a failed delivery over LMTP or SMTP: a reply from the server (Code > 0), or a
// connection problem (Code 0). 4xx replies and connection problems are temporary (ErrTemporary),
// 5xx replies are permanent (ErrRefused); a required STARTTLS that is not offered or whose
// certificate does not verify is ErrTLS, which the CLI treats like the POP3 side's TLS failures.
type RelayError struct {
	Proto     string // "LMTP" or "SMTP"
	Addr      string // the server's address
	Recipient string
	Stage     string // "connect", "MAIL", "RCPT", "DATA"
	Code      int    // the reply code, 0 for a connection problem
	Enhanced  string // the enhanced status code (RFC 3463), "" if none
	Message   string // the server's text
	Err       error  // the underlying error: a *smtp.SMTPError or a network error
}

func (e *RelayError) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("store: %s %s: %s: %v", e.Proto, e.Addr, e.Stage, e.Err)
	}
	code := fmt.Sprint(e.Code)
	if e.Enhanced != "" {
		code += " " + e.Enhanced
	}
	return fmt.Sprintf("store: %s %s: %s <%s>: %s %s", e.Proto, e.Addr, e.Stage, e.Recipient, code, e.Message)
}

// Unwrap returns the underlying error.
func (e *RelayError) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed: a 4xx reply or a connection problem.
func (e *RelayError) Temporary() bool {
	if e.TLSFailed() {
		return false
	}
	return e.Code == 0 || (e.Code >= 400 && e.Code < 500)
}

// TLSFailed reports whether a required STARTTLS was not offered or its certificate did not verify.
func (e *RelayError) TLSFailed() bool { return e.Stage == "STARTTLS" && e.Code == 0 }

// Is makes a *RelayError match ErrTLS for a failed STARTTLS, ErrTemporary for a temporary failure,
// ErrRefused otherwise.
func (e *RelayError) Is(target error) bool {
	switch {
	case e.TLSFailed():
		return target == ErrTLS
	case e.Temporary():
		return target == ErrTemporary
	}
	return target == ErrRefused
}

// relay is the session shared by LMTP and SMTP: one connection kept across messages, dialled on first
// use and again after a connection problem; a refused message is followed by RSET.
type relay struct {
	proto            string
	network, addr    string
	recipient        string
	lmtp             bool
	receivedHeader   bool
	sender           string
	localName        string
	timeout          time.Duration
	startTLS, reqTLS bool
	tlsConfig        *tls.Config

	mu     sync.Mutex
	conn   net.Conn
	client *smtp.Client
	batch  batch
	closed bool
}

// relayAddr splits an LMTP/SMTP address: "unix:/path", "/path" or "host:port".
func relayAddr(addr string) (network, address string) {
	if rest, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix", rest
	}
	if strings.HasPrefix(addr, "/") {
		return "unix", addr
	}
	return "tcp", addr
}

func newRelay(proto, addr, recipient string, lmtp bool) (*relay, error) {
	if recipient == "" || strings.ContainsAny(recipient, "\r\n<> ") {
		return nil, fmt.Errorf("store: %s: bad recipient %q", strings.ToLower(proto), recipient)
	}
	if addr == "" {
		return nil, fmt.Errorf("store: %s: no address", strings.ToLower(proto))
	}
	network, address := relayAddr(addr)
	return &relay{proto: proto, network: network, addr: address, recipient: recipient, lmtp: lmtp}, nil
}

func (r *relay) defaults() {
	if r.timeout <= 0 {
		r.timeout = defaultRelayTimeout
	}
	if r.localName == "" {
		r.localName = "localhost"
	}
}

func (r *relay) errorf(stage string, err error) *RelayError {
	e := &RelayError{Proto: r.proto, Addr: r.addr, Recipient: r.recipient, Stage: stage, Err: err}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		e.Code, e.Message = se.Code, se.Message
		if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
			c := se.EnhancedCode
			e.Enhanced = fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2])
		}
	}
	return e
}

// connect dials and greets the server (and upgrades with STARTTLS for SMTP, when configured).
func (r *relay) connect(ctx context.Context) error {
	d := net.Dialer{Timeout: r.timeout}
	dial := func() (net.Conn, *smtp.Client, error) {
		conn, err := d.DialContext(ctx, r.network, r.addr)
		if err != nil {
			return nil, nil, err
		}
		var c *smtp.Client
		if r.lmtp {
			c = smtp.NewClientLMTP(conn)
		} else {
			c = smtp.NewClient(conn)
		}
		c.CommandTimeout = r.timeout
		c.SubmissionTimeout = 2 * r.timeout
		return conn, c, nil
	}
	conn, c, err := dial()
	if err != nil {
		return r.errorf("connect", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() { stop() }()
	if err := c.Hello(r.localName); err != nil {
		c.Close()
		return r.errorf("connect", err)
	}
	if !r.lmtp && r.startTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			// go-smtp v0.25.1 upgrades only from a fresh connection (NewClientStartTLS), so say
			// goodbye and dial again.
			_ = c.Quit()
			c.Close()
			stop()
			tlsConn, _, err := dial()
			if err != nil {
				return r.errorf("connect", err)
			}
			conn = tlsConn
			stop = context.AfterFunc(ctx, func() { tlsConn.Close() })
			cfg := r.tlsConfig
			if cfg == nil {
				cfg = &tls.Config{}
			}
			if cfg.ServerName == "" {
				cfg = cfg.Clone()
				cfg.ServerName, _, _ = net.SplitHostPort(r.addr)
			}
			if c, err = smtp.NewClientStartTLS(conn, cfg); err != nil {
				conn.Close()
				return r.errorf("STARTTLS", err)
			}
			c.CommandTimeout = r.timeout
			c.SubmissionTimeout = 2 * r.timeout
			// The TLS handshake happens on this first exchange.
			if err := c.Hello(r.localName); err != nil {
				c.Close()
				var cve *tls.CertificateVerificationError
				var ae tls.AlertError
				var rhe tls.RecordHeaderError
				if errors.As(err, &cve) || errors.As(err, &ae) || errors.As(err, &rhe) {
					return r.errorf("STARTTLS", err)
				}
				return r.errorf("connect", err)
			}
		} else if r.reqTLS {
			_ = c.Quit()
			c.Close()
			return r.errorf("STARTTLS", errors.New("the server does not offer STARTTLS"))
		}
	}
	r.conn, r.client = conn, c
	return nil
}

// drop closes the connection after a problem; the next delivery dials again.
func (r *relay) drop() {
	if r.client != nil {
		r.client.Close()
	}
	r.conn, r.client = nil, nil
}

func (r *relay) deliver(ctx context.Context, env Envelope, body io.Reader) (Pending, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return Pending{}, fmt.Errorf("store: %s destination is closed", r.proto)
	}
	if err := ctx.Err(); err != nil {
		return Pending{}, err
	}
	br := bufio.NewReaderSize(&ctxBodyReader{ctx: ctx, r: body}, 32<<10)
	sender := r.sender
	if sender == "" {
		sender = peekReturnPath(br)
	}
	if r.client == nil {
		if err := r.connect(ctx); err != nil {
			if ctx.Err() != nil {
				return Pending{}, ctx.Err()
			}
			return Pending{}, err
		}
	}
	conn, c := r.conn, r.client
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// refused ends the transaction after a refusal, keeping the session if it is still good.
	refused := func(stage string, err error) (Pending, error) {
		e := r.errorf(stage, err)
		if ctx.Err() != nil {
			r.drop()
			return Pending{}, ctx.Err()
		}
		if e.Code == 0 || c.Reset() != nil {
			r.drop()
		}
		return Pending{}, e
	}
	if err := c.Mail(sender, nil); err != nil {
		return refused("MAIL", err)
	}
	if err := c.Rcpt(r.recipient, nil); err != nil {
		return refused("RCPT", err)
	}
	w, err := c.Data()
	if err != nil {
		return refused("DATA", err)
	}
	// go-smtp sets no deadline while the message is written: each write gets one here. Its dot
	// writer turns LF into CRLF and dot-stuffs (RFC 5321 §4.5.2).
	dw := &deadlineWriter{conn: conn, w: w, timeout: r.timeout}
	bw := bufio.NewWriterSize(dw, 32<<10)
	var readErr, writeErr error
	if r.receivedHeader {
		_, writeErr = io.WriteString(bw, ReceivedHeader(env))
	}
	if writeErr == nil {
		_, readErr, writeErr = copyReadWrite(bw, br)
	}
	if readErr == nil && writeErr == nil {
		writeErr = bw.Flush()
	}
	if readErr != nil || writeErr != nil {
		// Never send the final dot of a truncated message: drop the connection instead.
		r.drop()
		if ctx.Err() != nil {
			return Pending{}, ctx.Err()
		}
		if readErr != nil {
			return Pending{}, readErr
		}
		return Pending{}, r.errorf("DATA", writeErr)
	}
	_ = conn.SetDeadline(time.Time{})
	if r.lmtp {
		// RFC 2033 §4.2: one reply per accepted recipient after the final dot.
		_, err = w.CloseWithLMTPResponse()
		var lerr smtp.LMTPDataError
		if errors.As(err, &lerr) {
			if se, ok := lerr[r.recipient]; ok {
				err = se
			}
		}
	} else {
		_, err = w.CloseWithResponse()
	}
	if err != nil {
		return refused("DATA", err)
	}
	p := Pending{UID: env.UID}
	r.batch = append(r.batch, p)
	return p, nil
}

func (r *relay) commit(journal func([]Pending) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batch.journal(journal)
}

func (r *relay) abort() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batch = nil
	return nil
}

func (r *relay) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.client == nil {
		return nil
	}
	c := r.client
	r.conn, r.client = nil, nil
	if err := c.Quit(); err != nil {
		c.Close()
	}
	return nil
}

// deadlineWriter sets a write deadline on conn before each write to w.
type deadlineWriter struct {
	conn    net.Conn
	w       io.Writer
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if err := d.conn.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.w.Write(p)
}
