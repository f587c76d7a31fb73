package pop3test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/textproto"
	"slices"
	"testing"
	"time"
)

// starttls sends STLS and upgrades the client connection.
func (c *client) starttls(conf *tls.Config) *tls.Conn {
	c.t.Helper()
	c.expect("STLS", "+OK Begin TLS negotiation")
	tc := tls.Client(c.conn, conf)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.tp = textproto.NewConn(tc)
	return tc
}

func TestSTLS(t *testing.T) {
	s := NewServer(t, &Options{TLS: STLS, Messages: msgs("hi\n")})
	c := dial(t, s).greet()
	if !slices.Contains(c.multi("CAPA"), "STLS") {
		t.Fatal("STLS not advertised")
	}
	c.expect("USER alice", "+OK")
	tc := c.starttls(&tls.Config{RootCAs: s.CACertPool(), ServerName: "127.0.0.1"})
	if got := sha256.Sum256(tc.ConnectionState().PeerCertificates[0].Raw); got != s.Fingerprint() {
		t.Error("Fingerprint() does not match the certificate presented")
	}
	if slices.Contains(c.multi("CAPA"), "STLS") {
		t.Error("STLS advertised after TLS")
	}
	c.expect("STLS", "-ERR TLS already active")
	c.expect("PASS secret", "-ERR no USER given") // STLS reset the state
	c.login()
	c.expect("STAT", "+OK 1 4")
	want := []Line{
		{"CAPA", false, 1}, {"USER alice", false, 1}, {"STLS", false, 1},
		{"CAPA", true, 1}, {"STLS", true, 1}, {"PASS secret", true, 1},
		{"USER alice", true, 1}, {"PASS secret", true, 1}, {"STAT", true, 1},
	}
	if got := s.ReceivedLines(); !slices.Equal(got, want) {
		t.Errorf("ReceivedLines():\n got %v\nwant %v", got, want)
	}

	// localhost is in the certificate too; the PEM form works as a pool.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM()) {
		t.Fatal("CACertPEM() is not PEM")
	}
	c2 := dial(t, s).greet()
	c2.starttls(&tls.Config{RootCAs: pool, ServerName: "localhost"})
	c2.login()
}

func TestSTLSRefused(t *testing.T) {
	for _, opts := range []Options{{TLS: STLS, NoSTLS: true}, {TLS: Plain}, {TLS: ImplicitTLS}} {
		s := NewServer(t, &opts)
		var c *client
		if opts.TLS == ImplicitTLS {
			c = dialTLS(t, s, &tls.Config{RootCAs: s.CACertPool(), ServerName: "127.0.0.1"})
		} else {
			c = dial(t, s)
		}
		c.greet()
		c.expect("STLS", "-ERR unknown command")
		if slices.Contains(c.multi("CAPA"), "STLS") {
			t.Errorf("%v: STLS advertised", opts)
		}
	}
}

func TestImplicitTLS(t *testing.T) {
	s := NewServer(t, &Options{TLS: ImplicitTLS})
	c := dialTLS(t, s, &tls.Config{RootCAs: s.CACertPool(), ServerName: "127.0.0.1"}).greet()
	c.login()
	c.expect("QUIT", "+OK pop3test signing off (0 messages deleted)")
	c.expectEOF("")
	if got := s.ReceivedLines(); !got[0].TLS || got[0].Session != 1 {
		t.Errorf("ReceivedLines()[0] = %+v", got[0])
	}
}

func TestCertificates(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if block, _ := pem.Decode(ca.PEM()); block == nil || block.Type != "CERTIFICATE" {
		t.Fatal("CA.PEM() is not a PEM certificate")
	}
	good, err := ca.Issue([]string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := ca.Issue([]string{"127.0.0.1"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	wrongHost, _ := ca.Issue([]string{"mail.example.org"}, now.Add(-time.Hour), now.Add(time.Hour))

	tests := []struct {
		name string
		cert tls.Certificate
		pool *x509.CertPool
		ok   func(error) bool
	}{
		{"good", good, ca.Pool(), func(err error) bool { return err == nil }},
		{"expired", expired, ca.Pool(), func(err error) bool {
			var e x509.CertificateInvalidError
			return errors.As(err, &e) && e.Reason == x509.Expired
		}},
		{"wrong host", wrongHost, ca.Pool(), func(err error) bool {
			var e x509.HostnameError
			return errors.As(err, &e)
		}},
		{"unknown CA", good, x509.NewCertPool(), func(err error) bool {
			var e x509.UnknownAuthorityError
			return errors.As(err, &e)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(t, &Options{TLS: ImplicitTLS, Certificate: &tt.cert})
			if s.Fingerprint() != sha256.Sum256(tt.cert.Certificate[0]) {
				t.Error("Fingerprint() is not that of Options.Certificate")
			}
			raw, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(testTimeout))
			err = tls.Client(raw, &tls.Config{RootCAs: tt.pool, ServerName: "127.0.0.1"}).Handshake()
			if !tt.ok(err) {
				t.Errorf("handshake: %v", err)
			}
		})
	}
}
