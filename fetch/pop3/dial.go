package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
)

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
			if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				// The server hung up in the middle of the handshake: a dropped connection like any other.
				return fmt.Errorf("pop3: TLS handshake with %s: the server closed the connection: %w", c.host, io.ErrUnexpectedEOF)
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
