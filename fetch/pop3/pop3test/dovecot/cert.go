package dovecot

import (
	"os"
	"path/filepath"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test/realserver"
)

// writeCertificates makes a CA and a server certificate for localhost and 127.0.0.1 (ECDSA P-256).
func (s *Server) writeCertificates() (certPath, keyPath string, err error) {
	c, err := realserver.NewCerts()
	if err != nil {
		return "", "", err
	}
	s.CAPEM, s.CAPool, s.Fingerprint = c.CAPEM, c.CAPool, c.Fingerprint

	certPath = filepath.Join(s.dir, "server.crt")
	keyPath = filepath.Join(s.dir, "server.key")
	if err := os.WriteFile(filepath.Join(s.dir, "ca.crt"), s.CAPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certPath, c.CertPEM, 0o644); err != nil {
		return "", "", err
	}
	// Read by Dovecot's config process, which runs as root (or as us).
	if err := os.WriteFile(keyPath, c.KeyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}
