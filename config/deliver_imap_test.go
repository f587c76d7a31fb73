package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestReadmeDocumentsIMAPKeys(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range imapOwnKeys {
		if !strings.Contains(string(example), k+":") {
			t.Errorf("the example does not show the key %q", k)
		}
		if !strings.Contains(string(readme), "`"+k+"`") {
			t.Errorf("the README does not document the key `%s`", k)
		}
	}
}

func TestIMAPDestination(t *testing.T) {
	t.Setenv("HOME", "/home/alice")
	cfg := mustLoad(t, `
state_dir: /state
accounts:
  isp:
    host: pop.isp.example
    user: alice
    deliver:
      imap:
        host: imap.gmail.com
        user: alice@gmail.com
        password_env: GMAIL_APP_PASSWORD
        flags: ['\seen', $Imported]
        create: true
        internal_date: header
  office:
    host: pop.isp.example
    user: alice
    deliver:
      imap:
        host: outlook.office365.com
        tls: starttls
        user: alice@example.com
        oauth2: {provider: microsoft, client_id: abc}
  plain:
    host: pop.isp.example
    user: alice
    deliver: {maildir: /m}
`)
	isp := cfg.Account("isp")
	d := isp.Deliver.IMAP
	if isp.Deliver.Kind != DeliverIMAP || d == nil || d.Mailbox != "INBOX" || !d.Create || d.InternalDate != IMAPDateHeader ||
		!reflect.DeepEqual(d.Flags, []string{`\Seen`, "$Imported"}) {
		t.Fatalf("isp deliver: %+v %+v", isp.Deliver, d)
	}
	da := isp.DeliveryAccount()
	if da == nil || da.Name != "isp@deliver" || da.Host != "imap.gmail.com" || da.Port != 993 || da.TLS != TLSImplicit ||
		da.User != "alice@gmail.com" || da.Password.Kind != SourceEnv || da.Password.Env != "GMAIL_APP_PASSWORD" ||
		da.Timeout != DefaultTimeout || da.OAuth2TokenFile() != "/state/isp@deliver.oauth2" {
		t.Fatalf("isp delivery account: %+v", da)
	}
	od := cfg.Account("office").DeliveryAccount()
	if od.Port != 143 || od.Auth != "xoauth2" || od.Password.Kind != SourceOAuth2 ||
		!reflect.DeepEqual(od.OAuth2.Scopes, []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}) {
		t.Fatalf("office delivery account: %+v %+v", od, od.OAuth2)
	}
	if cfg.Account("plain").DeliveryAccount() != nil {
		t.Fatal("a maildir has a delivery account")
	}
	if got := isp.Deliver.String(); got != `imap alice@gmail.com at imap.gmail.com:993 (implicit), mailbox INBOX (created when missing), flags \Seen $Imported, password (env GMAIL_APP_PASSWORD)` {
		t.Errorf("String() = %q", got)
	}
}
