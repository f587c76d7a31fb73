package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// OAuth2 providers (OAuth2.Provider).
const (
	OAuth2Google    = "google"
	OAuth2Microsoft = "microsoft"
	OAuth2Custom    = "custom"
)

// Keys under oauth2:, in the order the README documents them.
var (
	oauth2Keys       = []string{"provider", "client_id", "client_secret", "client_secret_command", "client_secret_env", "auth_url", "token_url", "device_auth_url", "scopes", "tenant"}
	clientSecretKeys = []string{"client_secret", "client_secret_command", "client_secret_env"}
	oauth2Providers  = []string{OAuth2Google, OAuth2Microsoft, OAuth2Custom}
	oauth2Auth       = []string{"xoauth2", "oauthbearer"}
	tenantName       = regexp.MustCompile(`^[A-Za-z0-9.-]+$`)
)

// The providers' documented endpoints and POP3 scopes.
//
// Google: the authorization and token endpoints of "OAuth 2.0 for Mobile & Desktop Apps"
// (https://developers.google.com/identity/protocols/oauth2/native-app: a loopback redirect to
// http://127.0.0.1:PORT, PKCE with S256) and the device endpoint https://oauth2.googleapis.com/device/code
// of "OAuth 2.0 for TV and Limited-Input Device Applications"
// (https://developers.google.com/identity/protocols/oauth2/limited-input-device; that flow accepts only
// a limited set of scopes). They are also golang.org/x/oauth2/endpoints.Google. "The scope for IMAP,
// POP, and SMTP access is https://mail.google.com/"
// (https://developers.google.com/gmail/imap/xoauth2-protocol).
//
// Microsoft: the identity platform's v2.0 endpoints, https://login.microsoftonline.com/{tenant}/oauth2/v2.0/
// authorize and token (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow)
// and devicecode (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code), where
// tenant is common, organizations, consumers or the directory's ID or domain. Scopes
// https://outlook.office.com/POP.AccessAsUser.All, and offline_access for a refresh token ("Authenticate
// an IMAP, POP or SMTP connection using OAuth",
// https://learn.microsoft.com/en-us/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth).
const (
	googleAuthURL       = "https://accounts.google.com/o/oauth2/auth"
	googleTokenURL      = "https://oauth2.googleapis.com/token"
	googleDeviceAuthURL = "https://oauth2.googleapis.com/device/code"
	googleScope         = "https://mail.google.com/"

	microsoftBase     = "https://login.microsoftonline.com/"
	microsoftPOPScope = "https://outlook.office.com/POP.AccessAsUser.All"
	// DefaultMicrosoftTenant is the tenant of provider microsoft without tenant: (work, school and
	// personal accounts).
	DefaultMicrosoftTenant = "common"
)

// OAuth2 is an account's oauth2: profile, with the provider's presets applied. With it, the account
// authenticates with an access token (auth xoauth2 or oauthbearer) that popfetch obtains from a refresh
// token stored by `popfetch oauth2 login`, instead of a password.
type OAuth2 struct {
	Provider string // OAuth2Google, OAuth2Microsoft or OAuth2Custom
	ClientID string
	// ClientSecret is where the client secret comes from: SourceInline (client_secret), SourceCommand
	// (client_secret_command) or SourceEnv (client_secret_env); Kind "" is a public client without one.
	ClientSecret  PasswordSource
	AuthURL       string   // authorization endpoint (RFC 6749 §3.1); "" only for custom without it
	TokenURL      string   // token endpoint (RFC 6749 §3.2)
	DeviceAuthURL string   // device authorization endpoint (RFC 8628 §3.1); "" when unknown
	Scopes        []string // requested scopes
	Tenant        string   // microsoft: the directory tenant (default "common")

	given map[string]bool // while loading: the keys present, valid or not
}

// ClientSecretString describes the client secret's source without revealing it: "(none)" for a public
// client, else like PasswordSource.String.
func (o *OAuth2) ClientSecretString() string {
	if o.ClientSecret.Kind == "" {
		return "(none)"
	}
	return o.ClientSecret.String()
}

// String describes the profile on one line without secrets, e.g. "google, client_id
// 123.apps.googleusercontent.com, client secret (env GOOGLE_SECRET), token_url
// https://oauth2.googleapis.com/token, scopes https://mail.google.com/".
func (o *OAuth2) String() string {
	s := o.Provider
	if o.Tenant != "" {
		s += " (tenant " + o.Tenant + ")"
	}
	return s + ", client_id " + o.ClientID + ", client secret " + o.ClientSecretString() + ", token_url " + o.TokenURL +
		", scopes " + strings.Join(o.Scopes, " ")
}

// oauth2 applies one oauth2: mapping (of defaults: or of an account) to a. Keys merge one by one: an
// account's oauth2: may set only what differs from that of defaults:; a client secret source replaces
// the other's.
func (p *parser) oauth2(a *Account, e entry, sc scope) {
	n := resolve(e.val)
	if n.Kind != yaml.MappingNode {
		p.errAt(e.val, sc, "oauth2", "must be a mapping such as {provider: google, client_id: …} (keys: %s)", strings.Join(oauth2Keys, ", "))
		return
	}
	o := &OAuth2{}
	if a.OAuth2 != nil {
		c := *a.OAuth2
		c.Scopes = slices.Clone(c.Scopes)
		o = &c
	}
	a.OAuth2 = o
	if o.given == nil {
		o.given = map[string]bool{}
	}
	var firstSecret *yaml.Node
	p.pairs(n, sc, oauth2Keys, func(name string, ke entry) {
		o.given[name] = true
		key := "oauth2." + name
		ke = entry{key: &yaml.Node{Value: key, Line: ke.key.Line, Column: ke.key.Column}, val: ke.val}
		if slices.Contains(clientSecretKeys, name) {
			if firstSecret != nil {
				p.errAt(ke.key, sc, key, "a second client secret source (%s at line %d); keep one of %s, or none for a public client",
					firstSecret.Value, firstSecret.Line, strings.Join(clientSecretKeys, ", "))
				return
			}
			firstSecret = ke.key
		}
		timeout := o.ClientSecret.Timeout
		switch name {
		case "provider":
			if v, ok := p.enum(ke, sc, oauth2Providers); ok {
				o.Provider = v
			}
		case "client_id":
			if s, ok := p.str(ke, sc); ok {
				o.ClientID = s
			}
		case "client_secret":
			// Never quote the value: it is a secret.
			if v := resolve(ke.val); v.Kind != yaml.ScalarNode || isNull(v) || v.Value == "" {
				p.errAt(ke.val, sc, key, "must be a non-empty string")
			} else if p.mode&0o077 != 0 {
				p.errAt(ke.key, sc, key, "an inline client secret in a file that group or others can access (mode %04o); run: chmod 600 %s (or use client_secret_command or client_secret_env)",
					p.mode, p.path)
			} else {
				o.ClientSecret = PasswordSource{Kind: SourceInline, inline: v.Value, Timeout: timeout}
			}
		case "client_secret_command":
			if argv, shell, ok := p.command(ke, sc, `["pass", "show", "oauth/client-secret"]`); ok {
				o.ClientSecret = PasswordSource{Kind: SourceCommand, Command: argv, Shell: shell, Timeout: timeout}
			}
		case "client_secret_env":
			if s, ok := p.str(ke, sc); ok {
				if !envName.MatchString(s) {
					p.errAt(ke.val, sc, key, "%q is not an environment variable name (letters, digits, _)", s)
				} else {
					o.ClientSecret = PasswordSource{Kind: SourceEnv, Env: s, Timeout: timeout}
				}
			}
		case "auth_url", "token_url", "device_auth_url":
			if s, ok := p.str(ke, sc); ok {
				if err := checkEndpoint(s); err != nil {
					p.errAt(ke.val, sc, key, "%v", err)
					return
				}
				switch name {
				case "auth_url":
					o.AuthURL = s
				case "token_url":
					o.TokenURL = s
				default:
					o.DeviceAuthURL = s
				}
			}
		case "scopes":
			v := resolve(ke.val)
			if v.Kind != yaml.SequenceNode {
				p.errAt(ke.val, sc, key, "must be a list such as [%s], not a %s", googleScope, kindName(v))
				return
			}
			scopes := []string{}
			for _, c := range v.Content {
				c = resolve(c)
				if c.Kind != yaml.ScalarNode || isNull(c) || c.Value == "" || strings.ContainsAny(c.Value, " \t\r\n\"\\") {
					p.errAt(c, sc, key, "each scope must be a non-empty string without spaces, quotes or backslashes (RFC 6749 §3.3)")
					return
				}
				scopes = append(scopes, c.Value)
			}
			o.Scopes = scopes
		case "tenant":
			if s, ok := p.str(ke, sc); ok {
				if !tenantName.MatchString(s) {
					p.errAt(ke.val, sc, key, "%q is not a tenant: common, organizations, consumers, a directory ID or a domain", s)
				} else {
					o.Tenant = s
				}
			}
		}
	})
}

// checkEndpoint accepts an https URL, or an http one on a loopback address (a local test server).
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL such as https://auth.example.com/token", s)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	loopback := host == "localhost" || ip != nil && ip.IsLoopback()
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback) {
		return fmt.Errorf("%q: use https:// (http:// only on 127.0.0.1, [::1] or localhost)", s)
	}
	return nil
}

// finishOAuth2 checks an account's oauth2: as a whole and applies the provider's presets. It runs
// before auth: gets its default, which for an account with oauth2: is xoauth2. at returns the node
// that set a key (for error positions); own reports whether the account itself set one.
func (p *parser) finishOAuth2(a *Account, sc scope, at func(string) *yaml.Node, own func(string) bool, hasAuth bool) {
	o := a.OAuth2
	node := at("oauth2")
	given := o.given
	o.given = nil
	if !given["provider"] {
		p.errAt(node, sc, "oauth2.provider", "missing (required): %s", strings.Join(oauth2Providers, ", "))
	}
	if !given["client_id"] {
		p.errAt(node, sc, "oauth2.client_id", "missing (required): the client ID of the application registered with the provider")
	}
	if o.Tenant != "" && o.Provider != OAuth2Microsoft {
		p.errAt(node, sc, "oauth2.tenant", "only for provider: microsoft")
	}
	switch o.Provider {
	case OAuth2Google:
		o.AuthURL = orDefault(o.AuthURL, googleAuthURL)
		o.TokenURL = orDefault(o.TokenURL, googleTokenURL)
		o.DeviceAuthURL = orDefault(o.DeviceAuthURL, googleDeviceAuthURL)
		if o.Scopes == nil {
			o.Scopes = []string{googleScope}
		}
	case OAuth2Microsoft:
		o.Tenant = orDefault(o.Tenant, DefaultMicrosoftTenant)
		base := microsoftBase + o.Tenant + "/oauth2/v2.0/"
		o.AuthURL = orDefault(o.AuthURL, base+"authorize")
		o.TokenURL = orDefault(o.TokenURL, base+"token")
		o.DeviceAuthURL = orDefault(o.DeviceAuthURL, base+"devicecode")
		if o.Scopes == nil {
			o.Scopes = []string{microsoftPOPScope, "offline_access"}
		}
	case OAuth2Custom:
		if !given["token_url"] {
			p.errAt(node, sc, "oauth2.token_url", "missing: provider custom needs token_url")
		}
		if !given["auth_url"] && !given["device_auth_url"] {
			p.errAt(node, sc, "oauth2.auth_url", "missing: provider custom needs auth_url (for `popfetch oauth2 login`) or device_auth_url (for `popfetch oauth2 login --device`), or both")
		}
	}
	switch {
	case !hasAuth:
		a.Auth = "xoauth2"
	case a.Auth != "" && !slices.Contains(oauth2Auth, a.Auth):
		p.errAt(at("auth"), sc, "auth", "auth: %s cannot use an OAuth2 access token; with oauth2: use xoauth2 (the default) or oauthbearer", a.Auth)
	}
	for _, k := range passwordKeys {
		if own(k) {
			p.errAt(at(k), sc, k, "not used with oauth2: (the access token comes from `popfetch oauth2 login`); remove it")
		}
	}
	a.Password.Kind = SourceOAuth2
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
