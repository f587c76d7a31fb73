package config

import (
	"net"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// STARTTLS policies of an smtp destination (Destination.SMTPTLS, key deliver.smtp.tls).
const (
	// SMTPTLSVerify: STARTTLS is required and the server's certificate must verify (the system's
	// trust anchors plus ca_file) for the host of the address; otherwise nothing is sent (exit 69).
	// The default for any address that is not loopback.
	SMTPTLSVerify = "verify"
	// SMTPTLSOpportunistic: STARTTLS when the server offers it, its certificate not verified (RFC
	// 7435), plaintext when it does not: for a local MTA with a self-signed certificate. The default
	// for a loopback address (localhost, 127.0.0.0/8, ::1) and a unix socket; elsewhere only when the
	// profile says tls: opportunistic.
	SMTPTLSOpportunistic = "opportunistic"
)

// smtpTLS parses deliver.smtp.tls and deliver.smtp.ca_file.
func (p *parser) smtpTLS(e entry, sc scope, key, name string, d *Destination) bool {
	s, ok := p.str(entry{key: &yaml.Node{Value: key}, val: e.val}, sc)
	if !ok {
		return false
	}
	switch name {
	case "tls":
		if s != SMTPTLSVerify && s != SMTPTLSOpportunistic {
			p.errAt(e.val, sc, key, "%q is not a STARTTLS policy: verify (the certificate must verify; the default, except to a loopback address) or opportunistic (not verified)", s)
			return false
		}
		d.SMTPTLS = s
	case "ca_file":
		path, ok := p.absPath(entry{key: &yaml.Node{Value: key}, val: e.val}, sc, s)
		if !ok {
			return false
		}
		if fi, err := os.Stat(path); err != nil {
			p.errAt(e.val, sc, key, "%s", errText(err))
			return false
		} else if fi.IsDir() {
			p.errAt(e.val, sc, key, "%s is a directory; name a PEM file", path)
			return false
		}
		d.SMTPCA = path
	}
	return true
}

// smtpTLSDefault settles the STARTTLS policy once the whole smtp mapping is read: verify, unless the
// address is loopback or a unix socket (opportunistic), or the profile chose.
func (p *parser) smtpTLSDefault(e entry, sc scope, key string, d *Destination) bool {
	switch {
	case d.SMTPTLS == SMTPTLSOpportunistic && d.SMTPCA != "":
		p.errAt(e.val, sc, key+".ca_file", "ca_file is for tls: verify; with tls: opportunistic the certificate is not verified")
		return false
	case d.SMTPTLS != "":
	case d.SMTPCA != "" || !loopbackAddress(d.Address):
		d.SMTPTLS = SMTPTLSVerify
	default:
		d.SMTPTLS = SMTPTLSOpportunistic
	}
	return true
}

// loopbackAddress reports whether an lmtp/smtp address stays on this machine: a unix socket, or a host
// that is localhost or a loopback IP literal. Names are not resolved: what a name resolves to can
// change, what the profile says cannot.
func loopbackAddress(addr string) bool {
	if strings.HasPrefix(addr, "unix:") {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
