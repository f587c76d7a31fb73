package config

import (
	"context"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// deliver: {gmail: {...}}: import into a Gmail mailbox with the Gmail API's users.messages.import.

// Gmail API scopes (https://developers.google.com/workspace/gmail/api/auth/scopes).
const (
	GmailScopeInsert   = "https://www.googleapis.com/auth/gmail.insert"   // users.messages.import
	GmailScopeReadonly = "https://www.googleapis.com/auth/gmail.readonly" // the rfc822msgid: search after an interruption
	GmailScopeLabels   = "https://www.googleapis.com/auth/gmail.labels"   // users.labels.create
	gmailScopeModify   = "https://www.googleapis.com/auth/gmail.modify"
	// GmailMaxSize is the largest message popfetch retrieves for deliver: gmail (the default and the
	// most for max_size): Gmail's import limit, 150 MB, less room for the headers popfetch adds.
	GmailMaxSize = 150_000_000 - 64<<10
	// DefaultGmailAPIURL is the Gmail API's root.
	DefaultGmailAPIURL = "https://gmail.googleapis.com"
)

// Gmail internal date sources (GmailDestination.InternalDateSource), as the API names them.
const (
	GmailDateHeader   = "dateHeader"
	GmailReceivedTime = "receivedTime"
)

var (
	gmailKeys        = []string{"api_url", "user", "labels", "never_mark_spam", "process_for_calendar", "internal_date_source", "oauth2"}
	gmailDateSources = []string{GmailDateHeader, GmailReceivedTime}
)

// GmailDestination is a deliver: {gmail: …} profile.
type GmailDestination struct {
	APIURL             string   // api_url; DefaultGmailAPIURL
	User               string   // user; "me" (the mailbox of the token's user)
	Labels             []string // labels: names, added to INBOX and UNREAD; created when missing
	NeverMarkSpam      bool     // never_mark_spam
	ProcessForCalendar bool     // process_for_calendar
	InternalDateSource string   // internal_date_source: GmailDateHeader (default) or GmailReceivedTime
	// OAuth2 is the destination's own oauth2: (provider google by default; scopes gmail.insert and
	// gmail.readonly, plus gmail.labels with labels). Its tokens belong to DeliveryAccount.
	OAuth2 *OAuth2
}

// gmail parses deliver: {gmail: …}.
func (p *parser) gmail(e entry, sc scope, d *Destination) bool {
	n := resolve(e.val)
	const example = "{oauth2: {client_id: …apps.googleusercontent.com, client_secret_env: GMAIL_CLIENT_SECRET}, labels: [ISP]}"
	if n.Kind != yaml.MappingNode {
		p.errAt(e.val, sc, "deliver.gmail", "must be a mapping such as %s", example)
		return false
	}
	g := &GmailDestination{APIURL: DefaultGmailAPIURL, User: "me", InternalDateSource: GmailDateHeader}
	ok := true
	var oauthKey *yaml.Node
	scratch := &Account{} // holds the oauth2: block while it is parsed
	p.pairs(n, sc, gmailKeys, func(name string, ge entry) {
		key := "deliver.gmail." + name
		ke := entry{key: &yaml.Node{Value: key, Line: ge.key.Line, Column: ge.key.Column}, val: ge.val}
		before := len(p.issues)
		switch name {
		case "api_url":
			if s, good := p.str(ke, sc); good {
				if err := checkEndpoint(s); err != nil {
					p.errAt(ge.val, sc, key, "%v", err)
				} else {
					g.APIURL = strings.TrimRight(s, "/")
				}
			}
		case "user":
			if s, good := p.str(ke, sc); good {
				if strings.ContainsAny(s, "/?#% \t\r\n") {
					p.errAt(ge.val, sc, key, "%q is not a mailbox: use me or the user's address", s)
				} else {
					g.User = s
				}
			}
		case "labels":
			v := resolve(ge.val)
			if v.Kind != yaml.SequenceNode {
				p.errAt(ge.val, sc, key, "must be a list of label names such as [ISP, Imported], not a %s", kindName(v))
				break
			}
			for _, c := range v.Content {
				c = resolve(c)
				if c.Kind != yaml.ScalarNode || isNull(c) || strings.TrimSpace(c.Value) == "" || strings.ContainsAny(c.Value, "\r\n") {
					p.errAt(c, sc, key, "each label must be a non-empty name on one line")
					continue
				}
				g.Labels = append(g.Labels, c.Value)
			}
		case "never_mark_spam":
			g.NeverMarkSpam, _ = p.bool(ke, sc)
		case "process_for_calendar":
			g.ProcessForCalendar, _ = p.bool(ke, sc)
		case "internal_date_source":
			if v, good := p.enum(ke, sc, gmailDateSources); good {
				g.InternalDateSource = v
			}
		case "oauth2":
			oauthKey = ge.key
			p.oauth2(scratch, ge, sc)
		}
		if len(p.issues) > before {
			ok = false
		}
	})
	if oauthKey == nil {
		p.errAt(e.key, sc, "deliver.gmail.oauth2", "missing (required): the Google OAuth2 client popfetch logs in with, e.g. %s", example)
		return false
	}
	if scratch.OAuth2 != nil {
		o := scratch.OAuth2
		if !o.given["provider"] {
			o.Provider, o.given["provider"] = OAuth2Google, true
		}
		if o.Provider == OAuth2Microsoft {
			p.errAt(oauthKey, sc, "deliver.gmail.oauth2.provider", "microsoft cannot log in to Gmail; use google (the default)")
			ok = false
		}
		if o.Scopes == nil {
			o.Scopes = []string{GmailScopeInsert, GmailScopeReadonly}
			if len(g.Labels) > 0 {
				o.Scopes = append(o.Scopes, GmailScopeLabels)
			}
		} else {
			full := slices.Contains(o.Scopes, googleScope) || slices.Contains(o.Scopes, gmailScopeModify)
			if !full && !slices.Contains(o.Scopes, GmailScopeInsert) {
				p.errAt(oauthKey, sc, "deliver.gmail.oauth2.scopes", "must include %s (to import)", GmailScopeInsert)
				ok = false
			}
			if !full && !slices.Contains(o.Scopes, GmailScopeReadonly) {
				p.errAt(oauthKey, sc, "deliver.gmail.oauth2.scopes", "must include %s: after an interruption popfetch searches the mailbox to learn which messages arrived (no loss, no duplicate)", GmailScopeReadonly)
				ok = false
			}
		}
		before := len(p.issues)
		p.finishOAuth2(scratch, sc, func(string) *yaml.Node { return oauthKey }, func(string) bool { return false }, false)
		ok = ok && len(p.issues) == before
		g.OAuth2 = scratch.OAuth2
	} else {
		ok = false
	}
	d.Gmail = g
	return ok
}

// finishGmail applies Gmail's size limit to max_size.
func (p *parser) finishGmail(a *Account, sc scope, at func(string) *yaml.Node, has func(string) bool) {
	if a.Deliver.Kind != DeliverGmail {
		return
	}
	if a.MaxSize > GmailMaxSize {
		p.errAt(at("max_size"), sc, "max_size", "Gmail imports messages of up to 150 MB; with deliver: gmail, max_size is at most %d (larger messages follow oversize:)", GmailMaxSize)
	}
	if a.MaxSize == 0 {
		a.MaxSize = GmailMaxSize
	}
}

// gmailDeliveryAccount is DeliveryAccount for deliver: gmail: (nil without its oauth2:). Its refresh
// token is in the keyring under "NAME@deliver:oauth2-refresh" (or STATE_DIR/NAME@deliver.oauth2), and
// Secret yields its access token as for a POP account with oauth2:.
func (a *Account) gmailDeliveryAccount() *Account {
	if a.Deliver.Kind != DeliverGmail || a.Deliver.Gmail == nil || a.Deliver.Gmail.OAuth2 == nil {
		return nil
	}
	return &Account{Name: a.Name + DeliverySuffix, Host: a.Deliver.Gmail.APIURL, User: a.Deliver.Gmail.User,
		Auth: "xoauth2", Password: PasswordSource{Kind: SourceOAuth2, Timeout: a.Password.Timeout},
		OAuth2: a.Deliver.Gmail.OAuth2, Timeout: a.Timeout, Deliver: a.Deliver,
		configPath: a.configPath, stateDir: a.stateDir}
}

// OAuth2Refused returns a fresh access token after a server refused the token refused (HTTP 401: it
// expired early or was revoked): the cached one is dropped if it is still refused, then Secret
// refreshes it with the refresh token. Errors are as Secret's.
func (a *Account) OAuth2Refused(ctx context.Context, o *SecretOptions, refused string) (string, error) {
	if a.OAuth2 == nil {
		return a.Secret(ctx, o)
	}
	unlock, err := a.lockOAuth2(ctx)
	if err != nil {
		return "", err
	}
	f, err := a.readOAuth2File()
	if err == nil && f.AccessToken == refused && refused != "" {
		f.AccessToken, f.TokenType = "", ""
		err = a.writeOAuth2File(f)
	}
	unlock()
	if err != nil {
		return "", a.oauth2Err(err)
	}
	return a.oauth2AccessToken(ctx, o)
}
