package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Keys of the file. accountKeys are valid under each account and under defaults:.
var (
	topKeys     = []string{"state_dir", "defaults", "accounts"}
	accountKeys = []string{"host", "port", "tls", "ca_file", "tls_fingerprint", "user", "auth",
		"password", "password_command", "password_env", "password_timeout", "allow_plaintext_auth",
		"keep", "keep_days", "fetch_all", "max_size", "oversize", "max_messages", "timeout", "deliver",
		"received_header", "interval", "oauth2", "delete_imported", "max_connections"}
	passwordKeys = []string{"password", "password_command", "password_env"}
	deliverKeys  = []string{DeliverMaildir, DeliverMbox, DeliverMDA, DeliverLMTP, DeliverSMTP}
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

// Load reads, validates and defaults the configuration file at path. Every problem of the file is
// reported at once in a *Error; a missing file is a *Error too (wrapping fs.ErrNotExist) whose message
// says how to create one. An inline password in a file that group or others may read is an error
// (like fetchmail's check of ~/.fetchmailrc), and so is a file that another user could change (owned
// by someone other than the user or root, or writable by group or others). Load resolves no password.
//
// A file larger than MaxFileSize is refused unread (a *Error): no profile comes near it, and parsing
// an arbitrary file named by mistake (a log, a mailbox) should not take the machine's memory.
func Load(path string) (*Config, error) {
	data, mode, err := readConfigFile(path)
	if errors.Is(err, errTooLarge) {
		return nil, &Error{Path: path, Issues: []Issue{{Msg: fmt.Sprintf("the file is larger than 1 MiB (%d bytes), "+
			"far more than any configuration needs: is it the right file?", MaxFileSize)}}, Err: err}
	}
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		if m, ok := unsafeMsg(err); ok {
			msg = m
		}
		if errors.Is(err, fs.ErrNotExist) {
			msg = "no such file: create it (the README's \"Configuration\" section has an example; " +
				"`popfetch config path` shows where popfetch looks), or name another file with --config FILE or POPFETCH_CONFIG"
		}
		return nil, &Error{Path: path, Issues: []Issue{{Msg: msg}}, Err: err}
	}
	return parse(path, data, mode, os.LookupEnv)
}

// MaxFileSize bounds the configuration file: 1 MiB holds thousands of accounts; a typical file is
// well under 10 KiB.
const MaxFileSize = 1 << 20

var errTooLarge = errors.New("file too large")

// scope is where in the file a key is: top level, defaults: or an account.
type scope struct {
	account  string
	defaults bool
}

type entry struct{ key, val *yaml.Node }

// layer is one mapping of account keys (defaults: or one account), checked for unknown and duplicate
// keys.
type layer struct {
	sc      scope
	node    *yaml.Node // the mapping (or the account's name key when the mapping is empty)
	entries map[string]entry
}

type parser struct {
	path   string
	mode   fs.FileMode
	lookup func(string) (string, bool)
	issues []Issue
	quiet  bool // applying defaults: to an account; their errors are reported once, not per account
}

func (p *parser) errAt(n *yaml.Node, sc scope, key, format string, args ...any) {
	if p.quiet {
		return
	}
	is := Issue{Account: sc.account, Defaults: sc.defaults, Key: key, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		is.Line, is.Col = n.Line, n.Column
	}
	p.issues = append(p.issues, is)
}

func parse(path string, data []byte, mode fs.FileMode, lookup func(string) (string, bool)) (*Config, error) {
	p := &parser{path: path, mode: mode, lookup: lookup}
	cfg := p.parse(data)
	if len(p.issues) > 0 {
		sort.SliceStable(p.issues, func(i, j int) bool {
			a, b := p.issues[i], p.issues[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Col < b.Col
		})
		return nil, &Error{Path: path, Issues: p.issues}
	}
	return cfg, nil
}

func (p *parser) parse(data []byte) *Config {
	top := scope{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		is := Issue{Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			is.Line, _ = strconv.Atoi(m[1])
			is.Msg = "not valid YAML: " + m[2]
		}
		// yaml.v3 reports the line where the enclosing block starts; the first prefix of the file that
		// fails to parse ends at the line that is wrong.
		if line, col := firstBadLine(data); line > is.Line {
			is.Line, is.Col = line, col
		}
		p.issues = append(p.issues, is)
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		p.errAt(nil, top, "", "the file is empty; it needs at least accounts: with one account")
		return nil
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.errAt(root, top, "", "the file must be a mapping with the keys %s", strings.Join(topKeys, ", "))
		return nil
	}
	cfg := &Config{Path: p.path}
	var defaults, accounts *entry
	p.pairs(root, top, topKeys, func(name string, e entry) {
		switch name {
		case "state_dir":
			if s, ok := p.str(e, top); ok {
				cfg.StateDir, _ = p.absPath(e, top, s)
			}
		case "defaults":
			defaults = &e
		case "accounts":
			accounts = &e
		}
	})
	if cfg.StateDir == "" {
		d, err := DefaultStateDir()
		if err != nil {
			p.errAt(nil, top, "state_dir", "%v", err)
		}
		cfg.StateDir = d
	}

	// defaults: are checked once, on their own; an account then inherits the keys that are valid.
	dsc := scope{defaults: true}
	var dl layer
	if defaults != nil {
		dl = p.layer(defaults.key, defaults.val, dsc)
		var scratch Account
		p.apply(&scratch, dl, nil)
	}

	if accounts == nil {
		misspelt := false
		for i := 0; i < len(root.Content); i += 2 {
			misspelt = misspelt || suggest(root.Content[i].Value, topKeys) == "accounts"
		}
		if !misspelt { // else the unknown key's error already says "did you mean accounts"
			p.errAt(root, top, "accounts", "missing: the file needs accounts: with at least one account")
		}
		return cfg
	}
	an := resolve(accounts.val)
	if isNull(an) || (an.Kind == yaml.MappingNode && len(an.Content) == 0) {
		p.errAt(accounts.key, top, "accounts", "no accounts; add one, e.g. `work: {host: …, user: …, deliver: {maildir: ~/Maildir}}`")
		return cfg
	}
	if an.Kind != yaml.MappingNode {
		p.errAt(an, top, "accounts", "must be a mapping of account names to accounts, not a %s", kindName(an))
		return cfg
	}
	p.pairs(an, top, nil, func(name string, e entry) {
		sc := scope{account: name}
		if !accountName.MatchString(name) {
			p.errAt(e.key, top, "", "account name %q: use only letters, digits, '.', '_' and '-'", name)
			return
		}
		al := p.layer(e.key, e.val, sc)
		a := &Account{Name: name, configPath: p.path, stateDir: cfg.StateDir}
		// An account that names a password source replaces the one of defaults: entirely.
		var skip []string
		if al.hasAny(passwordKeys) {
			skip = passwordKeys
		}
		p.quiet = true
		p.apply(a, dl, skip)
		p.quiet = false
		p.apply(a, al, nil)
		p.finish(a, dl, al, e.key)
		cfg.Accounts = append(cfg.Accounts, a)
	})
	sort.Slice(cfg.Accounts, func(i, j int) bool { return cfg.Accounts[i].Name < cfg.Accounts[j].Name })
	shareSecretEnv(cfg) // childenv.go
	return cfg
}

// firstBadLine returns the line (and its first non-blank column) that ends the shortest prefix of data
// that is not valid YAML, or 0 when it cannot tell cheaply. yaml.v3 names the line where the
// enclosing block starts, which can be far above the mistake.
//
// The work is linear in the size of data: re-parsing every prefix (as this once did) took 31 s for
// 450 lines of 20 KB. Instead one streaming parse, fed a line at a time, shows how far the parser
// read before it failed (the bad line, or a line or two past it: the scanner looks ahead); then the
// prefixes ending in that short window are parsed, and the first that fails is the answer. When even
// the first prefix of the window fails (an error that only shows at the end of the input, such as an
// unterminated quote), it returns 0 and yaml.v3's own line stands.
func firstBadLine(data []byte) (line, col int) {
	lines := strings.SplitAfter(string(data), "\n")
	lr := &lineReader{lines: lines}
	var doc yaml.Node
	if yaml.NewDecoder(lr).Decode(&doc) == nil {
		return 0, 0
	}
	last := lr.next // lines handed to the parser when it failed
	const window = 4
	first := max(last-window, 0)
	end := 0
	for _, l := range lines[:first] {
		end += len(l)
	}
	prev := first == 0 || yaml.Unmarshal(data[:end], &doc) == nil
	for k := first + 1; k <= last; k++ {
		end += len(lines[k-1])
		ok := yaml.Unmarshal(data[:end], &doc) == nil
		if prev && !ok {
			l := lines[k-1]
			return k, len(l) - len(strings.TrimLeft(l, " \t")) + 1
		}
		prev = ok
	}
	return 0, 0
}

// lineReader hands its lines to a reader one at a time (a long line in pieces), so that the parser
// reads only as far as it needs and next tells how far that was.
type lineReader struct {
	lines []string
	next  int    // lines started so far
	rest  string // the unread part of line next-1
}

func (r *lineReader) Read(p []byte) (int, error) {
	if r.rest == "" {
		if r.next == len(r.lines) {
			return 0, io.EOF
		}
		r.rest = r.lines[r.next]
		r.next++
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// pairs calls f for each key of mapping n in order, after reporting non-scalar, duplicate and (when
// valid is non-nil) unknown keys, which it skips.
func (p *parser) pairs(n *yaml.Node, sc scope, valid []string, f func(string, entry)) {
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errAt(k, sc, "", "a key must be a plain name, not a %s", kindName(k))
			continue
		}
		name := k.Value
		if first, dup := seen[name]; dup {
			p.errAt(k, sc, name, "defined twice (first at line %d)", first.Line)
			continue
		}
		seen[name] = k
		if valid != nil && !slices.Contains(valid, name) {
			msg := "unknown key"
			if name == "<<" {
				msg = "merge keys are not supported; put shared keys under defaults:"
			} else if s := suggest(name, valid); s != "" {
				msg += fmt.Sprintf(", did you mean %q?", s)
			}
			p.errAt(k, sc, name, "%s (valid: %s)", msg, strings.Join(valid, ", "))
			continue
		}
		f(name, entry{key: k, val: v})
	}
}

func (p *parser) layer(key, val *yaml.Node, sc scope) layer {
	l := layer{sc: sc, node: key, entries: map[string]entry{}}
	n := resolve(val)
	if isNull(n) {
		return l
	}
	if n.Kind != yaml.MappingNode {
		p.errAt(n, sc, "", "must be a mapping of keys (%s), not a %s", strings.Join(accountKeys, ", "), kindName(n))
		return l
	}
	var firstSource string
	p.pairs(n, sc, accountKeys, func(name string, e entry) {
		if slices.Contains(passwordKeys, name) {
			if firstSource != "" {
				p.errAt(e.key, sc, name, "a second password source (%s at line %d); keep exactly one of %s, or none for the system keyring",
					firstSource, l.entries[firstSource].key.Line, strings.Join(passwordKeys, ", "))
				return
			}
			firstSource = name
		}
		if name == "password" {
			if p.mode&0o077 != 0 {
				p.errAt(e.key, sc, name, "an inline password in a file that group or others can access (mode %04o); run: chmod 600 %s (or use password_command, password_env or the keyring)",
					p.mode, p.path)
			}
		}
		l.entries[name] = e
	})
	return l
}

func (l layer) hasAny(keys []string) bool {
	for _, k := range keys {
		if _, ok := l.entries[k]; ok {
			return true
		}
	}
	return false
}

// lookup returns the entry that sets key for an account: its own, else the one of defaults:.
func lookupEntry(key string, layers ...layer) (entry, bool) {
	for _, l := range layers {
		if e, ok := l.entries[key]; ok {
			return e, true
		}
	}
	return entry{}, false
}

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
				if fp, ok := parseFingerprint(s); ok {
					a.Fingerprint = fp
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
	if a.MaxSize == 0 && has("oversize") && a.Oversize == OversizeDelete {
		p.errAt(at("oversize"), sc, "oversize", "oversize: delete needs max_size")
	}
}

// str returns a scalar's value; a mapping, sequence or null is an error.
func (p *parser) str(e entry, sc scope) (string, bool) {
	n := resolve(e.val)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errAt(e.val, sc, e.key.Value, "must be a string, not a %s", kindName(n))
		return "", false
	}
	if n.Value == "" {
		p.errAt(e.val, sc, e.key.Value, "must not be empty")
		return "", false
	}
	return n.Value, true
}

func (p *parser) int(e entry, sc scope) (int, bool) {
	n := resolve(e.val)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		if v, err := strconv.ParseInt(n.Value, 0, 64); err == nil && v == int64(int(v)) {
			return int(v), true
		}
	}
	p.errAt(e.val, sc, e.key.Value, "must be a whole number, not %s", describe(n))
	return 0, false
}

func (p *parser) bool(e entry, sc scope) (bool, bool) {
	n := resolve(e.val)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		v, err := strconv.ParseBool(strings.ToLower(n.Value))
		return v, err == nil
	}
	p.errAt(e.val, sc, e.key.Value, "must be true or false, not %s", describe(n))
	return false, false
}

func (p *parser) duration(e entry, sc scope) (time.Duration, bool) {
	n := resolve(e.val)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		if d, err := time.ParseDuration(n.Value); err == nil {
			if d <= 0 {
				p.errAt(e.val, sc, e.key.Value, "must be more than 0")
				return 0, false
			}
			return d, true
		}
	}
	p.errAt(e.val, sc, e.key.Value, "must be a duration such as 60s, 2m or 1m30s, not %s", describe(n))
	return 0, false
}

func (p *parser) enum(e entry, sc scope, valid []string) (string, bool) {
	n := resolve(e.val)
	if n.Kind == yaml.ScalarNode && slices.Contains(valid, n.Value) {
		return n.Value, true
	}
	msg := fmt.Sprintf("%s is not valid", describe(n))
	if n.Kind == yaml.ScalarNode {
		if s := suggest(strings.ToLower(n.Value), valid); s != "" {
			msg += fmt.Sprintf(", did you mean %q?", s)
		}
	}
	p.errAt(e.val, sc, e.key.Value, "%s (valid: %s)", msg, strings.Join(valid, ", "))
	return "", false
}

// command parses a command given as a list (argv, no shell) or a string (run by sh -c).
func (p *parser) command(e entry, sc scope, example string) (argv []string, shell, ok bool) {
	n := resolve(e.val)
	switch {
	case n.Kind == yaml.ScalarNode && !isNull(n) && strings.TrimSpace(n.Value) != "":
		return []string{"sh", "-c", n.Value}, true, true
	case n.Kind == yaml.SequenceNode && len(n.Content) > 0:
		for _, c := range n.Content {
			c = resolve(c)
			if c.Kind != yaml.ScalarNode || isNull(c) {
				p.errAt(c, sc, e.key.Value, "each element of the command must be a string, not a %s", kindName(c))
				return nil, false, false
			}
			argv = append(argv, c.Value)
		}
		if argv[0] == "" {
			p.errAt(n, sc, e.key.Value, "the program name is empty")
			return nil, false, false
		}
		return argv, false, true
	}
	p.errAt(e.val, sc, e.key.Value, "must be a command: a list such as %s (run without a shell) or a string (run by sh -c)", example)
	return nil, false, false
}

func (p *parser) deliver(e entry, sc scope) (Destination, bool) {
	n := resolve(e.val)
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		p.errAt(e.val, sc, "deliver", "must name exactly one destination (valid: %s), e.g. deliver: {maildir: ~/Maildir}", strings.Join(deliverKeys, ", "))
		return Destination{}, false
	}
	var d Destination
	var first *yaml.Node
	ok := true
	p.pairs(n, sc, deliverKeys, func(kind string, e entry) {
		if first != nil {
			p.errAt(e.key, sc, "deliver", "a second destination %q (first %q at line %d); a profile delivers to exactly one", kind, first.Value, first.Line)
			ok = false
			return
		}
		first = e.key
		d.Kind = kind
		key := "deliver." + kind
		switch kind {
		case DeliverMaildir, DeliverMbox:
			s, good := p.str(entry{key: &yaml.Node{Value: key}, val: e.val}, sc)
			if good {
				d.Path, good = p.absPath(entry{key: &yaml.Node{Value: key}, val: e.val}, sc, s)
			}
			ok = ok && good
		case DeliverMDA:
			var good bool
			d.Command, d.Shell, good = p.command(entry{key: &yaml.Node{Value: key}, val: e.val}, sc, `["/usr/bin/procmail", "-d", "alice"]`)
			ok = ok && good
		case DeliverLMTP, DeliverSMTP:
			ok = p.address(e, sc, key, &d) && ok
		}
	})
	if first == nil {
		ok = false
	}
	return d, ok
}

func (p *parser) address(e entry, sc scope, key string, d *Destination) bool {
	n := resolve(e.val)
	example := "{address: localhost:25, recipient: alice@localhost}"
	if d.Kind == DeliverLMTP {
		example = "{address: unix:/run/dovecot/lmtp, recipient: alice}"
	}
	if n.Kind != yaml.MappingNode {
		p.errAt(e.val, sc, key, "must be a mapping such as %s", example)
		return false
	}
	ok := true
	got := map[string]bool{}
	valid := addressKeys
	if d.Kind == DeliverSMTP {
		valid = slices.Concat(addressKeys, smtpTLSKeys)
	}
	p.pairs(n, sc, valid, func(name string, ae entry) {
		got[name] = true
		k := key + "." + name
		if slices.Contains(smtpTLSKeys, name) {
			ok = p.smtpTLS(ae, sc, k, name, d) && ok
			return
		}
		s, good := p.str(entry{key: &yaml.Node{Value: k}, val: ae.val}, sc)
		if !good {
			ok = false
			return
		}
		switch name {
		case "recipient":
			if strings.ContainsAny(s, "\r\n<> ") {
				p.errAt(ae.val, sc, k, "%q is not a mailbox address", s)
				ok = false
			}
			d.Recipient = s
		case "address":
			if path, isUnix := strings.CutPrefix(s, "unix:"); isUnix {
				abs, good := p.absPath(entry{key: &yaml.Node{Value: k}, val: ae.val}, sc, path)
				ok = ok && good
				d.Address = "unix:" + abs
				return
			}
			host, port, err := net.SplitHostPort(s)
			if err != nil || host == "" {
				p.errAt(ae.val, sc, k, "%q is not host:port or unix:/path/to/socket", s)
				ok = false
				return
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				p.errAt(ae.val, sc, k, "port %q is not a number in 1-65535", port)
				ok = false
				return
			}
			d.Address = s
		}
	})
	for _, name := range addressKeys {
		if !got[name] {
			p.errAt(e.key, sc, key+"."+name, "missing (required), e.g. %s", example)
			ok = false
		}
	}
	if d.Kind == DeliverSMTP && ok {
		ok = p.smtpTLSDefault(e, sc, key, d)
	}
	return ok
}

// absPath expands ~, ~user, $VAR and ${VAR} in s; the result must be absolute.
func (p *parser) absPath(e entry, sc scope, s string) (string, bool) {
	path, err := expandPath(s, p.lookup)
	if err != nil {
		p.errAt(e.val, sc, e.key.Value, "%v", err)
		return "", false
	}
	if !filepath.IsAbs(path) {
		p.errAt(e.val, sc, e.key.Value, "%q is not an absolute path; start it with /, ~/ or $HOME/", s)
		return "", false
	}
	return filepath.Clean(path), true
}

func expandPath(s string, lookup func(string) (string, bool)) (string, error) {
	if strings.HasPrefix(s, "~") {
		name, rest, _ := strings.Cut(s[1:], "/")
		var home string
		if name == "" {
			h, ok := lookup("HOME")
			if !ok || h == "" {
				d, err := os.UserHomeDir()
				if err != nil {
					return "", errors.New("cannot expand ~: $HOME is not set")
				}
				h = d
			}
			home = h
		} else {
			u, err := user.Lookup(name)
			if err != nil {
				return "", fmt.Errorf("cannot expand ~%s: no such user", name)
			}
			home = u.HomeDir
		}
		s = filepath.Join(home, rest)
	}
	var missing []string
	out := os.Expand(s, func(v string) string {
		val, ok := lookup(v)
		if !ok {
			missing = append(missing, "$"+v)
		}
		return val
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%s is not set in the environment", strings.Join(missing, ", "))
	}
	return out, nil
}

// ParseSize parses a size in bytes: a plain number, or a number with a unit: B, kB/KB, MB, GB (powers
// of 1000) or KiB, MiB, GiB (powers of 1024). Units are case-insensitive.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}[unit]
	bad := fmt.Errorf("%q is not a size; write a number of bytes or one with a unit: 10MB, 512KiB (B, kB, MB, GB, KiB, MiB, GiB)", s)
	if mult == 0 || num == "" {
		return 0, bad
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || float64(n)*mult > 1<<62 {
			return 0, bad
		}
		return n * int64(mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*mult > 1<<62 {
		return 0, bad
	}
	return int64(f * mult), nil
}

// parseFingerprint accepts "sha256:" followed by 32 bytes in hex, with or without colons, and returns
// it as "sha256:" + lowercase hex without colons.
func parseFingerprint(s string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	if !ok {
		return "", false
	}
	hex := strings.ReplaceAll(rest, ":", "")
	if len(hex) != 64 {
		return "", false
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return "sha256:" + hex, true
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n == nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "empty value"
		}
		return strings.TrimPrefix(n.Tag, "!!")
	}
	return "value"
}

// describe quotes a scalar for an error message (never used for password values).
func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		return strconv.Quote(n.Value)
	}
	return "a " + kindName(n)
}

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

// suggest returns the valid name closest to name, if it is close enough to be a typo.
func suggest(name string, valid []string) string {
	best, bestD := "", 3
	for _, v := range valid {
		if d := editDistance(name, v); d < bestD {
			best, bestD = v, d
		}
	}
	if best == "" {
		for _, v := range valid {
			if len(name) >= 3 && (strings.HasPrefix(v, name) || strings.HasPrefix(name, v)) {
				return v
			}
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// shellQuote renders argv for display, quoting arguments that need it.
func shellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@%+,", r))
		}) < 0 {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}
