package pop3test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"
)

// testTimeout bounds every client read and write so that a broken server
// fails a test instead of hanging it.
const testTimeout = 20 * time.Second

// client is a raw POP3 client over net/textproto.
type client struct {
	t    testing.TB
	conn net.Conn
	tp   *textproto.Conn
	// greeting is the first line the server sent.
	greeting string
}

func dial(t testing.TB, s *Server) *client {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, c)
}

func dialTLS(t testing.TB, s *Server, conf *tls.Config) *client {
	t.Helper()
	c, err := tls.Dial("tcp", s.Addr(), conf)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, c)
}

func newClient(t testing.TB, c net.Conn) *client {
	t.Helper()
	c.SetDeadline(time.Now().Add(testTimeout))
	cl := &client{t: t, conn: c, tp: textproto.NewConn(c)}
	t.Cleanup(func() { cl.tp.Close() })
	return cl
}

// greet reads the greeting and checks it is positive.
func (c *client) greet() *client {
	c.t.Helper()
	c.greeting = c.line()
	if !strings.HasPrefix(c.greeting, "+OK ") {
		c.t.Fatalf("greeting %q", c.greeting)
	}
	return c
}

func (c *client) send(format string, args ...any) {
	c.t.Helper()
	if err := c.tp.PrintfLine(format, args...); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) line() string {
	c.t.Helper()
	l, err := c.tp.ReadLine()
	if err != nil {
		c.t.Fatalf("reading line: %v", err)
	}
	return l
}

// cmd sends a command and returns the status line.
func (c *client) cmd(format string, args ...any) string {
	c.t.Helper()
	c.send(format, args...)
	return c.line()
}

// expect sends a command and checks the status line.
func (c *client) expect(cmd, want string) {
	c.t.Helper()
	if got := c.cmd("%s", cmd); got != want {
		c.t.Fatalf("%s: got %q, want %q", cmd, got, want)
	}
}

// multi sends a command, checks its status is +OK and returns the
// dot-decoded lines of the multi-line response.
func (c *client) multi(cmd string) []string {
	c.t.Helper()
	if st := c.cmd("%s", cmd); !strings.HasPrefix(st, "+OK") {
		c.t.Fatalf("%s: %q", cmd, st)
	}
	lines, err := c.tp.ReadDotLines()
	if err != nil {
		c.t.Fatalf("%s: %v", cmd, err)
	}
	return lines
}

// raw reads raw lines, with their CRLF, up to and excluding ".\r\n".
func (c *client) raw() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l, err := c.tp.R.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading raw response: %v (after %q)", err, b.String())
		}
		if l == ".\r\n" {
			return b.String()
		}
		b.WriteString(l)
	}
}

func (c *client) login() {
	c.t.Helper()
	c.expect("USER alice", "+OK")
	c.expect("PASS secret", "+OK Logged in.")
}

// expectEOF checks the server closed the connection, after any bytes in
// want.
func (c *client) expectEOF(want string) {
	c.t.Helper()
	got, err := io.ReadAll(c.tp.R)
	if err != nil {
		c.t.Fatalf("want EOF, got %v after %q", err, got)
	}
	if string(got) != want {
		c.t.Fatalf("before EOF got %q, want %q", got, want)
	}
}

// expectSilence checks that nothing arrives for a while: the server stalls.
func (c *client) expectSilence() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	defer c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	b, err := c.tp.R.ReadByte()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("want a stall, got byte %q, error %v", b, err)
	}
}

func (c *client) reader() *bufio.Reader { return c.tp.R }

// msgs returns n messages with distinct content.
func msgs(data ...string) []Message {
	out := make([]Message, len(data))
	for i, d := range data {
		out[i] = Message{Data: []byte(d)}
	}
	return out
}
