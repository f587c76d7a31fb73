package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
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
