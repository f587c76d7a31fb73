package config

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DeliverIMAP is the destination kind that appends messages to a mailbox on an IMAP server.
const DeliverIMAP = "imap"

// IMAP ports (RFC 8314 §3.3: imaps 993; RFC 9051: imap 143, also for STARTTLS).
const (
	DefaultPortIMAPS = 993
	DefaultPortIMAP  = 143
)

// Internal dates of appended messages (IMAPDestination.InternalDate).
const (
	IMAPDateReceived = "received" // when popfetch retrieved the message (the default)
	IMAPDateHeader   = "header"   // the message's Date: header; the received time without one
)

var (
	// imapAccountKeys are the keys of deliver: imap: that mean what they mean for an account.
	imapAccountKeys = []string{"host", "port", "tls", "ca_file", "tls_fingerprint", "user", "password",
		"password_command", "password_env", "password_timeout", "allow_plaintext_auth", "oauth2", "timeout"}
	// imapOwnKeys are the keys only deliver: imap: has.
	imapOwnKeys  = []string{"mailbox", "create", "flags", "internal_date"}
	imapDates    = []string{IMAPDateReceived, IMAPDateHeader}
	imapKeyword  = regexp.MustCompile(`^[!#$&'+,\-.0-9:;<=>?@A-Z^_` + "`" + `a-z|~]+$`) // RFC 9051 atom without ] % * " \ ( ) {
	systemFlags  = []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`}
	imapScopeMS  = "https://outlook.office.com/IMAP.AccessAsUser.All"
	imapExamples = "{host: imap.example.com, user: alice@example.com}"
)

// IMAPDestination is deliver: imap: — the mailbox to append to, and how.
type IMAPDestination struct {
	Mailbox      string   // default INBOX
	Create       bool     // create the mailbox when the server answers [TRYCREATE]
	Flags        []string // e.g. [\Seen]; default none
	InternalDate string   // IMAPDateReceived (default) or IMAPDateHeader

	// account holds the connection and credential keys (host, port, tls, ca_file, tls_fingerprint,
	// user, password sources, oauth2, timeout) as a derived account; see Account.DeliveryAccount.
	account *Account
}

// bindIMAP names the derived account after its owner, once the owner is complete.
func (d *IMAPDestination) bind(owner *Account) {
	da := d.account
	da.Name = owner.Name + DeliverySuffix
	da.configPath, da.stateDir = owner.configPath, owner.stateDir
	da.Deliver = Destination{}
}

// deliverIMAP parses deliver: imap:. Errors name their keys deliver.imap.KEY.
func (p *parser) deliverIMAP(e entry, sc scope) (*IMAPDestination, bool) {
	n := resolve(e.val)
	if n.Kind != yaml.MappingNode {
		p.errAt(e.val, sc, "deliver.imap", "must be a mapping such as %s", imapExamples)
		return nil, false
	}
	before := len(p.issues)
	defer func() {
		for i := before; i < len(p.issues); i++ {
			if k := p.issues[i].Key; k != "" && !strings.HasPrefix(k, "deliver.") {
				p.issues[i].Key = "deliver.imap." + k
			}
		}
	}()
	valid := append(slices.Clone(imapAccountKeys), imapOwnKeys...)
	l := layer{sc: sc, node: e.key, entries: map[string]entry{}}
	var firstSource string
	p.pairs(n, sc, valid, func(name string, ke entry) {
		if slices.Contains(passwordKeys, name) {
			if firstSource != "" {
				p.errAt(ke.key, sc, name, "a second password source (%s at line %d); keep exactly one of %s, or none for the system keyring",
					firstSource, l.entries[firstSource].key.Line, strings.Join(passwordKeys, ", "))
				return
			}
			firstSource = name
		}
		if name == "password" && p.mode&0o077 != 0 {
			p.errAt(ke.key, sc, name, "an inline password in a file that group or others can access (mode %04o); run: chmod 600 %s (or use password_command, password_env or the keyring)",
				p.mode, p.path)
		}
		l.entries[name] = ke
	})
	da := &Account{}
	p.apply(da, l, nil)
	d := &IMAPDestination{account: da}
	for _, name := range imapOwnKeys {
		ke, ok := l.entries[name]
		if !ok {
			continue
		}
		switch name {
		case "mailbox":
			if s, ok := p.str(ke, sc); ok {
				if strings.ContainsAny(s, "\r\n\x00") {
					p.errAt(ke.val, sc, name, "must not contain a line break or NUL")
				} else {
					d.Mailbox = s
				}
			}
		case "create":
			d.Create, _ = p.bool(ke, sc)
		case "internal_date":
			d.InternalDate, _ = p.enum(ke, sc, imapDates)
		case "flags":
			v := resolve(ke.val)
			if v.Kind != yaml.SequenceNode {
				p.errAt(ke.val, sc, name, `must be a list such as ['\Seen'], not a %s`, kindName(v))
				continue
			}
			for _, c := range v.Content {
				c = resolve(c)
				if c.Kind != yaml.ScalarNode || isNull(c) {
					p.errAt(c, sc, name, "each flag must be a string, not a %s", kindName(c))
					continue
				}
				f, ok := imapFlag(c.Value)
				if !ok {
					p.errAt(c, sc, name, `%q is not a flag: use \Seen, \Answered, \Flagged, \Draft or a keyword (letters, digits, $ _ - .)`, c.Value)
					continue
				}
				d.Flags = append(d.Flags, f)
			}
		}
	}
	if d.Mailbox == "" {
		d.Mailbox = "INBOX"
	}
	if d.InternalDate == "" {
		d.InternalDate = IMAPDateReceived
	}
	p.finishIMAP(da, l, e.key, sc)
	return d, len(p.issues) == before || p.quiet
}

// imapFlag canonicalises a system flag's case and checks a keyword (RFC 9051 §2.3.2). \Recent
// cannot be set by a client.
func imapFlag(s string) (string, bool) {
	if strings.HasPrefix(s, `\`) {
		for _, f := range systemFlags {
			if strings.EqualFold(f, s) {
				return f, true
			}
		}
		return "", false
	}
	return s, imapKeyword.MatchString(s)
}

// finishIMAP applies the defaults of the destination's connection keys and checks them together.
func (p *parser) finishIMAP(a *Account, l layer, node *yaml.Node, sc scope) {
	at := func(key string) *yaml.Node {
		if e, ok := l.entries[key]; ok {
			return e.key
		}
		return node
	}
	has := func(key string) bool { _, ok := l.entries[key]; return ok }
	for _, k := range []string{"host", "user"} {
		if !has(k) {
			p.errAt(node, sc, k, "missing (required), e.g. deliver: {imap: %s}", imapExamples)
		}
	}
	if a.TLS == "" {
		a.TLS = TLSImplicit
	}
	if a.Port == 0 {
		a.Port = DefaultPortIMAP
		if a.TLS == TLSImplicit {
			a.Port = DefaultPortIMAPS
		}
	}
	if a.OAuth2 != nil {
		if a.OAuth2.Scopes == nil && a.OAuth2.Provider == OAuth2Microsoft {
			a.OAuth2.Scopes = []string{imapScopeMS, "offline_access"}
		}
		p.finishOAuth2(a, sc, at, has, false)
	}
	if a.Password.Kind == "" {
		a.Password.Kind = SourceKeyring
	}
	if a.Timeout == 0 {
		a.Timeout = DefaultTimeout
	}
	if a.TLS == TLSNone {
		for _, k := range []string{"ca_file", "tls_fingerprint"} {
			if has(k) {
				p.errAt(at(k), sc, k, "has no effect with tls: none; use tls: implicit or starttls")
			}
		}
		if !a.AllowPlaintextAuth {
			p.errAt(at("tls"), sc, "tls", "tls: none sends the password (or token) in clear text; use tls: implicit or starttls, or set allow_plaintext_auth: true")
		}
	}
}

// imapString describes an IMAP destination on one line.
func (d *IMAPDestination) String() string {
	a := d.account
	s := "imap " + a.User + " at " + net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) + " (" + a.TLS + "), mailbox " + d.Mailbox
	if d.Create {
		s += " (created when missing)"
	}
	if len(d.Flags) > 0 {
		s += fmt.Sprintf(", flags %s", strings.Join(d.Flags, " "))
	}
	src := a.Password.String()
	if a.Password.Kind == SourceKeyring {
		src = "(keyring, key " + a.Name + ")"
	}
	return s + ", password " + src
}

// checkIMAPLoop refuses a destination that is the account's own POP3 mailbox (the same host and user,
// INBOX): every run would fetch back what the previous one appended, for ever.
func (p *parser) checkIMAPLoop(a *Account, node *yaml.Node, sc scope) {
	d, da := a.Deliver.IMAP, a.Deliver.IMAP.account
	if da.Host != "" && strings.EqualFold(da.Host, a.Host) && da.User == a.User && strings.EqualFold(d.Mailbox, "INBOX") {
		p.errAt(node, sc, "deliver.imap", "appends to the INBOX that this account fetches from (%s on %s): every run would fetch its own messages again; name another mailbox or server", a.User, a.Host)
	}
}
