package pop3

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"time"
)

// verifyOwnRootsFirst returns a tls.Config.VerifyConnection that checks the server's chain and name
// against the CAFile's certificates alone, and only when that fails against the system's trust
// anchors plus the CAFile's, as Options documents. The set of accepted certificates is the same as
// with RootCAs = system + CAFile; what changes is the cost: a private CA that verifies the server
// (the usual reason for ca_file) never makes the process read and parse the system bundle, which
// costs ~10 ms of CPU, a few hundred system calls and about a megabyte of heap per run.
// The caller sets InsecureSkipVerify, which this function replaces; its errors are what crypto/tls
// itself returns, a *tls.CertificateVerificationError.
func verifyOwnRootsFirst(own *x509.CertPool, pem []byte, serverName string, now func() time.Time) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: server sent no certificate")
		}
		if serverName == "" {
			// Without a name there is nothing to check the certificate against: refuse, as crypto/tls
			// itself does without ServerName.
			return errors.New("tls: no server name to verify the certificate against")
		}
		opts := x509.VerifyOptions{
			DNSName:       serverName,
			Roots:         own,
			Intermediates: x509.NewCertPool(),
		}
		if now != nil {
			opts.CurrentTime = now()
		}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err == nil {
			return nil
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM(pem)
		opts.Roots = pool
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		return nil
	}
}
