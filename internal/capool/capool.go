// Package capool builds the trust anchors of a connection whose profile names a ca_file: the
// system's roots plus the file's certificates.
package capool

import (
	"crypto/x509"
	"fmt"
	"os"
)

// SystemPlus returns the system's trust anchors (none if the system has no bundle) plus the PEM
// certificates of caFile. A file that cannot be read, or holds no PEM certificate, is an error.
func SystemPlus(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}
