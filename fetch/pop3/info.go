package pop3

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"time"
)

// ServerInfo is what a server shows before a login: its greeting, its capabilities and its TLS
// certificate.
type ServerInfo struct {
	Greeting     string              `json:"greeting"`
	Capabilities map[string][]string `json:"capabilities"` // nil: the server does not answer CAPA
	TLS          *TLSInfo            `json:"tls,omitempty"`
}

// TLSInfo describes a connection's TLS and the server's certificate.
type TLSInfo struct {
	Version     string    `json:"version"`
	Cipher      string    `json:"cipher"`
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	DNSNames    []string  `json:"dns_names,omitempty"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Fingerprint string    `json:"fingerprint"` // FormatFingerprint of the certificate's SHA-256
}

// Info returns what the server has shown so far and its capabilities (CAPA, which a server may
// refuse: then Capabilities is nil). It sends nothing else, so it needs no password.
func (c *Client) Info(ctx context.Context) (ServerInfo, error) {
	info := ServerInfo{Greeting: c.Greeting()}
	if caps, err := c.Capa(ctx); err == nil {
		info.Capabilities = caps.All
	} else if !IsRefusal(err) {
		return info, err
	}
	if cs, ok := c.TLSConnectionState(); ok && len(cs.PeerCertificates) > 0 {
		cert := cs.PeerCertificates[0]
		info.TLS = &TLSInfo{
			Version: tls.VersionName(cs.Version), Cipher: tls.CipherSuiteName(cs.CipherSuite),
			Subject: cert.Subject.String(), Issuer: cert.Issuer.String(), DNSNames: cert.DNSNames,
			NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
			Fingerprint: FormatFingerprint(sha256.Sum256(cert.Raw)),
		}
	}
	return info, nil
}
