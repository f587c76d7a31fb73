// Package oauth2test is an in-process OAuth 2.0 authorization server for tests, httptest-style: it
// implements the authorization-code grant with PKCE (RFC 6749 §4.1, RFC 7636 S256 only), the
// refresh-token grant with rotation (RFC 6749 §6), and the device authorization grant (RFC 8628), on
// 127.0.0.1.
//
//	GET  /authorize  redirects to redirect_uri (loopback only) with code and state
//	POST /token      grant_type authorization_code (checks code_verifier), refresh_token,
//	                 urn:ietf:params:oauth:grant-type:device_code
//	POST /device     device authorization request: device_code, user_code, verification_uri
//	GET  /activate   the verification page: ?user_code=… approves that device code (a browser's visit)
//
// Every issued access token is Options.AccessToken (unless UniqueAccessTokens; so that a pop3test.Server with the same Token
// accepts it); refresh tokens are fresh random strings, and each refresh rotates the refresh token (the
// old one stops working), as Microsoft's endpoint does.
package oauth2test

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configures a Server. The zero value is a public client "popfetch-test" issuing the access
// token "test-access-token" valid for an hour.
type Options struct {
	ClientID string // default "popfetch-test"
	// ClientSecret, when set, must be sent (form parameter or HTTP Basic) with every token request.
	ClientSecret string
	// AccessToken is the access token every grant issues.
	AccessToken string
	// ExpiresIn is the lifetime of issued access tokens (expires_in); default one hour. A negative
	// value omits expires_in.
	ExpiresIn time.Duration
	// NoRefreshToken makes the code and device grants issue no refresh token.
	NoRefreshToken bool
	// UniqueAccessTokens makes each grant issue a new access token: AccessToken + "-1", "-2", …
	UniqueAccessTokens bool
}

// Server is a running fake authorization server.
type Server struct {
	URL string // base URL, http://127.0.0.1:port

	srv  *httptest.Server
	opts Options

	mu      sync.Mutex
	codes   map[string]codeGrant
	refresh map[string]bool // issued refresh tokens; false once used (rotated) or revoked
	devices map[string]*device
	grants  map[string]int // token requests per grant_type that succeeded or failed
	expires time.Duration
	moved   *moved // SetRedirect: answer /token and /device with a redirect
	issued  int
}

type codeGrant struct {
	clientID, redirectURI, challenge, scope string
}

type device struct {
	userCode string
	approved bool
	used     bool
}

// NewServer starts a Server on 127.0.0.1 and closes it when the test ends.
func NewServer(t testing.TB, opts *Options) *Server {
	t.Helper()
	s := &Server{codes: map[string]codeGrant{}, refresh: map[string]bool{}, devices: map[string]*device{},
		grants: map[string]int{}}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.ClientID == "" {
		s.opts.ClientID = "popfetch-test"
	}
	if s.opts.AccessToken == "" {
		s.opts.AccessToken = "test-access-token"
	}
	s.expires = s.opts.ExpiresIn
	if s.expires == 0 {
		s.expires = time.Hour
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /device", s.deviceAuth)
	mux.HandleFunc("GET /activate", s.activate)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// AuthURL, TokenURL and DeviceAuthURL are the endpoints, for a profile's oauth2: keys.
func (s *Server) AuthURL() string       { return s.URL + "/authorize" }
func (s *Server) TokenURL() string      { return s.URL + "/token" }
func (s *Server) DeviceAuthURL() string { return s.URL + "/device" }

// Revoke invalidates every refresh token issued so far: the next refresh gets invalid_grant.
func (s *Server) Revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.refresh {
		s.refresh[k] = false
	}
}

// SetExpiresIn changes the lifetime of access tokens issued from now on.
func (s *Server) SetExpiresIn(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expires = d
}

// Grants returns how many token requests with grant_type g the server received ("authorization_code",
// "refresh_token", "urn:ietf:params:oauth:grant-type:device_code").
func (s *Server) Grants(g string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grants[g]
}

// RefreshTokens returns the refresh tokens issued so far (valid or not), for tests that check that
// none of them is printed.
func (s *Server) RefreshTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.refresh {
		out = append(out, k)
	}
	return out
}

func random() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func isLoopback(u *url.URL) bool {
	ip := net.ParseIP(u.Hostname())
	return u.Scheme == "http" && (u.Hostname() == "localhost" || ip != nil && ip.IsLoopback())
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("client_id") != s.opts.ClientID:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case err != nil || !isLoopback(redirect):
		http.Error(w, "redirect_uri must be a loopback http URL", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code":
		http.Error(w, "response_type must be code", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "PKCE with S256 is required", http.StatusBadRequest)
		return
	}
	code := random()
	s.mu.Lock()
	s.codes[code] = codeGrant{clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"),
		challenge: q.Get("code_challenge"), scope: q.Get("scope")}
	s.mu.Unlock()
	v := redirect.Query()
	v.Set("code", code)
	if st := q.Get("state"); st != "" {
		v.Set("state", st)
	}
	redirect.RawQuery = v.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// tokenError writes an RFC 6749 §5.2 error response.
func tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (s *Server) clientOK(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == s.opts.ClientID && subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) == 1
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := r.PostForm.Get("grant_type")
	s.grants[g]++
	if s.redirect(w, r) {
		return
	}
	if !s.clientOK(r) {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong client secret")
		return
	}
	withRefresh := !s.opts.NoRefreshToken
	switch g {
	case "authorization_code":
		c, ok := s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code")) // single use
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case !ok:
			tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown or used authorization code")
			return
		case r.PostForm.Get("redirect_uri") != c.redirectURI:
			tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request")
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
			tokenError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
			return
		}
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if !s.refresh[rt] {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
			return
		}
		s.refresh[rt] = false // rotation
		withRefresh = true
	case "urn:ietf:params:oauth:grant-type:device_code":
		d, ok := s.devices[r.PostForm.Get("device_code")]
		switch {
		case !ok || d.used:
			tokenError(w, http.StatusBadRequest, "expired_token", "unknown device code")
			return
		case !d.approved:
			tokenError(w, http.StatusBadRequest, "authorization_pending", "")
			return
		}
		d.used = true
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", g)
		return
	}
	access := s.opts.AccessToken
	if s.opts.UniqueAccessTokens {
		s.issued++
		access += "-" + strconv.Itoa(s.issued)
	}
	resp := map[string]any{"access_token": access, "token_type": "Bearer"}
	if s.expires > 0 {
		resp["expires_in"] = int(s.expires / time.Second)
	}
	if withRefresh {
		rt := random()
		s.refresh[rt] = true
		resp["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) deviceAuth(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") != s.opts.ClientID {
		tokenError(w, http.StatusBadRequest, "invalid_client", "unknown client_id")
		return
	}
	dc, uc := random(), strings.ToUpper(random()[:8])
	s.mu.Lock()
	if s.redirect(w, r) {
		s.mu.Unlock()
		return
	}
	s.devices[dc] = &device{userCode: uc}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"device_code": dc, "user_code": uc,
		"verification_uri": s.URL + "/activate", "expires_in": 600, "interval": 1})
}

// activate is the verification page: the user's browser visit with the user code approves it.
func (s *Server) activate(w http.ResponseWriter, r *http.Request) {
	uc := r.URL.Query().Get("user_code")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.userCode == uc && uc != "" {
			d.approved = true
			w.Write([]byte("approved\n"))
			return
		}
	}
	http.Error(w, "unknown user code", http.StatusNotFound)
}
