package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSMTPTLSPolicy (issue 12.8): STARTTLS to an smtp destination is verified unless the address is
// loopback or the profile says tls: opportunistic.
func TestSMTPTLSPolicy(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ smtp, want, ca string }{
		{"{address: mail.example.com:25, recipient: a@b}", SMTPTLSVerify, ""},
		{"{address: 192.0.2.1:25, recipient: a@b}", SMTPTLSVerify, ""},
		{"{address: localhost.example.com:25, recipient: a@b}", SMTPTLSVerify, ""},
		{"{address: localhost:25, recipient: a@b}", SMTPTLSOpportunistic, ""},
		{"{address: 127.0.0.1:2525, recipient: a@b}", SMTPTLSOpportunistic, ""},
		{"{address: '[::1]:25', recipient: a@b}", SMTPTLSOpportunistic, ""},
		{"{address: unix:/run/smtp, recipient: a@b}", SMTPTLSOpportunistic, ""},
		{"{address: mail.example.com:25, recipient: a@b, tls: opportunistic}", SMTPTLSOpportunistic, ""},
		{"{address: localhost:25, recipient: a@b, tls: verify}", SMTPTLSVerify, ""},
		{"{address: 127.0.0.1:25, recipient: a@b, ca_file: " + ca + "}", SMTPTLSVerify, ca},
	} {
		cfg := mustLoad(t, "accounts:\n  a: {host: h, user: u, password_env: X, deliver: {smtp: "+c.smtp+"}}\n")
		d := cfg.Accounts[0].Deliver
		if d.SMTPTLS != c.want || d.SMTPCA != c.ca {
			t.Errorf("%s: tls %q ca %q, want %q %q", c.smtp, d.SMTPTLS, d.SMTPCA, c.want, c.ca)
		}
	}
	for _, c := range []struct{ deliver, msg string }{
		{"{smtp: {address: h:25, recipient: a@b, tls: maybe}}", `"maybe" is not a STARTTLS policy`},
		{"{smtp: {address: h:25, recipient: a@b, tls: opportunistic, ca_file: " + ca + "}}", "ca_file is for tls: verify"},
		{"{lmtp: {address: h:24, recipient: a@b, tls: verify}}", `"tls"`},
	} {
		_, err := parse("x.yaml", []byte("accounts:\n  a: {host: h, user: u, password_env: X, deliver: "+c.deliver+"}\n"), 0o600, func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %q", c.deliver, err, c.msg)
		}
	}
}
