package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/config/oauth2test"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test/dovecot"
)

// TestIMAPOAuth2Deliver: a destination with oauth2: is logged in with `popfetch oauth2 login
// --deliver ACCOUNT` (its own token, ACCOUNT@deliver), and sync then appends with XOAUTH2. Dovecot
// checks the bearer token as bob's password.
func TestIMAPOAuth2Deliver(t *testing.T) {
	t.Parallel()
	const token = "imap-access-token-5f0c1d"
	auth := oauth2test.NewServer(t, &oauth2test.Options{AccessToken: token})
	d := dovecot.Start(t, &dovecot.Options{IMAP: true, OAuth: true, Users: []dovecot.User{{Name: "bob", Password: token}}})
	pop := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: numbered(3)})
	s := oauthNewSetup(t, auth, pop, "xoauth2")
	popCA := filepath.Join(s.dir, "ca.pem")
	imapCA := filepath.Join(s.dir, "imap-ca.pem")
	if err := os.WriteFile(imapCA, d.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(d.IMAPSAddr)
	text := fmt.Sprintf(`state_dir: %s
accounts:
  work:
    host: 127.0.0.1
    port: %d
    ca_file: %s
    user: alice
    password: secret
    timeout: 20s
    received_header: false
    deliver:
      imap:
        host: 127.0.0.1
        port: %s
        ca_file: %s
        user: bob
        timeout: 20s
        oauth2: {provider: custom, client_id: popfetch-test, auth_url: %s, token_url: %s, device_auth_url: %s}
`, s.stateDir, pop.Port(), popCA, port, imapCA, auth.AuthURL(), auth.TokenURL(), auth.DeviceAuthURL())
	if err := os.WriteFile(s.path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	r := s.run("sync")
	if r.code != exitNoPerm || !strings.Contains(r.stderr, "popfetch oauth2 login --deliver work") {
		t.Fatalf("sync before login: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if n := len(pop.Messages()); n != 3 {
		t.Fatalf("the POP3 server holds %d messages after a refused login, want 3", n)
	}
	r = s.login("--deliver")
	tokenFile := filepath.Join(s.stateDir, "work@deliver.oauth2")
	if r.code != 0 || !strings.Contains(r.stderr, `logged in: account "work@deliver"`) {
		t.Fatalf("login --deliver: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", fi, err)
	}
	r = s.run("sync")
	if r.code != 0 {
		t.Fatalf("sync after login: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if got := d.IMAPMailbox(t, "bob", token, "INBOX"); len(got) != 3 {
		t.Errorf("the IMAP mailbox holds %d messages, want 3", len(got))
	}
	if n := len(pop.Messages()); n != 0 {
		t.Errorf("the POP3 server still holds %d messages", n)
	}
	if strings.Contains(r.stdout+r.stderr, token) {
		t.Errorf("the token appears in the output")
	}
}
