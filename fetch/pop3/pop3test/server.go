package pop3test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xdg-go/scram"
)

// Message is one message of the maildrop.
type Message struct {
	// UID is the unique-id listing (RFC 1939 UIDL) of the message, sent
	// verbatim. When empty, the server assigns "uid-<n>", n being the
	// 1-based position of the message in the list it was given.
	UID string
	// Data is the message content as stored; see the package documentation
	// for how it is sent. The server never modifies it.
	Data []byte
}

// TLSMode selects how the server uses TLS.
type TLSMode int

const (
	// Plain is a plain-text listener without STLS.
	Plain TLSMode = iota
	// ImplicitTLS is a listener speaking TLS from the first byte (POP3S).
	ImplicitTLS
	// STLS is a plain-text listener that advertises and accepts STLS
	// (RFC 2595), unless Options.NoSTLS is set.
	STLS
)

// String returns the name of the mode.
func (m TLSMode) String() string {
	switch m {
	case Plain:
		return "Plain"
	case ImplicitTLS:
		return "ImplicitTLS"
	case STLS:
		return "STLS"
	}
	return "TLSMode(" + strconv.Itoa(int(m)) + ")"
}

// Options configures a Server. The zero value is a plain-text server for
// user "alice" with password "secret", an empty maildrop and every
// capability.
type Options struct {
	// TLS selects plain text, implicit TLS or STLS.
	TLS TLSMode
	// User and Password are the only valid credentials; they default to
	// "alice" and "secret".
	User, Password string
	// Token is the OAuth bearer token accepted by XOAUTH2 and OAUTHBEARER;
	// it defaults to Password.
	Token string
	// Messages is the initial maildrop.
	Messages []Message

	// NoCAPA disables the CAPA command (RFC 2449).
	NoCAPA bool
	// NoUIDL disables the UIDL command and capability.
	NoUIDL bool
	// NoTOP disables the TOP command and capability.
	NoTOP bool
	// NoPipelining removes the PIPELINING capability. The server still
	// answers pipelined commands.
	NoPipelining bool
	// NoUSER disables USER/PASS and the USER capability.
	NoUSER bool
	// NoAPOP removes the APOP timestamp from the greeting and disables APOP.
	NoAPOP bool
	// APOPNoSecret keeps the APOP timestamp in the greeting but refuses every APOP with
	// an [AUTH] refusal, like GNU mailutils' pop3d for users without an APOP secret.
	APOPNoSecret bool
	// LoginHandoff behaves like Courier's pop3login, which authenticates and then execs pop3d: at a
	// successful login, whatever the client sent behind its last login command before the final reply
	// is lost. A client that pipelines commands across the login then waits for replies that never
	// come.
	LoginHandoff bool
	// NoSTLS removes the STLS capability and refuses the command even in
	// STLS mode, as a STARTTLS-stripping attacker would.
	NoSTLS bool
	// NoRespCodes removes the RESP-CODES and AUTH-RESP-CODE capabilities and
	// the response codes the server would otherwise send. Fault replies are
	// sent as given.
	NoRespCodes bool

	// SASL lists the SASL mechanisms offered by AUTH (RFC 5034). Nil means
	// all of SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN CRAM-MD5 XOAUTH2
	// OAUTHBEARER; an empty non-nil slice removes the SASL capability and
	// disables AUTH.
	SASL []string
	// UTF8 advertises "UTF8 USER" and accepts the UTF8 command (RFC 6856).
	UTF8 bool
	// Expire and LoginDelay, when non-empty, are advertised as
	// "EXPIRE <Expire>" and "LOGIN-DELAY <LoginDelay>" (RFC 2449).
	Expire, LoginDelay string

	// Certificate replaces the certificate issued by the default test CA.
	Certificate *tls.Certificate
	// Faults are applied to matching commands; see Fault.
	Faults []Fault
	// Trace, when set, receives a log of every line received and sent
	// (message bodies are summarised).
	Trace io.Writer
	// Gate, when set, holds every accepted connection before anything is
	// sent on it (the TLS handshake of implicit TLS, the greeting) until Gate
	// is closed or the server closes: a test can keep many clients connected
	// at once, whatever the machine's speed.
	Gate <-chan struct{}
}

// allSASL returns the mechanisms offered when Options.SASL is nil, in the
// order the CAPA reply lists them.
func allSASL() []string {
	return []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"}
}

// Action is what a Fault does to the reply to a matching command.
type Action int

const (
	// Reply sends Fault.Reply (one line, CRLF appended) instead of the
	// normal response. The command is not executed.
	Reply Action = iota
	// ReplyRaw sends Fault.Reply verbatim (it may contain CRLFs; nothing is
	// appended) instead of the normal response. The command is not executed.
	ReplyRaw
	// Drop closes the connection instead of executing the command.
	Drop
	// DropAfter executes the command, sends the first Fault.Bytes bytes of
	// its response, then closes the connection. With QUIT, the deletions are
	// committed even though the client sees no (or a partial) +OK.
	DropAfter
	// Stall sends nothing and does not execute the command; the connection
	// stays open (input is read and discarded) until the client or
	// Server.Close closes it.
	Stall
	// StallAfter executes the command, sends the first Fault.Bytes bytes of
	// its response, then stalls like Stall.
	StallAfter
	// Drip executes the command and sends its response one byte per
	// Fault.Delay.
	Drip
	// Oversized sends a status line of Fault.Bytes octets ("+OK " followed
	// by 'x's, then CRLF) instead of executing the command.
	Oversized
	// WrongSize applies to LIST only: it reports Fault.Bytes as the size of
	// the matched messages. With Fault.Arg set it matches "LIST <Arg>" and
	// changes only message <Arg> in a LIST without argument.
	WrongSize
	// NoTerminator (RETR, TOP, LIST, UIDL) executes the command, sends its
	// multi-line response without the final ".", then stalls.
	NoTerminator
	// Inflate (RETR) replaces the command: it answers "+OK" and a generated message of Fault.Bytes
	// octets on the wire (a Subject line, a blank line, then lines of 'x'), written as it is
	// generated, so that a test can send 100 MB without holding it. LIST still reports the stored
	// size (or WrongSize's).
	Inflate
)

// String returns the name of the action.
func (a Action) String() string {
	const names = "Reply ReplyRaw Drop DropAfter Stall StallAfter Drip Oversized WrongSize NoTerminator Inflate"
	if a >= 0 && a <= Inflate {
		return strings.Fields(names)[a]
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Fault makes the server misbehave on matching commands. A command matches
// when its keyword equals Command and, if Arg is set, its first argument
// equals Arg. Match counters are kept per fault for the life of the server,
// across sessions. When several faults are active for a command, the first
// in Options.Faults applies. The lines a client sends during an AUTH
// exchange are not commands; a fault on AUTH covers the whole exchange.
//
// Reply, ReplyRaw, Drop, Stall and Oversized replace the command: it has no
// effect (a replaced DELE deletes nothing, a replaced PASS logs nobody in).
// The other actions execute it and alter only what is sent. A GREETING
// replaced by a "-ERR" reply is followed by the server closing the
// connection; a replaced greeting carries an APOP timestamp only if the
// reply contains one ("<...>").
type Fault struct {
	// Command is the upper-case command keyword ("RETR", "PASS", "AUTH",
	// ...) or "GREETING" for the server greeting of each session.
	Command string
	// Arg, when set, restricts the fault to commands whose first argument
	// equals Arg (for example the message number "3").
	Arg string
	// After skips the first After matching commands.
	After int
	// Count limits the fault to Count matches; 0 means every match after
	// the first After.
	Count int
	// Action is what the fault does.
	Action Action
	// Reply is the text sent by Reply and ReplyRaw.
	Reply string
	// Bytes is the byte count of DropAfter, StallAfter and Oversized, and
	// the size reported by WrongSize.
	Bytes int
	// Delay is the pause between bytes for Drip.
	Delay time.Duration
}

// Line is one line received by the server.
type Line struct {
	// Text is the line as received, without its line ending.
	Text string
	// TLS reports whether the line arrived over TLS.
	TLS bool
	// Session is the 1-based number of the connection it arrived on.
	Session int
}

// Server is a POP3 server listening on a loopback address. Its methods are
// safe for concurrent use.
type Server struct {
	opts    Options
	ln      net.Listener
	addr    *net.TCPAddr
	cert    tls.Certificate
	ca      *CA
	tlsConf *tls.Config
	mechs   []string
	token   string
	scram1  *scram.Server
	scram2  *scram.Server
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup
	once    sync.Once // for Close
	traceMu sync.Mutex

	mu       sync.Mutex // guards the fields below
	msgs     []stored
	nextID   int
	conns    map[net.Conn]struct{}
	received []Line
	sessions int
	hits     []int // matches per fault
}

// stored is a maildrop message with its size on the wire and an identity
// that, unlike the UID, is unique.
type stored struct {
	Message
	size int
	id   int
}

// TB is the part of testing.TB that NewServer uses. It is declared here so
// that the package does not import testing: `popfetch demo` links the server,
// and a shipped binary should not carry package testing.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// NewServer starts a server on 127.0.0.1:0 with opts (nil means defaults)
// and registers Close with t.Cleanup. It calls t.Fatal if the server cannot
// start.
func NewServer(t TB, opts *Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a server on 127.0.0.1:0 with opts (nil means defaults). The
// caller must call Close.
func Start(opts *Options) (*Server, error) {
	s := &Server{done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	if opts != nil {
		s.opts = *opts
		s.opts.Faults = append([]Fault(nil), opts.Faults...)
		if opts.SASL != nil {
			s.opts.SASL = append([]string{}, opts.SASL...)
		}
	}
	o := &s.opts
	if o.User == "" {
		o.User = "alice"
	}
	if o.Password == "" {
		o.Password = "secret"
	}
	s.token = o.Token
	if s.token == "" {
		s.token = o.Password
	}
	s.mechs = allSASL()
	if o.SASL != nil {
		s.mechs = nil
		for _, m := range o.SASL {
			s.mechs = append(s.mechs, strings.ToUpper(m))
		}
	}
	s.hits = make([]int, len(o.Faults))
	s.SetMessages(o.Messages)
	o.Messages = nil

	pki, err := defaultCA()
	if err != nil {
		return nil, err
	}
	s.ca, s.cert = pki.ca, pki.cert
	if o.Certificate != nil {
		s.cert = *o.Certificate
	}
	s.tlsConf = &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12}

	if s.scram1, err = newSCRAM(scram.SHA1, o.User, o.Password); err != nil {
		return nil, err
	}
	if s.scram2, err = newSCRAM(scram.SHA256, o.User, o.Password); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pop3test: %w", err)
	}
	s.ln = ln
	s.addr = ln.Addr().(*net.TCPAddr)
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		s.mu.Lock()
		select {
		case <-s.done:
			s.mu.Unlock()
			c.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.sessions++
		id := s.sessions
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			if s.opts.Gate != nil {
				select {
				case <-s.opts.Gate:
				case <-s.done:
					return
				}
			}
			newSession(s, c, id).run()
		}()
	}
}

// Close closes the listener and every connection, and waits until every
// goroutine of the server has returned. It may be called more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		close(s.done)
		s.ln.Close()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
}

// Addr returns the listening address, "127.0.0.1:port".
func (s *Server) Addr() string { return s.addr.String() }

// Host returns the listening IP address, "127.0.0.1".
func (s *Server) Host() string { return s.addr.IP.String() }

// Port returns the listening port.
func (s *Server) Port() int { return s.addr.Port }

// CACertPool returns a new pool holding the default test CA, which issued
// the server's certificate for 127.0.0.1, ::1 and localhost (unless
// Options.Certificate replaced it).
func (s *Server) CACertPool() *x509.CertPool { return s.ca.Pool() }

// CACertPEM returns the default test CA certificate in PEM form.
func (s *Server) CACertPEM() []byte { return s.ca.PEM() }

// Fingerprint returns the SHA-256 digest of the DER form of the leaf
// certificate the server presents.
func (s *Server) Fingerprint() [32]byte {
	if len(s.cert.Certificate) == 0 {
		return [32]byte{}
	}
	return sha256.Sum256(s.cert.Certificate[0])
}

// CertificatePEM returns the leaf certificate the server presents, in PEM
// form.
func (s *Server) CertificatePEM() []byte {
	if len(s.cert.Certificate) == 0 {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.cert.Certificate[0]})
}

// Messages returns the maildrop now. Deletions are applied only when a
// session ends with QUIT in the TRANSACTION state (RFC 1939 UPDATE state).
// The Data slices are shared with the server and must not be modified.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = m.Message
	}
	return out
}

// SetMessages replaces the maildrop. Sessions already in the TRANSACTION
// state keep the snapshot they took at login. Empty UIDs become "uid-<n>".
// The Data slices are kept, not copied, and must not be modified afterwards.
func (s *Server) SetMessages(msgs []Message) {
	st := make([]stored, len(msgs))
	for i, m := range msgs {
		if m.UID == "" {
			m.UID = "uid-" + strconv.Itoa(i+1)
		}
		st[i] = stored{Message: m, size: wireSize(m.Data)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range st {
		s.nextID++
		st[i].id = s.nextID
	}
	s.msgs = st
}

// Received returns the text of every line received, over all sessions, in
// order: commands and SASL responses, as typed.
func (s *Server) Received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.received))
	for i, l := range s.received {
		out[i] = l.Text
	}
	return out
}

// ReceivedLines is like Received, with whether each line arrived over TLS
// and on which session.
func (s *Server) ReceivedLines() []Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Line(nil), s.received...)
}

// Sessions returns the number of connections accepted so far.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// snapshot returns the maildrop for a session entering TRANSACTION state.
func (s *Server) snapshot() []stored {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stored(nil), s.msgs...)
}

// commit removes the messages with the given ids from the maildrop.
func (s *Server) commit(ids map[int]bool) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.msgs[:0:0]
	for _, m := range s.msgs {
		if !ids[m.id] {
			kept = append(kept, m)
		}
	}
	s.msgs = kept
}

func (s *Server) record(l Line) {
	s.mu.Lock()
	s.received = append(s.received, l)
	s.mu.Unlock()
}

// fault returns the fault that applies to a command, counting the match for
// every fault whose command and argument match. hasArg reports whether the
// command had an argument at all.
func (s *Server) fault(keyword, arg string, hasArg bool) *Fault {
	if len(s.opts.Faults) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *Fault
	for i := range s.opts.Faults {
		f := &s.opts.Faults[i]
		if !strings.EqualFold(f.Command, keyword) {
			continue
		}
		if f.Arg != "" && f.Arg != arg {
			// A WrongSize fault for "LIST n" also applies to the full
			// listing, where it changes message n only.
			if !(f.Action == WrongSize && !hasArg) {
				continue
			}
		}
		n := s.hits[i]
		s.hits[i]++
		if n < f.After || (f.Count > 0 && n-f.After >= f.Count) {
			continue
		}
		if found == nil {
			found = f
		}
	}
	return found
}

func (s *Server) trace(id int, dir, line string) {
	if s.opts.Trace == nil {
		return
	}
	s.traceMu.Lock()
	defer s.traceMu.Unlock()
	fmt.Fprintf(s.opts.Trace, "pop3test[%d] %s %s\n", id, dir, line)
}

func newSCRAM(h scram.HashGeneratorFcn, user, password string) (*scram.Server, error) {
	c, err := h.NewClientUnprepped(user, password, "")
	if err != nil {
		return nil, fmt.Errorf("pop3test: SCRAM: %w", err)
	}
	creds := c.GetStoredCredentials(scram.KeyFactors{Salt: "pop3test-salt", Iters: 4096})
	return h.NewServer(func(name string) (scram.StoredCredentials, error) {
		if name != user {
			return scram.StoredCredentials{}, fmt.Errorf("unknown user %q", name)
		}
		return creds, nil
	})
}
