package pop3

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/popfetch/popfetch/internal/certfp"
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
	fp, _, err := certfp.Parse(s)
	if err != nil {
		return fp, fmt.Errorf("pop3: invalid SHA-256 fingerprint %q: want 64 hex digits", s)
	}
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
