// Package httpsafe makes the HTTP clients popfetch talks to authorization servers and mail APIs
// with: clients that never follow a redirect.
//
// A token endpoint's request carries a refresh token, an authorization code or a client secret in its
// body, and a 307 or 308 redirect makes net/http send that body again, to wherever the Location header
// points, in clear if it says http://. None of the endpoints popfetch uses (OAuth2 token, device
// authorization and revocation endpoints, RFC 6749 §3.2, RFC 8628 §3.1, RFC 7009 §2; a mail API)
// has a reason to redirect a client, so every redirect is refused: the request fails with a
// *RedirectError naming the endpoint and where it pointed, and nothing is sent to the second address.
package httpsafe

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// RedirectError is the refusal of a redirect: the server at From answered with a redirect (Status)
// to To, which was not followed.
type RedirectError struct {
	From   string // the URL that was requested, without query or credentials
	To     string // the Location it redirected to, without query or credentials ("" if none)
	Status int    // the HTTP status of the redirect, e.g. 307
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("%s answered HTTP %d, a redirect to %q; popfetch does not follow redirects from this endpoint (check the URL in the profile)",
		e.From, e.Status, e.To)
}

// NewClient returns an http.Client with the given overall timeout per request (0: none) that refuses
// every redirect (CheckRedirect is RefuseRedirect) and uses http.DefaultTransport.
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, CheckRedirect: RefuseRedirect}
}

// RefuseRedirect is an http.Client.CheckRedirect that refuses every redirect with a *RedirectError;
// set it on a client another library made (say, oauth2.NewClient's) to make it safe. The error
// reaches the caller of Client.Do wrapped in a *url.Error (errors.As finds it).
func RefuseRedirect(req *http.Request, via []*http.Request) error {
	e := &RedirectError{To: redact(req.URL)}
	if len(via) > 0 {
		prev := via[len(via)-1]
		e.From = redact(prev.URL)
		if prev.Response != nil {
			e.Status = prev.Response.StatusCode
		}
	}
	if req.Response != nil {
		e.Status = req.Response.StatusCode
	}
	return e
}

// AsRedirect returns the *RedirectError in err's chain, if any.
func AsRedirect(err error) (*RedirectError, bool) {
	var re *RedirectError
	ok := errors.As(err, &re)
	return re, ok
}

// redact drops what a URL may carry that is nobody's business in an error message: user
// information, the query and the fragment.
func redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}
