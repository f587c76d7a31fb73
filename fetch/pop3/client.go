package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/popfetch/popfetch/internal/termsafe"
)

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
