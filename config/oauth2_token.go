package config

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// OAuth2 errors, wrapped (errors.Is) by *OAuth2Error.
var (
	// ErrOAuth2NoLogin: no refresh token is stored for the account (never logged in, or the keyring
	// entry is gone). The fix is `popfetch oauth2 login ACCOUNT`.
	ErrOAuth2NoLogin = errors.New("not logged in: no refresh token is stored")
	// ErrOAuth2Revoked: the authorization server refused the refresh token (invalid_grant: revoked,
	// expired, password changed). The fix is `popfetch oauth2 login ACCOUNT`.
	ErrOAuth2Revoked = errors.New("the authorization server refused the refresh token")
	// ErrOAuth2Unavailable: the authorization server could not be reached or failed (network, timeout,
	// HTTP 5xx or 429): try again later.
	ErrOAuth2Unavailable = errors.New("the authorization server is unavailable")
	// ErrOAuth2Denied: the user (or the provider's policy) declined the authorization at login.
	ErrOAuth2Denied = errors.New("the authorization server refused")
	// ErrOAuth2Timeout: nobody completed the login in time.
	ErrOAuth2Timeout = errors.New("no answer")
)

// OAuth2Error is the failure to obtain an account's access token (or, for OAuth2Login, to log in). Its
// message names the account and, when logging in again is the fix, the exact command; it never contains
// a token or a client secret.
type OAuth2Error struct {
	Account string
	Err     error
	// Login is the command that fixes it (`popfetch oauth2 login ACCOUNT`), when it is ErrOAuth2NoLogin
	// or ErrOAuth2Revoked; "" otherwise.
	Login string
}

func (e *OAuth2Error) Error() string {
	s := fmt.Sprintf("account %q: oauth2: %v", e.Account, e.Err)
	if e.Login != "" {
		s += "; log in again with: " + e.Login
	}
	return s
}

func (e *OAuth2Error) Unwrap() error { return e.Err }

// LoginRequired reports whether the fix is to log in again (exit 77 with the command).
func (e *OAuth2Error) LoginRequired() bool {
	return errors.Is(e.Err, ErrOAuth2NoLogin) || errors.Is(e.Err, ErrOAuth2Revoked)
}

// An access token is used only while it has more than this left: a session starts right after.
const oauth2ExpiryMargin = time.Minute

// DefaultOAuth2LoginTimeout is how long `popfetch oauth2 login` waits for the browser (or the device
// code's approval).
const DefaultOAuth2LoginTimeout = 5 * time.Minute

// OAuth2RefreshKey is the key of the account's refresh token in the system keyring (service
// KeyringService): "ACCOUNT:oauth2-refresh", which no account name can be.
func OAuth2RefreshKey(account string) string { return account + ":oauth2-refresh" }

// OAuth2TokenFile is the file in the state directory that caches the account's access token and its
// expiry, and holds the refresh token when no system keyring could keep it: STATE_DIR/ACCOUNT.oauth2,
// mode 0600.
func (a *Account) OAuth2TokenFile() string { return filepath.Join(a.stateDir, a.Name+".oauth2") }

// oauth2File is the content of OAuth2TokenFile (JSON).
type oauth2File struct {
	Version      int       `json:"version"`   // 1
	ClientID     string    `json:"client_id"` // the cached access token is for this client and token URL
	TokenURL     string    `json:"token_url"`
	AccessToken  string    `json:"access_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	RefreshToken string    `json:"refresh_token,omitempty"` // only when the keyring could not keep it
}

func (a *Account) loginCommand() string {
	cmd := "popfetch " + a.commandFor("oauth2 login")
	if def, err := DefaultPath(); err == nil && a.configPath != "" && a.configPath != def {
		cmd += " (for this configuration file: popfetch --config " + shellQuote([]string{a.configPath}) + " " + a.commandFor("oauth2 login") + ")"
	}
	return cmd
}

func (a *Account) oauth2Err(err error) error {
	e := &OAuth2Error{Account: a.Name, Err: err}
	if e.LoginRequired() {
		e.Login = a.loginCommand()
	}
	return e
}

func (a *Account) keyringTimeout() time.Duration {
	if a.Password.Timeout > 0 {
		return a.Password.Timeout
	}
	return DefaultKeyringTimeout
}

func (a *Account) readOAuth2File() (oauth2File, error) {
	var f oauth2File
	data, err := os.ReadFile(a.OAuth2TokenFile())
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return oauth2File{}, fmt.Errorf("%s is damaged (%v)", a.OAuth2TokenFile(), err)
	}
	return f, nil
}

// writeOAuth2File replaces the token file durably: a private temporary file, fsync, rename, fsync of
// the directory. The state directory is created (0700) if needed.
func (a *Account) writeOAuth2File(f oauth2File) error {
	f.Version = 1
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	dir := a.stateDir
	if dir == "" {
		return errors.New("no state directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+a.Name+".oauth2-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), a.OAuth2TokenFile()); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// oauth2Config is the golang.org/x/oauth2 configuration of the account, with the client secret
// resolved from its source.
func (a *Account) oauth2Config(ctx context.Context, o *SecretOptions) (*oauth2.Config, error) {
	p := a.OAuth2
	c := &oauth2.Config{ClientID: p.ClientID, Scopes: p.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, DeviceAuthURL: p.DeviceAuthURL}}
	// Client credentials as form parameters (RFC 6749 §2.3.1): what Google and Microsoft document, and
	// the only way for a public client. A custom server with a client secret gets HTTP Basic first.
	c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	if p.ClientSecret.Kind != "" {
		if p.Provider == OAuth2Custom {
			c.Endpoint.AuthStyle = oauth2.AuthStyleAutoDetect
		}
		b := *a
		b.OAuth2, b.Password = nil, p.ClientSecret
		s, err := b.Secret(ctx, &SecretOptions{Stderr: o.stderr()})
		if err != nil {
			var se *SecretError
			if errors.As(err, &se) {
				c := *se
				c.Source = map[string]string{"password_command": "oauth2.client_secret_command",
					"password_env": "oauth2.client_secret_env", "password": "oauth2.client_secret"}[se.Source]
				return nil, &c
			}
			return nil, err
		}
		c.ClientSecret = s
	}
	return c, nil
}

// httpContext carries the HTTP client golang.org/x/oauth2 uses: the account's timeout per request.
func (a *Account) httpContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: a.Timeout})
}

// oauth2AccessToken is Secret for an account with oauth2:. It returns the cached access token while it
// is valid; otherwise it refreshes it with the stored refresh token (RFC 6749 §6), caches the new one
// with its expiry, and stores a rotated refresh token where the old one was.
func (a *Account) oauth2AccessToken(ctx context.Context, o *SecretOptions) (string, error) {
	p := a.OAuth2
	f, err := a.readOAuth2File()
	if err != nil {
		return "", a.oauth2Err(fmt.Errorf("%w: %v", ErrOAuth2NoLogin, err))
	}
	valid := func(f oauth2File) bool {
		return f.AccessToken != "" && f.ClientID == p.ClientID && f.TokenURL == p.TokenURL &&
			time.Now().Add(oauth2ExpiryMargin).Before(f.Expiry)
	}
	if valid(f) {
		return f.AccessToken, nil
	}
	// One refresh at a time per account (list or cat beside the daemon's sync): a provider that rotates
	// refresh tokens would refuse the second use of one. The winner's token is then read here.
	unlock, err := a.lockOAuth2(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	if f, err = a.readOAuth2File(); err != nil {
		return "", a.oauth2Err(fmt.Errorf("%w: %v", ErrOAuth2NoLogin, err))
	}
	if valid(f) {
		return f.AccessToken, nil
	}

	refresh, inFile := f.RefreshToken, f.RefreshToken != ""
	if !inFile {
		refresh, err = keyringGet(ctx, o.keyring(), OAuth2RefreshKey(a.Name), a.keyringTimeout())
		switch {
		case ctx.Err() != nil:
			return "", ctx.Err()
		case errors.Is(err, ErrKeyringTimeout):
			return "", &SecretError{Account: a.Name, Source: "keyring", Err: fmt.Errorf("%w; reading the OAuth2 refresh token (key %q); unlock it or raise password_timeout",
				err, OAuth2RefreshKey(a.Name))}
		case err != nil:
			return "", a.oauth2Err(fmt.Errorf("%w (neither in the system keyring, service %q key %q: %v; nor in %s)",
				ErrOAuth2NoLogin, KeyringService, OAuth2RefreshKey(a.Name), keyringReason(err), a.OAuth2TokenFile()))
		}
	}

	conf, err := a.oauth2Config(ctx, o)
	if err != nil {
		return "", err
	}
	tok, err := conf.TokenSource(a.httpContext(ctx), &oauth2.Token{RefreshToken: refresh}).Token()
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", a.oauth2Err(tokenError("refreshing the access token", err))
	}
	if tok.AccessToken == "" {
		return "", a.oauth2Err(errors.New("the token endpoint returned no access token"))
	}

	nf := oauth2File{ClientID: p.ClientID, TokenURL: p.TokenURL, RefreshToken: f.RefreshToken}
	if !tok.Expiry.IsZero() { // without expires_in, refresh before every session
		nf.AccessToken, nf.TokenType, nf.Expiry = tok.AccessToken, tok.TokenType, tok.Expiry
	}
	if tok.RefreshToken != "" && tok.RefreshToken != refresh { // rotated (RFC 6749 §6, RFC 9700 §4.14.2)
		if inFile {
			nf.RefreshToken = tok.RefreshToken
		} else if err := a.keyringSetRefresh(ctx, o.keyring(), tok.RefreshToken); err != nil {
			nf.RefreshToken = tok.RefreshToken
			fmt.Fprintf(o.stderr(), "popfetch: warning: account %q: could not store the new OAuth2 refresh token in the system keyring (%v); it is kept in %s (mode 0600) instead\n",
				a.Name, keyringReason(err), a.OAuth2TokenFile())
		}
	}
	if err := a.writeOAuth2File(nf); err != nil {
		fmt.Fprintf(o.stderr(), "popfetch: warning: account %q: could not save the OAuth2 tokens in %s: %v\n", a.Name, a.OAuth2TokenFile(), errText(err))
	}
	return tok.AccessToken, nil
}

// lockOAuth2 takes the account's OAuth2 lock, an flock(2) on STATE_DIR/ACCOUNT.oauth2.lock, waiting
// at most the account's timeout for another popfetch that holds it.
func (a *Account) lockOAuth2(ctx context.Context) (unlock func(), err error) {
	path := a.OAuth2TokenFile() + ".lock"
	fail := func(err error) (func(), error) {
		return nil, a.oauth2Err(fmt.Errorf("cannot lock %s: %v", path, errText(err)))
	}
	if err := os.MkdirAll(a.stateDir, 0o700); err != nil {
		return fail(err)
	}
	lf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fail(err)
	}
	deadline := time.NewTimer(a.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		busy, err := tryLock(lf)
		switch {
		case err != nil:
			lf.Close()
			return fail(err)
		case !busy:
			return func() { lf.Close() }, nil // closing releases the flock
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			lf.Close()
			return nil, a.oauth2Err(fmt.Errorf("%w: another popfetch has held %s for %v", ErrOAuth2Unavailable, path, a.Timeout))
		case <-ctx.Done():
			lf.Close()
			return nil, ctx.Err()
		}
	}
}

func (a *Account) keyringSetRefresh(ctx context.Context, kr Keyring, refresh string) error {
	_, err := keyringCall(ctx, a.keyringTimeout(), func() (string, error) {
		return "", kr.Set(KeyringService, OAuth2RefreshKey(a.Name), refresh)
	})
	return err
}

// keyringReason shortens a keyring error for a message.
func keyringReason(err error) string {
	if errors.Is(err, ErrKeyringNotFound) {
		return "no entry"
	}
	return err.Error()
}

// tokenError turns a failure of a token or device endpoint into an error that says what to do, and
// never quotes the response body (it could hold a token).
func tokenError(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		desc := re.ErrorCode
		if d := firstLine(re.ErrorDescription); d != "" {
			desc += ": " + d
		}
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		switch {
		case re.ErrorCode == "invalid_grant":
			return fmt.Errorf("%w (%s)", ErrOAuth2Revoked, desc)
		case re.ErrorCode == "access_denied": // RFC 8628 §3.5
			return fmt.Errorf("%w: %s", ErrOAuth2Denied, desc)
		case re.ErrorCode == "expired_token":
			return fmt.Errorf("%w: %s: %s", ErrOAuth2Timeout, what, desc)
		case re.ErrorCode == "temporarily_unavailable", status >= 500, status == http.StatusTooManyRequests:
			return fmt.Errorf("%w: %s: HTTP %d %s", ErrOAuth2Unavailable, what, status, desc)
		case re.ErrorCode != "":
			return fmt.Errorf("%s: the authorization server said %s (check client_id, the client secret and scopes)", what, desc)
		}
		return fmt.Errorf("%s: the token endpoint answered HTTP %d", what, status)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: %v", ErrOAuth2Unavailable, what, err)
	}
	return fmt.Errorf("%s: %v", what, err)
}

// firstLine returns the first line of s, at most 300 bytes (Microsoft's descriptions carry trace IDs
// and timestamps on further lines).
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// OAuth2LoginOptions is what OAuth2Login may use besides the profile. A nil *OAuth2LoginOptions is
// valid: the authorization-code flow, instructions on os.Stderr, the system keyring.
type OAuth2LoginOptions struct {
	// Device selects the device authorization grant (RFC 8628) instead of the authorization-code
	// grant with a loopback redirect: for a machine without a browser.
	Device bool
	// Prompt is told what the user must do: open url in a browser (and, for the device flow, enter
	// code). nil: print it on Stderr.
	Prompt func(url, code string)
	// Stderr receives the instructions, warnings and client_secret_command's stderr. nil: os.Stderr.
	Stderr io.Writer
	// Timeout is how long to wait for the user; 0: DefaultOAuth2LoginTimeout.
	Timeout time.Duration
	// Keyring replaces the system keyring (tests).
	Keyring Keyring
}

func (o *OAuth2LoginOptions) stderr() io.Writer {
	if o == nil || o.Stderr == nil {
		return os.Stderr
	}
	return o.Stderr
}

// OAuth2Login obtains a refresh token for the account from its authorization server, interactively,
// and stores it: in the system keyring (service KeyringService, key OAuth2RefreshKey), or, when no
// keyring works, in OAuth2TokenFile (mode 0600) with a warning on Stderr. The access token that comes
// with it is cached there too. It returns where the refresh token went.
//
// The authorization-code flow (RFC 6749 §4.1) uses PKCE (RFC 7636, S256), a random state, and a
// redirect to a listener on 127.0.0.1 (RFC 8252 §7.3) on a port chosen by the system; the user opens
// the printed URL in a browser on this machine. The device flow (RFC 8628) prints a URL and a code to
// enter on any device. Errors are *OAuth2Error, *SecretError (the client secret's source) or the
// context's.
func (a *Account) OAuth2Login(ctx context.Context, o *OAuth2LoginOptions) (stored string, err error) {
	if a.OAuth2 == nil {
		return "", fmt.Errorf("account %q has no oauth2: profile (provider, client_id) in %s", a.Name, a.configPath)
	}
	if o == nil {
		o = &OAuth2LoginOptions{}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultOAuth2LoginTimeout
	}
	prompt := o.Prompt
	if prompt == nil {
		prompt = func(u, code string) {
			if code == "" {
				fmt.Fprintf(o.stderr(), "popfetch: to authorize popfetch for account %q, open this URL in a browser on this machine:\n\n  %s\n\npopfetch: waiting up to %v for the browser to come back to 127.0.0.1…\n",
					a.Name, u, timeout)
			} else {
				fmt.Fprintf(o.stderr(), "popfetch: to authorize popfetch for account %q, open\n\n  %s\n\non any device and enter the code\n\n  %s\n\npopfetch: waiting up to %v…\n",
					a.Name, u, code, timeout)
			}
		}
	}
	so := &SecretOptions{Stderr: o.Stderr, Keyring: o.Keyring}
	conf, err := a.oauth2Config(ctx, so)
	if err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var tok *oauth2.Token
	if o.Device {
		tok, err = a.deviceLogin(wctx, conf, prompt)
	} else {
		tok, err = a.codeLogin(wctx, conf, prompt)
	}
	switch {
	case ctx.Err() != nil:
		return "", ctx.Err()
	case err != nil && wctx.Err() != nil:
		return "", a.oauth2Err(fmt.Errorf("%w within %v; run the command again (raise --timeout if you need longer)", ErrOAuth2Timeout, timeout))
	case err != nil:
		return "", a.oauth2Err(err)
	case tok.RefreshToken == "":
		hint := "the provider may need another scope for it"
		if a.OAuth2.Provider == OAuth2Microsoft {
			hint = "add offline_access to scopes"
		}
		return "", a.oauth2Err(fmt.Errorf("the authorization server issued no refresh token, which popfetch needs to keep working (%s)", hint))
	}

	f := oauth2File{ClientID: a.OAuth2.ClientID, TokenURL: a.OAuth2.TokenURL}
	if !tok.Expiry.IsZero() {
		f.AccessToken, f.TokenType, f.Expiry = tok.AccessToken, tok.TokenType, tok.Expiry
	}
	unlock, err := a.lockOAuth2(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	stored = fmt.Sprintf("the system keyring (service %q, key %q)", KeyringService, OAuth2RefreshKey(a.Name))
	if kerr := a.keyringSetRefresh(ctx, so.keyring(), tok.RefreshToken); kerr != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		f.RefreshToken = tok.RefreshToken
		stored = a.OAuth2TokenFile() + " (mode 0600)"
		fmt.Fprintf(o.stderr(), "popfetch: warning: account %q: the system keyring cannot keep the OAuth2 refresh token (%v); it is stored in %s (mode 0600) instead: anyone who can read it can read your mail\n",
			a.Name, keyringReason(kerr), a.OAuth2TokenFile())
	}
	if err := a.writeOAuth2File(f); err != nil {
		if f.RefreshToken != "" {
			return "", a.oauth2Err(fmt.Errorf("cannot store the refresh token in %s: %v", a.OAuth2TokenFile(), errText(err)))
		}
		fmt.Fprintf(o.stderr(), "popfetch: warning: account %q: could not cache the access token in %s: %v\n", a.Name, a.OAuth2TokenFile(), errText(err))
	}
	return stored, nil
}

// codeLogin runs the authorization-code grant with PKCE and a loopback redirect.
func (a *Account) codeLogin(ctx context.Context, conf *oauth2.Config, prompt func(string, string)) (*oauth2.Token, error) {
	if conf.Endpoint.AuthURL == "" {
		return nil, errors.New("the profile has no oauth2.auth_url; add it, or use --device with device_auth_url")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot listen on 127.0.0.1 for the browser's redirect: %v", err)
	}
	defer ln.Close()
	// RFC 8252 §7.3: a loopback IP literal, any port. Google accepts it for desktop clients
	// (https://developers.google.com/identity/protocols/oauth2/native-app); Microsoft with the redirect
	// URI http://127.0.0.1 registered, whose port it ignores
	// (https://learn.microsoft.com/en-us/entra/identity-platform/reply-url).
	conf.RedirectURL = fmt.Sprintf("http://127.0.0.1:%d/", ln.Addr().(*net.TCPAddr).Port)
	state := randomString()
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if a.OAuth2.Provider == OAuth2Google {
		// Google issues a refresh token only for offline access, and again on a later login only
		// after the consent screen (https://developers.google.com/identity/protocols/oauth2/web-server#offline).
		opts = append(opts, oauth2.AccessTypeOffline, oauth2.ApprovalForce)
	}

	type answer struct {
		code string
		err  error
	}
	answers := make(chan answer, 1)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		// RFC 6749 §10.12: only the redirect of the request popfetch made counts.
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			http.Error(w, "popfetch: this is not the answer to the sign-in popfetch started (state does not match)", http.StatusBadRequest)
			return
		}
		var ans answer
		switch {
		case q.Get("error") != "":
			desc := q.Get("error")
			if d := firstLine(q.Get("error_description")); d != "" {
				desc += ": " + d
			}
			ans.err = fmt.Errorf("%w: %s", ErrOAuth2Denied, desc)
		case q.Get("code") == "":
			http.Error(w, "popfetch: no authorization code in the redirect", http.StatusBadRequest)
			return
		default:
			ans.code = q.Get("code")
		}
		select {
		case answers <- ans:
		default: // a second visit: the first answer counts
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "popfetch received the authorization; you can close this tab and return to the terminal."
		if ans.err != nil {
			msg = "popfetch: " + ans.err.Error()
		}
		fmt.Fprintf(w, "<!DOCTYPE html>\n<title>popfetch</title>\n<p>%s</p>\n", html.EscapeString(msg))
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	prompt(conf.AuthCodeURL(state, opts...), "")
	var ans answer
	select {
	case ans = <-answers:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if ans.err != nil {
		return nil, ans.err
	}
	tok, err := conf.Exchange(a.httpContext(ctx), ans.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, tokenError("exchanging the authorization code", err)
	}
	return tok, nil
}

// deviceLogin runs the device authorization grant (RFC 8628).
func (a *Account) deviceLogin(ctx context.Context, conf *oauth2.Config, prompt func(string, string)) (*oauth2.Token, error) {
	if conf.Endpoint.DeviceAuthURL == "" {
		return nil, errors.New("the profile has no oauth2.device_auth_url; add it, or log in without --device")
	}
	hctx := a.httpContext(ctx)
	da, err := conf.DeviceAuth(hctx)
	if err != nil {
		return nil, tokenError("requesting a device code", err)
	}
	prompt(da.VerificationURI, da.UserCode)
	tok, err := conf.DeviceAccessToken(hctx, da)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, tokenError("waiting for the device code's approval", err)
	}
	return tok, nil
}

func randomString() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
