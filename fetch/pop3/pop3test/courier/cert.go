package courier

import (
	"os"
	"slices"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test/realserver"
)

// writeCertificate makes a CA and a server certificate for localhost and 127.0.0.1 (ECDSA P-256),
// and writes the key and the certificate to path, as couriertls reads them (TLS_CERTFILE), readable
// only by the "courier" user, which reads it for STLS.
func (s *Server) writeCertificate(path string) error {
	c, err := realserver.NewCerts()
	if err != nil {
		return err
	}
	s.CAPEM, s.CAPool, s.Fingerprint = c.CAPEM, c.CAPool, c.Fingerprint
	if err := os.WriteFile(path, slices.Concat(c.KeyPEM, c.CertPEM), 0o600); err != nil {
		return err
	}
	return os.Lchown(path, s.mailUID, s.mailGID)
}
