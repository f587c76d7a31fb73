package pop3test

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	// MaxCommandLine is the longest command line the server accepts, in
	// octets including CRLF. Longer lines get "-ERR line too long" and the
	// connection is closed.
	MaxCommandLine = 1024
	// MaxAuthLine is the longest AUTH command line or SASL response line
	// (RFC 5034 lifts the 255-octet limit for these), including CRLF.
	MaxAuthLine = 16 * 1024

	bufferSize  = 64 * 1024
	lingerLimit = 5 * time.Second
)

var (
	errLineTooLong = errors.New("pop3test: line too long")
	errCut         = errors.New("pop3test: response cut by fault")
	errClosed      = errors.New("pop3test: server closed")
)

type state int

const (
	authorization state = iota
	transaction
)

type sessMsg struct {
	stored
	deleted bool
}

// session is one connection.
type session struct {
	srv  *Server
	id   int
	raw  net.Conn // the TCP connection
	conn net.Conn // raw or TLS over raw
	tls  bool
	br   *bufio.Reader
	bw   *bufio.Writer
	out  io.Writer // bw, or a fault's writer over bw
	werr error     // first write error; nothing more is written after it
	end  bool      // the session is over

	state     state
	user      string // argument of the last USER
	timestamp string // APOP timestamp from the greeting, "" if none
	msgs      []sessMsg

	wrongSize *Fault // the WrongSize fault of the current LIST
	noTerm    bool   // omit the "." of multi-line responses
}

func newSession(srv *Server, c net.Conn, id int) *session {
	s := &session{srv: srv, id: id, raw: c, conn: c}
	if srv.opts.TLS == ImplicitTLS {
		s.conn = tls.Server(c, srv.tlsConf)
		s.tls = true
	}
	s.br = bufio.NewReaderSize(s.conn, bufferSize)
	s.bw = bufio.NewWriterSize(s.conn, bufferSize)
	s.out = s.bw
	return s
}

func (s *session) run() {
	s.exec(s.srv.fault("GREETING", "", false), s.greet)
	for !s.end && s.werr == nil {
		line, err := s.readLine(MaxAuthLine)
		kw, rest, _ := strings.Cut(line, " ")
		kw = strings.ToUpper(kw)
		if err == nil && kw != "AUTH" && len(line)+2 > MaxCommandLine {
			err = errLineTooLong
		}
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				s.writeLine("-ERR line too long")
				s.linger()
			}
			return
		}
		args := strings.Fields(rest)
		var arg string
		if len(args) > 0 {
			arg = args[0]
		}
		s.exec(s.srv.fault(kw, arg, len(args) > 0), func() { s.dispatch(kw, rest, args) })
	}
	if s.werr == nil {
		s.flush()
		if s.tls {
			s.conn.Close() // sends close_notify
		}
	}
}

// exec runs the command handler h under fault f (nil for none).
func (s *session) exec(f *Fault, h func()) {
	if f == nil {
		h()
		return
	}
	switch f.Action {
	case Reply, ReplyRaw:
		if f.Action == Reply {
			s.writeLine(f.Reply)
		} else {
			s.srv.trace(s.id, "S:", strconv.Quote(f.Reply))
			s.writeString(f.Reply)
		}
		if strings.EqualFold(f.Command, "GREETING") {
			s.timestamp = apopTimestamp(f.Reply)
			if strings.HasPrefix(f.Reply, "-") {
				s.linger()
			}
		}
	case Drop:
		s.linger()
	case DropAfter:
		s.out = &limitWriter{w: s.bw, n: f.Bytes}
		h()
		s.out = s.bw
		s.linger()
	case Stall:
		s.stall()
	case StallAfter:
		s.out = &limitWriter{w: s.bw, n: f.Bytes}
		h()
		s.out = s.bw
		s.stall()
	case Drip:
		s.out = &dripWriter{s: s, delay: f.Delay}
		h()
		s.out = s.bw
	case Oversized:
		s.oversized(f.Bytes)
	case WrongSize:
		s.wrongSize = f
		h()
		s.wrongSize = nil
	case Inflate:
		s.inflate(f.Bytes)
	case NoTerminator:
		s.noTerm = true
		h()
		s.noTerm = false
		s.stall()
	default:
		h()
	}
}

// readLine flushes pending output if no input is buffered, then reads one
// line of at most limit octets (with its line ending), records it and
// returns it without the line ending.
func (s *session) readLine(limit int) (string, error) {
	if s.br.Buffered() == 0 {
		s.flush()
	}
	if s.werr != nil {
		return "", s.werr
	}
	b, err := s.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(b) > limit {
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	b = bytes.TrimSuffix(b[:len(b)-1], []byte("\r"))
	line := string(b)
	s.srv.trace(s.id, "C:", line)
	s.srv.record(Line{Text: line, TLS: s.tls, Session: s.id})
	return line, nil
}

func (s *session) write(p []byte) {
	if s.werr == nil {
		_, s.werr = s.out.Write(p)
	}
}

func (s *session) writeString(str string) {
	if s.werr == nil {
		_, s.werr = io.WriteString(s.out, str)
	}
}

func (s *session) writeLine(line string) {
	s.srv.trace(s.id, "S:", line)
	s.writeString(line)
	s.writeString("\r\n")
}

func (s *session) writef(format string, args ...any) {
	s.writeLine(fmt.Sprintf(format, args...))
}

// flush sends buffered output. A fault's cut does not prevent it: the bytes
// before the cut are still sent.
func (s *session) flush() {
	if err := s.bw.Flush(); err != nil && s.werr == nil {
		s.werr = err
	}
}

// linger sends what is buffered, shuts down the sending side and discards
// input until the client closes (or a few seconds pass), so that the client
// reads every byte sent before it sees the end of the stream rather than a
// reset.
func (s *session) linger() {
	s.end = true
	if err := s.bw.Flush(); err != nil {
		return
	}
	if tc, ok := s.raw.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	s.raw.SetReadDeadline(time.Now().Add(lingerLimit))
	io.Copy(io.Discard, s.raw)
}

// stall sends what is buffered, then reads and discards input until the
// client or the server closes the connection.
func (s *session) stall() {
	s.end = true
	if err := s.bw.Flush(); err != nil {
		return
	}
	io.Copy(io.Discard, s.br)
}

// oversized sends a status line of n octets: "+OK ", 'x's and CRLF.
func (s *session) oversized(n int) {
	s.srv.trace(s.id, "S:", fmt.Sprintf("+OK xxx... (%d octets)", n))
	s.writeString("+OK ")
	chunk := bytes.Repeat([]byte("x"), 32*1024)
	for rest := n - 6; rest > 0 && s.werr == nil; {
		k := min(rest, len(chunk))
		s.write(chunk[:k])
		rest -= k
	}
	s.writeString("\r\n")
}

func (s *session) greet() {
	if s.srv.opts.NoAPOP {
		s.writeLine("+OK pop3test ready")
		return
	}
	s.timestamp = fmt.Sprintf("<%d.%d.%d@pop3test>", os.Getpid(), time.Now().UnixNano(), s.id)
	s.writeLine("+OK pop3test ready " + s.timestamp)
}

// apopTimestamp returns the "<...>" part of a greeting, or "".
func apopTimestamp(greeting string) string {
	i := strings.IndexByte(greeting, '<')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(greeting[i:], '>')
	if j < 0 {
		return ""
	}
	return greeting[i : i+j+1]
}

// dispatch executes one command. rest is everything after the keyword and
// one space; args are its fields.
func (s *session) dispatch(kw, rest string, args []string) {
	o := &s.srv.opts
	unknown := func() { s.writeLine("-ERR unknown command") }
	inState := func(st state) bool {
		if s.state != st {
			s.writeLine("-ERR command not valid in this state")
			return false
		}
		return true
	}
	switch kw {
	case "CAPA":
		if o.NoCAPA {
			unknown()
			return
		}
		s.capa()
	case "QUIT":
		s.quit()
	case "USER":
		if o.NoUSER {
			unknown()
		} else if inState(authorization) && s.nargs(args, 1, 1) {
			s.user = args[0]
			s.writeLine("+OK")
		}
	case "PASS":
		if o.NoUSER {
			unknown()
		} else if inState(authorization) {
			s.pass(rest)
		}
	case "APOP":
		if o.NoAPOP {
			unknown()
		} else if inState(authorization) && s.nargs(args, 2, 2) {
			s.apop(args[0], args[1])
		}
	case "AUTH":
		if len(s.srv.mechs) == 0 {
			unknown()
		} else if inState(authorization) {
			s.auth(args)
		}
	case "STLS":
		switch {
		case o.TLS != STLS || o.NoSTLS:
			unknown()
		case s.tls:
			s.writeLine("-ERR TLS already active")
		case inState(authorization) && s.nargs(args, 0, 0):
			s.stls()
		}
	case "UTF8":
		if !o.UTF8 {
			unknown()
		} else if inState(authorization) && s.nargs(args, 0, 0) {
			s.writeLine("+OK UTF8 enabled")
		}
	case "STAT":
		if inState(transaction) && s.nargs(args, 0, 0) {
			n, size := s.count()
			s.writef("+OK %d %d", n, size)
		}
	case "LIST":
		if inState(transaction) && s.nargs(args, 0, 1) {
			s.list(args)
		}
	case "UIDL":
		if o.NoUIDL {
			unknown()
		} else if inState(transaction) && s.nargs(args, 0, 1) {
			s.uidl(args)
		}
	case "RETR":
		if inState(transaction) && s.nargs(args, 1, 1) {
			if m := s.message(args[0]); m != nil {
				s.writef("+OK %d octets", m.size)
				s.sendMessage(m.Data, -1)
			}
		}
	case "TOP":
		if o.NoTOP {
			unknown()
		} else if inState(transaction) && s.nargs(args, 2, 2) {
			s.top(args)
		}
	case "DELE":
		if inState(transaction) && s.nargs(args, 1, 1) {
			if m := s.message(args[0]); m != nil {
				m.deleted = true
				s.writef("+OK message %s deleted", args[0])
			}
		}
	case "RSET":
		if inState(transaction) && s.nargs(args, 0, 0) {
			for i := range s.msgs {
				s.msgs[i].deleted = false
			}
			n, size := s.count()
			s.writef("+OK maildrop has %d messages (%d octets)", n, size)
		}
	case "NOOP":
		if inState(transaction) && s.nargs(args, 0, 0) {
			s.writeLine("+OK")
		}
	default:
		unknown()
	}
}

// nargs checks that there are between min and max arguments.
func (s *session) nargs(args []string, min, max int) bool {
	if len(args) < min || len(args) > max {
		s.writeLine("-ERR syntax error")
		return false
	}
	return true
}

func (s *session) capa() {
	o := &s.srv.opts
	s.writeLine("+OK Capability list follows")
	if !o.NoTOP {
		s.writeLine("TOP")
	}
	if !o.NoUIDL {
		s.writeLine("UIDL")
	}
	if !o.NoUSER {
		s.writeLine("USER")
	}
	if len(s.srv.mechs) > 0 {
		s.writeLine("SASL " + strings.Join(s.srv.mechs, " "))
	}
	if !o.NoRespCodes {
		s.writeLine("RESP-CODES")
		s.writeLine("AUTH-RESP-CODE")
	}
	if !o.NoPipelining {
		s.writeLine("PIPELINING")
	}
	if o.TLS == STLS && !o.NoSTLS && !s.tls && s.state == authorization {
		s.writeLine("STLS")
	}
	if o.UTF8 {
		s.writeLine("UTF8 USER")
	}
	if o.Expire != "" {
		s.writeLine("EXPIRE " + o.Expire)
	}
	if o.LoginDelay != "" {
		s.writeLine("LOGIN-DELAY " + o.LoginDelay)
	}
	s.writeLine("IMPLEMENTATION pop3test")
	s.end3()
}

// end3 ends a multi-line response, unless a NoTerminator fault is active.
func (s *session) end3() {
	if s.noTerm {
		s.srv.trace(s.id, "S:", "(terminator omitted)")
		return
	}
	s.writeLine(".")
}

func (s *session) quit() {
	if s.state == transaction {
		ids := make(map[int]bool)
		for _, m := range s.msgs {
			if m.deleted {
				ids[m.id] = true
			}
		}
		s.srv.commit(ids)
		s.writef("+OK pop3test signing off (%d messages deleted)", len(ids))
	} else {
		s.writeLine("+OK pop3test signing off")
	}
	s.end = true
}

// authFailed reports bad credentials (RFC 3206 [AUTH]).
func (s *session) authFailed() {
	s.user = ""
	if s.srv.opts.NoRespCodes {
		s.writeLine("-ERR Authentication failed")
	} else {
		s.writeLine("-ERR [AUTH] Authentication failed")
	}
}

// login enters the TRANSACTION state.
func (s *session) login() {
	if s.srv.opts.LoginHandoff {
		// The login process exits here; what it had read but not used dies with it.
		s.br.Discard(s.br.Buffered())
	}
	s.state = transaction
	snap := s.srv.snapshot()
	s.msgs = make([]sessMsg, len(snap))
	for i, m := range snap {
		s.msgs[i] = sessMsg{stored: m}
	}
	s.writeLine("+OK Logged in.")
}

func (s *session) pass(password string) {
	if s.user == "" {
		s.writeLine("-ERR no USER given")
		return
	}
	if s.user != s.srv.opts.User || password != s.srv.opts.Password {
		s.authFailed()
		return
	}
	s.login()
}

func (s *session) apop(user, digest string) {
	sum := md5.Sum([]byte(s.timestamp + s.srv.opts.Password))
	if s.timestamp == "" || s.srv.opts.APOPNoSecret || user != s.srv.opts.User || !strings.EqualFold(digest, hex.EncodeToString(sum[:])) {
		s.authFailed()
		return
	}
	s.login()
}

// stls performs the RFC 2595 STLS negotiation.
func (s *session) stls() {
	s.writeLine("+OK Begin TLS negotiation")
	s.flush()
	if s.werr != nil {
		s.end = true
		return
	}
	// Discard anything the client sent before the handshake: plain-text
	// commands must not be executed as if they came over TLS.
	if n := s.br.Buffered(); n > 0 {
		s.br.Discard(n)
	}
	tc := tls.Server(s.raw, s.srv.tlsConf)
	if err := tc.Handshake(); err != nil {
		s.srv.trace(s.id, "--", "TLS handshake: "+err.Error())
		s.end = true
		return
	}
	s.conn, s.tls = tc, true
	s.br.Reset(tc)
	s.bw.Reset(tc)
	s.user = "" // RFC 2595 §4: forget what the client said before
}

// count returns the number and total size of undeleted messages.
func (s *session) count() (n, size int) {
	for _, m := range s.msgs {
		if !m.deleted {
			n++
			size += m.size
		}
	}
	return n, size
}

// message returns the undeleted message numbered arg, or replies -ERR and
// returns nil.
func (s *session) message(arg string) *sessMsg {
	n, err := strconv.Atoi(arg)
	switch {
	case err != nil || n < 1 || strings.HasPrefix(arg, "+"):
		s.writeLine("-ERR invalid message number")
	case n > len(s.msgs):
		s.writeLine("-ERR no such message")
	case s.msgs[n-1].deleted:
		s.writef("-ERR message %d already deleted", n)
	default:
		return &s.msgs[n-1]
	}
	return nil
}

func (s *session) listSize(n int, m *sessMsg) int {
	if f := s.wrongSize; f != nil && (f.Arg == "" || f.Arg == strconv.Itoa(n)) {
		return f.Bytes
	}
	return m.size
}

func (s *session) list(args []string) {
	if len(args) == 1 {
		if m := s.message(args[0]); m != nil {
			n, _ := strconv.Atoi(args[0])
			s.writef("+OK %d %d", n, s.listSize(n, m))
		}
		return
	}
	n, size := s.count()
	s.writef("+OK %d messages (%d octets)", n, size)
	for i := range s.msgs {
		if m := &s.msgs[i]; !m.deleted {
			s.writef("%d %d", i+1, s.listSize(i+1, m))
		}
	}
	s.end3()
}

func (s *session) uidl(args []string) {
	if len(args) == 1 {
		if m := s.message(args[0]); m != nil {
			n, _ := strconv.Atoi(args[0])
			s.writef("+OK %d %s", n, m.UID)
		}
		return
	}
	s.writeLine("+OK unique-id listing follows")
	for i, m := range s.msgs {
		if !m.deleted {
			s.writef("%d %s", i+1, m.UID)
		}
	}
	s.end3()
}

func (s *session) top(args []string) {
	k, err := strconv.Atoi(args[1])
	if err != nil || k < 0 {
		s.writeLine("-ERR invalid line count")
		return
	}
	if m := s.message(args[0]); m != nil {
		s.writeLine("+OK top of message follows")
		s.sendMessage(m.Data, k)
	}
}

// sendMessage sends data as a multi-line response body (RFC 1939 §3):
// bare LF becomes CRLF, lines starting with "." are dot-stuffed, and the
// last line gets a CRLF if it has none. With bodyLines >= 0 only the header,
// the blank line and bodyLines lines of the body are sent (TOP).
func (s *session) sendMessage(data []byte, bodyLines int) {
	s.srv.trace(s.id, "S:", fmt.Sprintf("(message data, %d octets stored)", len(data)))
	inHeader, n := true, 0
	for len(data) > 0 && s.werr == nil {
		if !inHeader && bodyLines >= 0 && n >= bodyLines {
			break
		}
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if inHeader {
			inHeader = len(line) > 0
		} else {
			n++
		}
		if len(line) > 0 && line[0] == '.' {
			s.writeString(".")
		}
		s.write(line)
		s.writeString("\r\n")
	}
	s.end3()
}

// wireSize is the size of data as sendMessage sends it, without
// dot-stuffing and terminator.
func wireSize(data []byte) int {
	size := 0
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		size += len(bytes.TrimSuffix(line, []byte("\r"))) + 2
	}
	return size
}

// limitWriter passes the first n bytes to w, then fails with errCut.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) <= l.n {
		l.n -= len(p)
		n, err := l.w.Write(p)
		if err == nil && l.n == 0 {
			err = errCut
		}
		return n, err
	}
	n, err := l.w.Write(p[:l.n])
	l.n -= n
	if err == nil {
		err = errCut
	}
	return n, err
}

// dripWriter sends one byte per delay.
type dripWriter struct {
	s     *session
	delay time.Duration
}

func (d *dripWriter) Write(p []byte) (int, error) {
	t := time.NewTimer(d.delay)
	defer t.Stop()
	for i, b := range p {
		d.s.bw.WriteByte(b)
		if err := d.s.bw.Flush(); err != nil {
			return i, err
		}
		t.Reset(d.delay)
		select {
		case <-t.C:
		case <-d.s.srv.done:
			return i + 1, errClosed
		}
	}
	return len(p), nil
}
