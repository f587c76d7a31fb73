package pop3

import (
	"context"
	"fmt"
	"io"
	"strconv"
)

// Capa issues CAPA (RFC 2449 §5) and returns the capabilities; they are also kept for Caps and for
// the choices the client makes (pipelining, authentication). A server without CAPA answers with an
// *Error.
func (c *Client) Capa(ctx context.Context) (*Capabilities, error) {
	if _, err := c.simple(ctx, "CAPA", "CAPA"); err != nil {
		if IsRefusal(err) {
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
