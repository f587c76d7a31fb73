package config

import (
	"os"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/popfetch/popfetch/internal/certfp"
)

// Keys of the file. accountKeys are valid under each account and under defaults:.
var (
	topKeys     = []string{"state_dir", "defaults", "accounts"}
	accountKeys = []string{"host", "port", "tls", "ca_file", "tls_fingerprint", "user", "auth",
		"password", "password_command", "password_env", "password_timeout", "allow_plaintext_auth",
		"keep", "keep_days", "fetch_all", "max_size", "oversize", "max_messages", "timeout", "deliver",
		"received_header", "interval", "oauth2", "delete_imported", "max_connections"}
	passwordKeys = []string{"password", "password_command", "password_env"}
	deliverKeys  = []string{DeliverMaildir, DeliverMbox, DeliverMDA, DeliverLMTP, DeliverSMTP, DeliverIMAP, DeliverGmail}
	addressKeys  = []string{"address", "recipient"}
	smtpTLSKeys  = []string{"tls", "ca_file"} // smtp only: smtp_tls.go
	tlsModes     = []string{TLSImplicit, TLSStartTLS, TLSNone}
	oversizes    = []string{OversizeSkip, OversizeDelete}

	// plaintextAuth are the mechanisms that send the password (or a bearer token) as it is.
	plaintextAuth = []string{"user", "plain", "login", "xoauth2", "oauthbearer"}
	// digestAuth are the mechanisms whose MD5 digest of a server challenge can be cracked offline
	// (CVE-2007-1558): over tls: none they need allow_plaintext_auth too.
	digestAuth = []string{"apop", "cram-md5"}

	accountName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	envName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	yamlLine    = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// apply sets a's fields from the keys of l, reporting bad values.
func (p *parser) apply(a *Account, l layer, skip []string) {
	sc := l.sc
	for _, name := range accountKeys {
		e, ok := l.entries[name]
		if !ok || slices.Contains(skip, name) {
			continue
		}
		switch name {
		case "host":
			if s, ok := p.str(e, sc); ok {
				if strings.ContainsAny(s, " \t/") || strings.Count(s, ":") == 1 {
					p.errAt(e.val, sc, name, "%q is not a host name; put the port under port:", s)
				} else {
					a.Host = strings.Trim(s, "[]")
				}
			}
		case "port":
			if n, ok := p.int(e, sc); ok {
				if n < 1 || n > 65535 {
					p.errAt(e.val, sc, name, "%d is out of range (1-65535)", n)
				} else {
					a.Port = n
				}
			}
		case "tls":
			a.TLS, _ = p.enum(e, sc, tlsModes)
		case "ca_file":
			if s, ok := p.str(e, sc); ok {
				if path, ok := p.absPath(e, sc, s); ok {
					if fi, err := os.Stat(path); err != nil {
						p.errAt(e.val, sc, name, "%s", errText(err))
					} else if fi.IsDir() {
						p.errAt(e.val, sc, name, "%s is a directory; name a PEM file", path)
					} else {
						a.CAFile = path
					}
				}
			}
		case "tls_fingerprint":
			if s, ok := p.str(e, sc); ok {
				if fp, prefixed, err := certfp.Parse(s); err == nil && prefixed {
					a.Fingerprint = certfp.Canonical(fp)
				} else {
					p.errAt(e.val, sc, name, "%q is not a SHA-256 fingerprint; write sha256: and 64 hex digits, colons allowed (openssl x509 -noout -fingerprint -sha256)", s)
				}
			}
		case "user":
			if s, ok := p.str(e, sc); ok {
				if strings.ContainsAny(s, "\r\n") {
					p.errAt(e.val, sc, name, "must not contain a line break")
				} else {
					a.User = s
				}
			}
		case "auth":
			a.Auth, _ = p.enum(e, sc, AuthMethods)
		case "password":
			// Never quote the value: it is a secret.
			if n := resolve(e.val); n.Kind != yaml.ScalarNode || isNull(n) || n.Value == "" {
				p.errAt(e.val, sc, name, "must be a non-empty string")
			} else {
				a.Password = PasswordSource{Kind: SourceInline, inline: n.Value, Timeout: a.Password.Timeout}
			}
		case "password_command":
			if argv, shell, ok := p.command(e, sc, `["pass", "show", "mail/work"]`); ok {
				a.Password = PasswordSource{Kind: SourceCommand, Command: argv, Shell: shell, Timeout: a.Password.Timeout}
			}
		case "password_env":
			if s, ok := p.str(e, sc); ok {
				if !envName.MatchString(s) {
					p.errAt(e.val, sc, name, "%q is not an environment variable name (letters, digits, _)", s)
				} else {
					a.Password = PasswordSource{Kind: SourceEnv, Env: s, Timeout: a.Password.Timeout}
				}
			}
		case "password_timeout":
			if d, ok := p.duration(e, sc); ok {
				a.Password.Timeout = d
			}
		case "allow_plaintext_auth":
			a.AllowPlaintextAuth, _ = p.bool(e, sc)
		case "keep":
			a.Keep, _ = p.bool(e, sc)
		case "keep_days":
			if n, ok := p.int(e, sc); ok {
				if n < 0 {
					p.errAt(e.val, sc, name, "must be 0 (keep forever) or more")
				} else {
					a.KeepDays = n
				}
			}
		case "fetch_all":
			a.FetchAll, _ = p.bool(e, sc)
		case "delete_imported":
			a.DeleteImported, _ = p.bool(e, sc)
		case "max_size":
			n := resolve(e.val)
			if n.Kind != yaml.ScalarNode || isNull(n) {
				p.errAt(e.val, sc, name, "must be a size such as 10MB, 512KiB or a number of bytes")
			} else if size, err := ParseSize(n.Value); err != nil {
				p.errAt(e.val, sc, name, "%v", err)
			} else {
				a.MaxSize = size
			}
		case "oversize":
			a.Oversize, _ = p.enum(e, sc, oversizes)
		case "max_messages":
			if n, ok := p.int(e, sc); ok {
				if n < 0 {
					p.errAt(e.val, sc, name, "must be 0 (no limit) or more")
				} else {
					a.MaxMessages = n
				}
			}
		case "timeout":
			if d, ok := p.duration(e, sc); ok {
				a.Timeout = d
			}
		case "deliver":
			if d, ok := p.deliver(e, sc); ok {
				a.Deliver = d
			}
		case "received_header":
			if b, ok := p.bool(e, sc); ok {
				a.TraceHeader = b
			}
		case "oauth2":
			p.oauth2(a, e, sc)
		case "interval":
			if d, ok := p.duration(e, sc); ok {
				if d < MinInterval {
					p.errAt(e.val, sc, name, "%v is too short; poll at most once a second (%v or more)", d, MinInterval)
				} else {
					a.Interval = d
				}
			}
		case "max_connections":
			if n, ok := p.int(e, sc); ok {
				if n < 1 {
					p.errAt(e.val, sc, name, "must be 1 or more (sessions at once with the account's host)")
				} else {
					a.MaxConnections = n
				}
			}
		}
	}
}

// finish applies the defaults of keys nobody set and checks what needs several keys together. al is the
// account's own layer, dl that of defaults:; errors point at whichever set the key.
func (p *parser) finish(a *Account, dl, al layer, nameNode *yaml.Node) {
	sc := al.sc
	at := func(key string) *yaml.Node {
		if e, ok := lookupEntry(key, al, dl); ok {
			return e.key
		}
		return nameNode
	}
	has := func(key string) bool { _, ok := lookupEntry(key, al, dl); return ok }
	missing := func(key, example string) {
		if !has(key) {
			p.errAt(nameNode, sc, key, "missing (required), e.g. %s", example)
		}
	}
	missing("host", "host: pop.example.com")
	missing("user", "user: alice@example.com")
	missing("deliver", "deliver: {maildir: ~/Maildir}")

	if a.TLS == "" {
		a.TLS = TLSImplicit
	}
	if a.Port == 0 {
		a.Port = DefaultPortPlain
		if a.TLS == TLSImplicit {
			a.Port = DefaultPortImplicitTLS
		}
	}
	if a.OAuth2 != nil {
		p.finishOAuth2(a, sc, at, func(k string) bool { _, ok := al.entries[k]; return ok }, has("auth"))
	}
	if a.Auth == "" {
		a.Auth = "auto"
	}
	if a.Password.Kind == "" {
		a.Password.Kind = SourceKeyring
	}
	if a.Oversize == "" {
		a.Oversize = OversizeSkip
	}
	if a.Timeout == 0 {
		a.Timeout = DefaultTimeout
	}
	if a.Interval == 0 {
		a.Interval = DefaultInterval
	}
	if a.MaxConnections == 0 {
		a.MaxConnections = DefaultMaxConnections
	}
	if !has("received_header") {
		a.TraceHeader = true
	}
	if a.Deliver.IMAP != nil {
		a.Deliver.IMAP.bind(a)
		p.checkIMAPLoop(a, at("deliver"), sc)
	}

	if a.TLS == TLSNone {
		for _, k := range []string{"ca_file", "tls_fingerprint"} {
			if has(k) {
				p.errAt(at(k), sc, k, "has no effect with tls: none; use tls: implicit or starttls")
			}
		}
		if slices.Contains(plaintextAuth, a.Auth) && !a.AllowPlaintextAuth {
			p.errAt(at("auth"), sc, "auth", "auth: %s with tls: none sends the password in clear text; use tls: starttls or implicit, or set allow_plaintext_auth: true", a.Auth)
		} else if slices.Contains(digestAuth, a.Auth) && !a.AllowPlaintextAuth {
			p.errAt(at("auth"), sc, "auth", "auth: %s with tls: none sends an MD5 digest that anyone who sees it can crack offline; use tls: starttls or implicit, or set allow_plaintext_auth: true", a.Auth)
		}
	}
	if a.KeepDays > 0 && !a.Keep {
		p.errAt(at("keep_days"), sc, "keep_days", "needs keep: true (without keep, messages are deleted as soon as they are delivered)")
	}
	p.finishGmail(a, sc, at, has)
	if a.MaxSize == 0 && has("oversize") && a.Oversize == OversizeDelete {
		p.errAt(at("oversize"), sc, "oversize", "oversize: delete needs max_size")
	}
}
