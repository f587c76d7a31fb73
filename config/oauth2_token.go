package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/popfetch/popfetch/internal/httpsafe"
	"golang.org/x/oauth2"

	"github.com/popfetch/popfetch/internal/fsutil"
	"github.com/popfetch/popfetch/internal/shquote"
	"github.com/popfetch/popfetch/internal/termsafe"
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
		cmd += " (for this configuration file: popfetch --config " + shquote.Quote(a.configPath) + " " + a.commandFor("oauth2 login") + ")"
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
	data, err := readTokenFile(a.OAuth2TokenFile())
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
	if err := fsutil.MkdirPrivate(dir, "state directory"); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(a.OAuth2TokenFile(), append(data, '\n'), 0o600)
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

// httpContext carries the HTTP client golang.org/x/oauth2 uses for the token and device endpoints:
// the account's timeout per request, and no redirect followed (a 307 would make net/http send the
// refresh token, code or client secret again to wherever it points). A refused redirect
// fails with an error wrapping *httpsafe.RedirectError.
func (a *Account) httpContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, httpsafe.NewClient(a.Timeout))
}

// oauth2AccessToken is Secret for an account with oauth2:. It returns the cached access token while it
// is valid; otherwise it refreshes it with the stored refresh token (RFC 6749 §6), caches the new one
// with its expiry, and stores a rotated refresh token where the old one was.
func (a *Account) oauth2AccessToken(ctx context.Context, o *SecretOptions) (string, error) {
	p := a.OAuth2
	f, err := a.readOAuth2File()
	if err != nil {
		if isUnsafe(err) {
			return "", a.oauth2Err(err) // exit 78, with the fix
		}
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
		if isUnsafe(err) {
			return "", a.oauth2Err(err) // exit 78, with the fix
		}
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
	if err := fsutil.MkdirPrivate(a.stateDir, "state directory"); err != nil {
		return nil, unsafeOr(a, err, fail)
	}
	lf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|fsutil.NoFollow, 0o600)
	if err != nil {
		return nil, unsafeOr(a, fsutil.Symlink(path, err), fail)
	}
	if err := fsutil.CheckOpened(lf, path); err != nil {
		lf.Close()
		return nil, unsafeOr(a, err, fail)
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
	if rd, ok := httpsafe.AsRedirect(err); ok { // before net.Error: a *url.Error is one
		return fmt.Errorf("%s: %w", what, rd)
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		desc := termsafe.String(re.ErrorCode)
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
// and timestamps on further lines), terminal-safe: it is the authorization server's text.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		n := 300
		for n > 300-utf8.UTFMax && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return termsafe.String(s)
}
