package config

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/popfetch/popfetch/config/oauth2test"
)

// memKeyring is a Keyring in memory; with fail set, every call fails like a missing Secret Service.
type memKeyring struct {
	mu   sync.Mutex
	m    map[string]string
	fail bool
}

func (k *memKeyring) Get(service, user string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail {
		return "", errors.New("dbus: no session bus")
	}
	s, ok := k.m[service+"/"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return s, nil
}

func (k *memKeyring) Set(service, user, secret string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail {
		return errors.New("dbus: no session bus")
	}
	if k.m == nil {
		k.m = map[string]string{}
	}
	k.m[service+"/"+user] = secret
	return nil
}

func (k *memKeyring) Delete(service, user string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, service+"/"+user)
	return nil
}

// oauthAccount loads a profile whose account "m" uses the fake server srv (provider custom).
func oauthAccount(t *testing.T, srv *oauth2test.Server, extra string) *Account {
	t.Helper()
	state := t.TempDir()
	cfg := mustLoad(t, "state_dir: "+state+"\naccounts:\n  m:\n    host: h\n    user: alice\n    deliver: {maildir: /m}\n"+
		"    oauth2:\n      provider: custom\n      client_id: popfetch-test\n      auth_url: "+srv.AuthURL()+
		"\n      token_url: "+srv.TokenURL()+"\n      device_auth_url: "+srv.DeviceAuthURL()+"\n"+extra)
	return cfg.Account("m")
}

// browser returns a Prompt that acts as the user's browser: it opens the URL (following the
// authorization server's redirect to popfetch's loopback listener) or, for the device flow, the
// verification page with the user code.
func browser(t *testing.T) (func(url, code string), *[]string) {
	var seen []string
	return func(u, code string) {
		seen = append(seen, u)
		if code != "" {
			u += "?user_code=" + code
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Errorf("browser: %v", err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("browser: %s: %s", u, resp.Status)
		}
	}, &seen
}

func TestOAuth2LoginRefreshRevoke(t *testing.T) {
	const token = "ya29.access-token-from-the-fake-server"
	srv := oauth2test.NewServer(t, &oauth2test.Options{AccessToken: token})
	a := oauthAccount(t, srv, "")
	if a.Auth != "xoauth2" || a.Password.Kind != SourceOAuth2 {
		t.Fatalf("auth %q, password %v", a.Auth, a.Password)
	}
	kr := &memKeyring{}
	var stderr bytes.Buffer
	so := &SecretOptions{Keyring: kr, Stderr: &stderr}
	ctx := t.Context()

	// Before any login: exit-77 material with the command.
	_, err := a.Secret(ctx, so)
	var oe *OAuth2Error
	if !errors.As(err, &oe) || !errors.Is(err, ErrOAuth2NoLogin) || !oe.LoginRequired() ||
		!strings.Contains(err.Error(), "popfetch oauth2 login m") {
		t.Fatalf("Secret before login: %v", err)
	}

	prompt, seen := browser(t)
	stored, err := a.OAuth2Login(ctx, &OAuth2LoginOptions{Prompt: prompt, Keyring: kr, Stderr: &stderr})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if !strings.Contains(stored, "keyring") || len(*seen) != 1 || !strings.Contains((*seen)[0], "code_challenge_method=S256") ||
		!strings.Contains((*seen)[0], "redirect_uri=http%3A%2F%2F127.0.0.1%3A") {
		t.Errorf("stored in %q; URLs %v", stored, *seen)
	}
	if srv.Grants("authorization_code") != 1 {
		t.Errorf("authorization_code grants: %d", srv.Grants("authorization_code"))
	}
	rt, err := kr.Get(KeyringService, "m:oauth2-refresh")
	if err != nil || rt == "" {
		t.Fatalf("keyring: %q, %v", rt, err)
	}
	fi, err := os.Stat(a.OAuth2TokenFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	if data, _ := os.ReadFile(a.OAuth2TokenFile()); bytes.Contains(data, []byte(rt)) {
		t.Errorf("the token file holds the refresh token although the keyring kept it")
	}

	// The cached access token is used while valid: no request to the server.
	for range 2 {
		if s, err := a.Secret(ctx, so); err != nil || s != token {
			t.Fatalf("Secret: %q, %v", s, err)
		}
	}
	if n := srv.Grants("refresh_token"); n != 0 {
		t.Errorf("%d refreshes while the cached token was valid", n)
	}

	// Tokens that live less than the margin are refreshed every time; each refresh rotates the refresh
	// token, so a second refresh works only if the first one stored the new one.
	srv.SetExpiresIn(30 * time.Second)
	expireCache(t, a)
	for i := range 3 {
		if s, err := a.Secret(ctx, so); err != nil || s != token {
			t.Fatalf("Secret after expiry #%d: %q, %v", i, s, err)
		}
	}
	if n := srv.Grants("refresh_token"); n != 3 {
		t.Errorf("refresh grants: %d, want 3", n)
	}
	if rt2, _ := kr.Get(KeyringService, "m:oauth2-refresh"); rt2 == rt {
		t.Errorf("the rotated refresh token was not stored")
	}

	// Revoked: the error says to log in again, and shows no token.
	srv.Revoke()
	_, err = a.Secret(ctx, so)
	if !errors.As(err, &oe) || !errors.Is(err, ErrOAuth2Revoked) || !strings.Contains(err.Error(), "invalid_grant") ||
		!strings.HasSuffix(err.Error(), "log in again with: popfetch oauth2 login m (for this configuration file: popfetch --config test.yaml oauth2 login m)") {
		t.Fatalf("Secret after revocation: %v", err)
	}
	for _, tok := range append(srv.RefreshTokens(), token) {
		if strings.Contains(err.Error(), tok) || strings.Contains(stderr.String(), tok) {
			t.Errorf("a token appears in %q / %q", err, stderr.String())
		}
	}
}

// expireCache moves the cached access token's expiry into the past.
func expireCache(t *testing.T, a *Account) {
	t.Helper()
	f, err := a.readOAuth2File()
	if err != nil {
		t.Fatal(err)
	}
	f.Expiry = time.Now().Add(-time.Hour)
	if err := a.writeOAuth2File(f); err != nil {
		t.Fatal(err)
	}
}

// TestOAuth2NoKeyring: without a keyring the refresh token goes to the 0600 file, with a warning, and
// the file is where refreshes take it from and put the rotated one.
func TestOAuth2NoKeyring(t *testing.T) {
	srv := oauth2test.NewServer(t, &oauth2test.Options{ClientSecret: "client-s3cret", ExpiresIn: 30 * time.Second})
	t.Setenv("POPFETCH_TEST_CLIENT_SECRET", "client-s3cret")
	a := oauthAccount(t, srv, "      client_secret_env: POPFETCH_TEST_CLIENT_SECRET\n    auth: oauthbearer\n")
	kr := &memKeyring{fail: true}
	var stderr bytes.Buffer
	prompt, _ := browser(t)
	stored, err := a.OAuth2Login(t.Context(), &OAuth2LoginOptions{Prompt: prompt, Keyring: kr, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if stored != a.OAuth2TokenFile()+" (mode 0600)" || !strings.Contains(stderr.String(), "warning: account \"m\": the system keyring cannot keep the OAuth2 refresh token") {
		t.Errorf("stored %q; stderr %q", stored, stderr.String())
	}
	for range 2 {
		if _, err := a.Secret(t.Context(), &SecretOptions{Keyring: kr, Stderr: &stderr}); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Grants("refresh_token"); n != 2 {
		t.Errorf("refresh grants %d, want 2", n)
	}
	// Concurrent refreshes (list beside a sync) take turns: each spends the refresh token the previous
	// one stored, so none is refused although every refresh rotates it.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := a.Secret(t.Context(), &SecretOptions{Keyring: kr, Stderr: &bytes.Buffer{}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent refresh: %v", err)
		}
	}
	// A wrong client secret is the profile's problem, not a revocation.
	t.Setenv("POPFETCH_TEST_CLIENT_SECRET", "bad-client-secret-value")
	_, err = a.Secret(t.Context(), &SecretOptions{Keyring: kr, Stderr: &stderr})
	var oe *OAuth2Error
	if !errors.As(err, &oe) || oe.LoginRequired() || !strings.Contains(err.Error(), "invalid_client") || strings.Contains(err.Error(), "bad-client-secret-value") {
		t.Errorf("wrong client secret: %v", err)
	}
	os.Unsetenv("POPFETCH_TEST_CLIENT_SECRET")
	_, err = a.Secret(t.Context(), &SecretOptions{Keyring: kr, Stderr: &stderr})
	var se *SecretError
	if !errors.As(err, &se) || se.Source != "oauth2.client_secret_env" {
		t.Errorf("unset client secret: %v", err)
	}
}

func TestOAuth2DeviceLogin(t *testing.T) {
	srv := oauth2test.NewServer(t, nil)
	a := oauthAccount(t, srv, "")
	kr := &memKeyring{}
	prompt, seen := browser(t)
	if _, err := a.OAuth2Login(t.Context(), &OAuth2LoginOptions{Device: true, Prompt: prompt, Keyring: kr}); err != nil {
		t.Fatal(err)
	}
	if len(*seen) != 1 || (*seen)[0] != srv.URL+"/activate" || srv.Grants("urn:ietf:params:oauth:grant-type:device_code") == 0 {
		t.Errorf("prompted %v; device grants %d", *seen, srv.Grants("urn:ietf:params:oauth:grant-type:device_code"))
	}
	if s, err := a.Secret(t.Context(), &SecretOptions{Keyring: kr}); err != nil || s != "test-access-token" {
		t.Errorf("Secret: %q %v", s, err)
	}
}

// TestOAuth2LoginState: a redirect with another state is refused and the login goes on waiting; an
// error from the server ends it; no answer ends it after the timeout.
func TestOAuth2LoginState(t *testing.T) {
	srv := oauth2test.NewServer(t, nil)
	a := oauthAccount(t, srv, "")
	kr := &memKeyring{}
	_, err := a.OAuth2Login(t.Context(), &OAuth2LoginOptions{Keyring: kr, Prompt: func(u, _ string) {
		redirect := u[strings.Index(u, "redirect_uri=")+len("redirect_uri="):]
		redirect, _, _ = strings.Cut(redirect, "&")
		redirect = strings.NewReplacer("%3A", ":", "%2F", "/").Replace(redirect)
		resp, err := http.Get(redirect + "?code=forged&state=wrong")
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("forged redirect: %v %v", resp, err)
		}
		resp, err = http.Get(redirect + "?" + "error=access_denied&error_description=the+user+said+no&state=" + stateOf(u))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("error redirect: %v %v", resp, err)
		}
	}})
	if err == nil || !strings.Contains(err.Error(), "access_denied: the user said no") {
		t.Errorf("login: %v", err)
	}
	_, err = a.OAuth2Login(t.Context(), &OAuth2LoginOptions{Keyring: kr, Timeout: 50 * time.Millisecond, Prompt: func(string, string) {}})
	if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Errorf("login without an answer: %v", err)
	}
}

func stateOf(u string) string {
	_, s, _ := strings.Cut(u, "state=")
	s, _, _ = strings.Cut(s, "&")
	return s
}

func TestOAuth2NoRefreshToken(t *testing.T) {
	srv := oauth2test.NewServer(t, &oauth2test.Options{NoRefreshToken: true})
	a := oauthAccount(t, srv, "")
	prompt, _ := browser(t)
	_, err := a.OAuth2Login(t.Context(), &OAuth2LoginOptions{Prompt: prompt, Keyring: &memKeyring{}})
	if err == nil || !strings.Contains(err.Error(), "issued no refresh token") {
		t.Errorf("login: %v", err)
	}
}

func TestOAuth2Profiles(t *testing.T) {
	cfg := mustLoad(t, `
defaults:
  deliver: {maildir: /m}
  oauth2: {provider: microsoft, client_id: shared-id}
accounts:
  ms: {host: h, user: u, oauth2: {tenant: contoso.onmicrosoft.com}}
  g: {host: h, user: u, auth: oauthbearer, oauth2: {provider: google, client_id: g-id, client_secret_command: [pass, x]}}
  c: {host: h, user: u, oauth2: {provider: custom, token_url: "http://127.0.0.1:8080/t", device_auth_url: "https://a.example/d", scopes: [a, b]}}
`)
	ms, g, c := cfg.Account("ms").OAuth2, cfg.Account("g").OAuth2, cfg.Account("c").OAuth2
	if ms.ClientID != "shared-id" || ms.TokenURL != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token" ||
		!slices.Equal(ms.Scopes, []string{"https://outlook.office.com/POP.AccessAsUser.All", "offline_access"}) || ms.ClientSecretString() != "(none)" {
		t.Errorf("ms: %+v", ms)
	}
	if g.AuthURL != "https://accounts.google.com/o/oauth2/auth" || g.TokenURL != "https://oauth2.googleapis.com/token" ||
		g.DeviceAuthURL != "https://oauth2.googleapis.com/device/code" || !slices.Equal(g.Scopes, []string{"https://mail.google.com/"}) ||
		g.ClientSecretString() != "(command: pass x)" || cfg.Account("g").Auth != "oauthbearer" || g.Tenant != "" {
		t.Errorf("g: %+v", g)
	}
	if c.AuthURL != "" || c.ClientID != "shared-id" || !slices.Equal(c.Scopes, []string{"a", "b"}) {
		t.Errorf("c: %+v", c)
	}

	for _, tc := range []struct{ text, want string }{
		{"  a: {host: h, user: u, deliver: {maildir: /m}, oauth2: {client_id: x}}",
			`test.yaml:2:49: account "a": key "oauth2.provider": missing (required): google, microsoft, custom`},
		{"  a: {host: h, user: u, deliver: {maildir: /m}, oauth2: {provider: gmail, client_id: x}}",
			`test.yaml:2:68: account "a": key "oauth2.provider": "gmail" is not valid (valid: google, microsoft, custom)`},
		{"  a: {host: h, user: u, deliver: {maildir: /m}, oauth2: {provider: custom, client_id: x, token_url: http://auth.example/t, auth_url: https://a/}}",
			`test.yaml:2:101: account "a": key "oauth2.token_url": "http://auth.example/t": use https:// (http:// only on 127.0.0.1, [::1] or localhost)`},
		{"  a: {host: h, user: u, deliver: {maildir: /m}, oauth2: {provider: custom, client_id: x}}",
			`test.yaml:2:49: account "a": key "oauth2.token_url": missing: provider custom needs token_url` + "\n" +
				`test.yaml:2:49: account "a": key "oauth2.auth_url": missing: provider custom needs auth_url (for ` + "`popfetch oauth2 login`) or device_auth_url (for `popfetch oauth2 login --device`), or both"},
		{"  a: {host: h, user: u, auth: plain, deliver: {maildir: /m}, oauth2: {provider: google, client_id: x}}",
			`test.yaml:2:25: account "a": key "auth": auth: plain cannot use an OAuth2 access token; with oauth2: use xoauth2 (the default) or oauthbearer`},
		{"  a: {host: h, user: u, password_env: X, deliver: {maildir: /m}, oauth2: {provider: google, client_id: x}}",
			`test.yaml:2:25: account "a": key "password_env": not used with oauth2: (the access token comes from ` + "`popfetch oauth2 login`); remove it"},
		{"  a: {host: h, user: u, deliver: {maildir: /m}, oauth2: {provider: google, client_id: x, tenant: t}}",
			`test.yaml:2:49: account "a": key "oauth2.tenant": only for provider: microsoft`},
		{"  a: {host: h, user: u, deliver: {maildir: /m}, oauth2: {provider: google, client_id: x, client_secret_env: A, client_secret: hunter2}}",
			`test.yaml:2:112: account "a": key "oauth2.client_secret": a second client secret source (oauth2.client_secret_env at line 2); keep one of client_secret, client_secret_command, client_secret_env, or none for a public client`},
		{"  a: {host: h, user: u, deliver: {maildir: /m}, oauth2: {provider: google, client_id: x, scopes: openid}}",
			`test.yaml:2:98: account "a": key "oauth2.scopes": must be a list such as [https://mail.google.com/], not a str`},
		{"  a: {host: h, user: u, deliver: {maildir: /m}, oauth2: {provider: google, clientid: x}}",
			`test.yaml:2:49: account "a": key "oauth2.client_id": missing (required): the client ID of the application registered with the provider` + "\n" +
				`test.yaml:2:76: account "a": key "clientid": unknown key, did you mean "client_id"? (valid: provider, client_id, client_secret, client_secret_command, client_secret_env, auth_url, token_url, device_auth_url, scopes, tenant)`},
		{"  a: {host: h, user: u, deliver: {maildir: /m}, oauth2: google}",
			`test.yaml:2:57: account "a": key "oauth2": must be a mapping such as {provider: google, client_id: …} (keys: provider, client_id, client_secret, client_secret_command, client_secret_env, auth_url, token_url, device_auth_url, scopes, tenant)`},
	} {
		_, err := load(t, "accounts:\n"+tc.text+"\n")
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.text, err, tc.want)
		}
	}

	// An inline client secret in a readable file is refused like an inline password.
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("accounts:\n  a: {host: h, user: u, deliver: {maildir: /m}, oauth2: {provider: google, client_id: x, client_secret: hunter2}}\n"), 0o644)
	os.Chmod(path, 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("readable client secret: %v", err)
	}
}
