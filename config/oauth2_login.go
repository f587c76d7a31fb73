package config

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/oauth2"

	"github.com/popfetch/popfetch/internal/termsafe"
)

// DefaultOAuth2LoginTimeout is how long `popfetch oauth2 login` waits for the browser (or the device
// code's approval).
const DefaultOAuth2LoginTimeout = 5 * time.Minute

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
			desc := termsafe.String(q.Get("error"))
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
		// The page first, the answer after: once the login has its answer it may stop this server,
		// and the browser must not be left with a dropped connection instead of the page.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "popfetch received the authorization; you can close this tab and return to the terminal."
		if ans.err != nil {
			msg = "popfetch: " + ans.err.Error()
		}
		fmt.Fprintf(w, "<!DOCTYPE html>\n<title>popfetch</title>\n<p>%s</p>\n", html.EscapeString(msg))
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case answers <- ans:
		default: // a second visit: the first answer counts
		}
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer func() {
		// Let a response being written finish (one second at most), then close.
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()

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
	// Both come from the authorization server: shown (by any prompt) only terminal-safe.
	prompt(termsafe.String(da.VerificationURI), termsafe.String(da.UserCode))
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
