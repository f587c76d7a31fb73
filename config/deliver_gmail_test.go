package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/config/oauth2test"
)

// A gmail destination: defaults (api_url, user me, dateHeader, google, the scopes popfetch needs),
// max_size capped by Gmail's limit, and the derived account that holds its tokens.
func TestGmailDestination(t *testing.T) {
	cfg := mustLoad(t, `state_dir: /state
accounts:
  isp:
    host: pop.example.net
    user: alice
    password_env: ISP_PASSWORD
    deliver:
      gmail:
        labels: [ISP, Imported/2026]
        never_mark_spam: true
        oauth2: {client_id: 123.apps.googleusercontent.com, client_secret_env: GMAIL_SECRET}
  plain:
    host: pop.example.net
    user: bob
    password_env: ISP_PASSWORD
    max_size: 10MB
    deliver:
      gmail: {api_url: "http://127.0.0.1:8080/", internal_date_source: receivedTime, oauth2: {provider: google, client_id: x}}
`)
	a := cfg.Account("isp")
	g := a.Deliver.Gmail
	if a.Deliver.Kind != DeliverGmail || g == nil {
		t.Fatalf("deliver %+v", a.Deliver)
	}
	if g.APIURL != DefaultGmailAPIURL || g.User != "me" || g.InternalDateSource != GmailDateHeader || !g.NeverMarkSpam ||
		g.ProcessForCalendar || !slices.Equal(g.Labels, []string{"ISP", "Imported/2026"}) {
		t.Errorf("gmail %+v", g)
	}
	if o := g.OAuth2; o.Provider != OAuth2Google || o.TokenURL != googleTokenURL ||
		!slices.Equal(o.Scopes, []string{GmailScopeInsert, GmailScopeReadonly, GmailScopeLabels}) {
		t.Errorf("oauth2 %v", o)
	}
	if a.MaxSize != GmailMaxSize || a.OAuth2 != nil || a.Password.Kind != SourceEnv {
		t.Errorf("max_size %d, POP oauth2 %v, password %v", a.MaxSize, a.OAuth2, a.Password)
	}
	if s := a.Deliver.String(); s != "gmail me at https://gmail.googleapis.com labels ISP, Imported/2026; oauth2 google, client_id 123.apps.googleusercontent.com, client secret (env GMAIL_SECRET), token_url https://oauth2.googleapis.com/token, scopes https://www.googleapis.com/auth/gmail.insert https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.labels" {
		t.Errorf("String: %q", s)
	}
	d := a.DeliveryAccount()
	if d == nil || d.Name != "isp@deliver" || d.OAuth2 != g.OAuth2 || d.OAuth2TokenFile() != "/state/isp@deliver.oauth2" {
		t.Fatalf("DeliveryAccount %+v", d)
	}
	if !strings.Contains(d.loginCommand(), "popfetch oauth2 login --deliver isp") {
		t.Errorf("login hint %q", d.loginCommand())
	}

	b := cfg.Account("plain")
	if b.Deliver.Gmail.APIURL != "http://127.0.0.1:8080" || b.Deliver.Gmail.InternalDateSource != GmailReceivedTime ||
		b.MaxSize != 10_000_000 || !slices.Equal(b.Deliver.Gmail.OAuth2.Scopes, []string{GmailScopeInsert, GmailScopeReadonly}) {
		t.Errorf("plain: %+v max_size %d", b.Deliver.Gmail, b.MaxSize)
	}
	if (&Account{Deliver: Destination{Kind: DeliverMaildir}}).DeliveryAccount() != nil {
		t.Error("a maildir has a delivery account")
	}
}

// OAuth2Refused drops a cached access token a server refused and refreshes; a token that is no
// longer cached (another request refreshed it) is not refreshed again.
func TestOAuth2Refused(t *testing.T) {
	srv := oauth2test.NewServer(t, &oauth2test.Options{UniqueAccessTokens: true})
	a := oauthAccount(t, srv, "")
	kr := &memKeyring{}
	prompt, _ := browser(t)
	if _, err := a.OAuth2Login(t.Context(), &OAuth2LoginOptions{Prompt: prompt, Keyring: kr}); err != nil {
		t.Fatal(err)
	}
	so := &SecretOptions{Keyring: kr}
	t1, err := a.Secret(t.Context(), so)
	if err != nil || t1 != "test-access-token-1" {
		t.Fatalf("Secret: %q %v", t1, err)
	}
	t2, err := a.OAuth2Refused(t.Context(), so, t1)
	if err != nil || t2 != "test-access-token-2" {
		t.Fatalf("OAuth2Refused: %q %v", t2, err)
	}
	t3, err := a.OAuth2Refused(t.Context(), so, t1) // stale report: t2 is cached and not refused
	if err != nil || t3 != t2 || srv.Grants("refresh_token") != 1 {
		t.Fatalf("second OAuth2Refused: %q %v, %d refreshes", t3, err, srv.Grants("refresh_token"))
	}
}
