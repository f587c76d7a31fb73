package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emersion/go-smtp"
)

// relayServer is an in-process SMTP or LMTP server (go-smtp's own) recording what it accepts.
type relayServer struct {
	Addr string // "host:port" or "unix:/path"

	mu       sync.Mutex
	msgs     []relayMsg
	sessions int
	rcptErr  map[string]error // refusal at RCPT, per recipient
	dataErr  map[string]error // refusal after the final dot, per recipient
}

type relayMsg struct {
	from, to string
	data     []byte
	tls      bool
}

func startRelayServer(t *testing.T, lmtp bool, tlsConfig *tls.Config) *relayServer {
	t.Helper()
	rs := &relayServer{rcptErr: map[string]error{}, dataErr: map[string]error{}}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		rs.mu.Lock()
		rs.sessions++
		rs.mu.Unlock()
		_, isTLS := c.TLSConnectionState()
		return &relaySession{rs: rs, tls: isTLS}, nil
	}))
	s.Domain = "localhost"
	s.LMTP = lmtp
	s.TLSConfig = tlsConfig
	s.ReadTimeout, s.WriteTimeout = time.Minute, time.Minute
	var l net.Listener
	var err error
	if lmtp {
		dir, derr := os.MkdirTemp("", "popfetch-lmtp") // short: unix socket paths are limited
		if derr != nil {
			t.Fatal(derr)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		sock := filepath.Join(dir, "lmtp")
		l, err = net.Listen("unix", sock)
		rs.Addr = "unix:" + sock
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			rs.Addr = l.Addr().String()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(l); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return rs
}

func (rs *relayServer) sessionCount() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.sessions
}

func (rs *relayServer) messages() []relayMsg {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]relayMsg(nil), rs.msgs...)
}

type relaySession struct {
	rs    *relayServer
	tls   bool
	from  string
	rcpts []string
}

func (s *relaySession) Reset()        { s.from, s.rcpts = "", nil }
func (s *relaySession) Logout() error { return nil }
func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rs.mu.Lock()
	defer s.rs.mu.Unlock()
	if err := s.rs.rcptErr[to]; err != nil {
		return err
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	return s.LMTPData(r, nil)
}

func (s *relaySession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.rs.mu.Lock()
	defer s.rs.mu.Unlock()
	var last error
	for _, to := range s.rcpts {
		err := s.rs.dataErr[to]
		if status != nil {
			status.SetStatus(to, err)
		}
		if err != nil {
			last = err
			continue
		}
		s.rs.msgs = append(s.rs.msgs, relayMsg{from: s.from, to: to, data: data, tls: s.tls})
	}
	return last
}

func relayErr(t *testing.T, err error) *RelayError {
	t.Helper()
	var re *RelayError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want *RelayError", err, err)
	}
	return re
}

// wire is what a message looks like after DATA on the server: CRLF line endings, a final CRLF.
func wire(msg string) string {
	if msg != "" && !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	return strings.ReplaceAll(msg, "\n", "\r\n")
}

const msgDots = "Return-Path: <bob@example.org>\nSubject: dots\n\n.\n..two\n.x\nFrom x\nend"

// relayDest makes an LMTP or SMTP destination for rs.
func relayDest(t *testing.T, lmtp bool, addr, rcpt string, received bool) Destination {
	t.Helper()
	var d Destination
	var err error
	if lmtp {
		d, err = NewLMTP(addr, rcpt, LMTPOptions{ReceivedHeader: received, Timeout: 30 * time.Second})
	} else {
		d, err = NewSMTP(addr, rcpt, SMTPOptions{ReceivedHeader: received, Timeout: 30 * time.Second})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestRelayDelivery(t *testing.T) {
	for _, lmtp := range []bool{true, false} {
		name := map[bool]string{true: "LMTP", false: "SMTP"}[lmtp]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			rs := startRelayServer(t, lmtp, nil)
			rs.rcptErr["full@example.org"] = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
			rs.rcptErr["nobody@example.org"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
			rs.dataErr["quota@example.org"] = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Quota exceeded"}
			rs.dataErr["virus@example.org"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Rejected"}

			d := relayDest(t, lmtp, rs.Addr, "alice@example.org", false)
			p1 := dstDeliver(t, d, "u1", msgDots)
			dstDeliver(t, d, "u2", "Subject: crlf\r\n\r\nbody\r\n")
			var journaled []Pending
			if err := d.Commit(ctx, func(ps []Pending) error { journaled = ps; return nil }); err != nil {
				t.Fatal(err)
			}
			if len(journaled) != 2 || journaled[0] != p1 || p1.UID != "u1" {
				t.Errorf("journal got %+v", journaled)
			}
			got := rs.messages()
			if len(got) != 2 || string(got[0].data) != wire(msgDots) || got[0].from != "bob@example.org" ||
				got[0].to != "alice@example.org" || string(got[1].data) != "Subject: crlf\r\n\r\nbody\r\n" || got[1].from != "" {
				t.Fatalf("server got %+v", got)
			}
			if n := rs.sessionCount(); n != 1 {
				t.Errorf("%d sessions for two messages, want 1", n)
			}

			for _, tc := range []struct {
				rcpt  string
				code  int
				stage string
				temp  bool
			}{
				{"full@example.org", 452, "RCPT", true},
				{"nobody@example.org", 550, "RCPT", false},
				{"quota@example.org", 452, "DATA", true},
				{"virus@example.org", 550, "DATA", false},
			} {
				d := relayDest(t, lmtp, rs.Addr, tc.rcpt, false)
				_, err := d.Deliver(ctx, dstEnv("u3"), strings.NewReader(msgDots))
				re := relayErr(t, err)
				wantKind := map[bool]error{true: ErrTemporary, false: ErrRefused}[tc.temp]
				if re.Code != tc.code || re.Stage != tc.stage || re.Temporary() != tc.temp || !errors.Is(err, wantKind) {
					t.Errorf("%s: %v (code %d, stage %s, want %v)", tc.rcpt, err, re.Code, re.Stage, wantKind)
				}
				// The session survives a refusal: the next message goes through on it.
				if tc.rcpt == "full@example.org" {
					delete(rs.rcptErr, tc.rcpt)
					before := rs.sessionCount()
					dstDeliver(t, d, "u4", "Subject: retry\n\n")
					if rs.sessionCount() != before {
						t.Errorf("a refused RCPT cost the session")
					}
				}
			}
			if got := rs.messages(); len(got) != 3 || got[2].to != "full@example.org" {
				t.Errorf("server got %d messages after the refusals", len(got))
			}
		})
	}
}

func TestRelayStreamErrorSendsNoDot(t *testing.T) {
	for _, lmtp := range []bool{true, false} {
		rs := startRelayServer(t, lmtp, nil)
		d := relayDest(t, lmtp, rs.Addr, "alice@example.org", true)
		boom := errors.New("connection reset mid-RETR")
		_, err := d.Deliver(context.Background(), dstEnv("u1"),
			io.MultiReader(strings.NewReader("Subject: half\n\n"+strings.Repeat("line\n", 20000)), iotest.ErrReader(boom)))
		if !errors.Is(err, boom) {
			t.Fatalf("Deliver = %v, want the stream's error", err)
		}
		// Reconnects for the next one; the half message never reached a mailbox.
		dstDeliver(t, d, "u2", "Subject: whole\n\n")
		got := rs.messages()
		want := wire(ReceivedHeader(dstEnv("u2")) + "Subject: whole\n\n")
		if len(got) != 1 || string(got[0].data) != want {
			t.Fatalf("server got %+v", got)
		}
	}
}

func TestRelayConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := relayDest(t, false, addr, "alice@example.org", false)
	_, err = d.Deliver(context.Background(), dstEnv("u1"), strings.NewReader("x\n"))
	if re := relayErr(t, err); re.Code != 0 || !re.Temporary() || !errors.Is(err, ErrTemporary) || re.Stage != "connect" {
		t.Errorf("refused: %v", err)
	}
	if _, err := NewLMTP("unix:/x", "bad\r\nrcpt", LMTPOptions{}); err == nil {
		t.Error("recipient with CRLF accepted")
	}
}

func TestSMTPStartTLS(t *testing.T) {
	cert, pool := testCertificate(t)
	rs := startRelayServer(t, false, &tls.Config{Certificates: []tls.Certificate{cert}})
	d, err := NewSMTP(rs.Addr, "alice@example.org", SMTPOptions{StartTLS: true, TLSConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dstDeliver(t, d, "u1", msgDots)
	if got := rs.messages(); len(got) != 1 || !got[0].tls || string(got[0].data) != wire(msgDots) {
		t.Fatalf("server got %+v", got)
	}

	// Opportunistic STARTTLS does not verify (a local MTA's self-signed certificate); RequireTLS does.
	d, err = NewSMTP(rs.Addr, "alice@example.org", SMTPOptions{StartTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dstDeliver(t, d, "u2", "x\n")
	if got := rs.messages(); len(got) != 2 || !got[1].tls {
		t.Fatalf("opportunistic STARTTLS: server got %+v", got)
	}
	d, err = NewSMTP(rs.Addr, "alice@example.org", SMTPOptions{RequireTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.Deliver(context.Background(), dstEnv("u3"), strings.NewReader("x\n"))
	if re := relayErr(t, err); !errors.Is(err, ErrTLS) || re.Temporary() || len(rs.messages()) != 2 {
		t.Fatalf("RequireTLS with an unknown certificate: %v", err)
	}

	// RequireTLS against a server without STARTTLS: refused, nothing sent.
	plain := startRelayServer(t, false, nil)
	d, err = NewSMTP(plain.Addr, "alice@example.org", SMTPOptions{RequireTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.Deliver(context.Background(), dstEnv("u1"), strings.NewReader("x\n"))
	if relayErr(t, err); !errors.Is(err, ErrTLS) || len(plain.messages()) != 0 {
		t.Fatalf("RequireTLS without STARTTLS: %v", err)
	}
	// Opportunistic StartTLS against the same server: plain delivery.
	d, err = NewSMTP(plain.Addr, "alice@example.org", SMTPOptions{StartTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dstDeliver(t, d, "u1", "x\n")
	if got := plain.messages(); len(got) != 1 || got[0].tls {
		t.Fatalf("server got %+v", got)
	}
}

// testCertificate returns a self-signed certificate for localhost and a pool trusting it.
func testCertificate(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestSMTPCAFile: a ca_file that cannot be used is a configuration error, which names the key.
func TestSMTPCAFile(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("no certificate here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ca := range []string{junk, filepath.Join(dir, "missing.pem")} {
		_, err := NewSMTP("127.0.0.1:25", "alice@example.org", SMTPOptions{RequireTLS: true, CAFile: ca})
		if !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), "deliver.smtp.ca_file: ") {
			t.Errorf("ca_file %s: %v, want a configuration error naming deliver.smtp.ca_file", ca, err)
		}
	}
}
