package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/popfetch/popfetch/internal/fsutil"
)

// Editing the configuration file, for `popfetch init`: a Profile is an account as init writes it;
// AddAccount adds one to the file (or creates the file), keeping everything else of it.

// Profile is an account as `popfetch init` writes it: the keys it sets, nothing more.
type Profile struct {
	Name, Host      string
	Port            int
	TLS, CAFile     string
	User, Auth      string // Auth "" or "auto" is not written
	PasswordCommand string // "" and PasswordEnv "": the system keyring (a comment says so)
	PasswordEnv     string
	Maildir         string
	Comments        []string // written as comment lines above the account's first key
}

// CheckProfile loads text, a configuration file, as Load would load it from a private file; its
// error says why the profile would not load.
func CheckProfile(text []byte) error {
	if _, err := parse("profile", text, 0o600, os.LookupEnv); err != nil {
		return fmt.Errorf("the new profile would not load: %s", err)
	}
	return nil
}

func yamlScalar(tag, v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v}
}

// accountNode returns the account's mapping.
func (p Profile) accountNode() *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v *yaml.Node) { m.Content = append(m.Content, yamlScalar("!!str", k), v) }
	str := func(k, v string) {
		if v != "" {
			add(k, yamlScalar("!!str", v))
		}
	}
	str("host", p.Host)
	add("port", yamlScalar("!!int", strconv.Itoa(p.Port)))
	str("tls", p.TLS)
	str("ca_file", p.CAFile)
	str("user", p.User)
	if p.Auth != "auto" {
		str("auth", p.Auth)
	}
	str("password_command", p.PasswordCommand)
	str("password_env", p.PasswordEnv)
	deliver := &yaml.Node{Kind: yaml.MappingNode}
	deliver.Content = append(deliver.Content, yamlScalar("!!str", DeliverMaildir), yamlScalar("!!str", p.Maildir))
	add("deliver", deliver)
	if len(p.Comments) > 0 {
		m.Content[0].HeadComment = "# " + strings.Join(p.Comments, "\n# ")
	}
	if p.PasswordCommand == "" && p.PasswordEnv == "" {
		m.Content[len(m.Content)-2].HeadComment = "# password: the system keyring (popfetch password set " + p.Name + ")"
	}
	return m
}

// block is the account as YAML lines: its name at column 0, its keys indented by indent spaces.
func (p Profile) block(indent int) ([]byte, error) {
	m := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{yamlScalar("!!str", p.Name), p.accountNode()}}
	return yamlEncode(m, indent)
}

// Document is a whole configuration file holding only this account.
func (p Profile) Document() ([]byte, error) {
	b, err := p.block(2)
	if err != nil {
		return nil, err
	}
	return append([]byte("accounts:\n"), indentLines(b, 2)...), nil
}

func yamlEncode(n *yaml.Node, indent int) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(indent)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// indentLines prefixes every non-empty line with n spaces.
func indentLines(b []byte, n int) []byte {
	pad := strings.Repeat(" ", n)
	var out bytes.Buffer
	for l := range strings.SplitAfterSeq(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			out.WriteString(pad)
		}
		out.WriteString(l)
	}
	return out.Bytes()
}

// Errors of AddAccount, matched with errors.Is. Other errors are I/O errors, or an *fsutil.UnsafeError
// for a directory another user could change.
var (
	// ErrAccountExists: the account is in the file already and force was not given.
	ErrAccountExists = errors.New("the account exists")
	// ErrChanged: another writer (an editor, a second popfetch init) changed the file meanwhile.
	// Nothing was written; trying again is the fix.
	ErrChanged = errors.New("the configuration file changed meanwhile")
	// ErrCannotAdd: no way was found to add the account that keeps the file valid and every other
	// account as it was. Nothing was written.
	ErrCannotAdd = errors.New("cannot add the account without breaking the file")
)

// editError is an error of AddAccount of one of the kinds above, with its own message.
type editError struct {
	kind error
	msg  string
}

func (e *editError) Error() string        { return e.msg }
func (e *editError) Is(target error) bool { return target == e.kind }

// badVersion marks a candidate content that does not load or changes what it must not: another way
// of adding the account may still work.
type badVersion struct{ error }

// AddAccount adds the account p to the configuration file at path (through a symlink, to its
// target), or creates the file (0600, its directory 0700). old is the file as loaded before (nil when
// it does not exist or holds only comments). An account of the same name is replaced only with force.
//
// The account is added as text when the layout allows, so that everything else stays byte for byte,
// else by editing the YAML tree (comments kept, indentation redone). Each candidate is written to a
// temporary file beside the target, loaded with Load and checked (the new account as written, every
// other account Equal to before), then renamed over the file and the directory fsync'd
// (fsutil.CreateTemp). created reports a new file.
func AddAccount(path string, old *Config, p Profile, force bool) (created bool, err error) {
	if old != nil && old.Account(p.Name) != nil && !force {
		return false, &editError{ErrAccountExists, fmt.Sprintf("account %q already exists in %s", p.Name, path)}
	}
	real := path
	if r, err := filepath.EvalSymlinks(path); err == nil {
		real = r
	}
	before, err := os.ReadFile(real)
	created = errors.Is(err, fs.ErrNotExist)
	if err != nil && !created {
		return false, err
	}
	mode := fs.FileMode(0o600)
	if fi, err := os.Stat(real); err == nil {
		mode = fi.Mode().Perm() &^ 0o022 // the user's choice for an existing file, but writable by no one else
	}
	var versions []func() ([]byte, error)
	if created || old == nil {
		versions = append(versions, func() ([]byte, error) {
			doc, err := p.Document()
			if err != nil {
				return nil, err
			}
			head := "# popfetch configuration: see the README's \"Configuration\" section; `popfetch config check` validates it.\n"
			if len(bytes.TrimSpace(before)) > 0 { // only comments: keep them
				head = string(before)
				if !strings.HasSuffix(head, "\n") {
					head += "\n"
				}
			}
			return append([]byte(head), doc...), nil
		})
	} else {
		versions = append(versions,
			func() ([]byte, error) { return insertText(before, p) },
			func() ([]byte, error) { return insertNode(before, p.Name, p.accountNode()) })
	}
	dir := filepath.Dir(real)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	// The new file is created exclusively beside the target and renamed over it: no link is followed
	// but the user's own. A directory where another user could plant or swap files is refused.
	for _, d := range []string{filepath.Dir(path), dir} {
		if err := fsutil.CheckDir(d, "configuration directory"); err != nil {
			return false, err
		}
	}
	var firstErr error
	for _, version := range versions {
		text, err := version()
		if err != nil {
			err = badVersion{err}
		} else {
			err = tryAdd(real, mode, text, before, created, old, p)
		}
		if err == nil {
			return created, nil
		}
		if !errors.As(err, new(badVersion)) {
			return false, err // I/O, or the file changed: no point in another way
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return false, &editError{ErrCannotAdd, fmt.Sprintf("could not add the account to %s without breaking it (%v); nothing was written: add it by hand (popfetch init --dry-run prints it)", path, firstErr)}
}

// tryAdd writes text to a temporary file, checks it and renames it over real.
func tryAdd(real string, mode fs.FileMode, text, before []byte, created bool, old *Config, p Profile) error {
	t, err := fsutil.CreateTemp(real, mode)
	if err != nil {
		return err
	}
	defer t.Discard()
	_, err = t.Write(text)
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	cfg, err := Load(t.Name())
	if err != nil {
		return badVersion{errors.New(strings.ReplaceAll(err.Error(), t.Name(), real))}
	}
	if err := verifyAdded(cfg, old, p); err != nil {
		return badVersion{err}
	}
	// Another writer since we read it (an editor, a second init)? Then keep theirs.
	now, err := os.ReadFile(real)
	if (created && !errors.Is(err, fs.ErrNotExist)) || (!created && (err != nil || !bytes.Equal(now, before))) {
		return &editError{ErrChanged, fmt.Sprintf("%s changed while popfetch init ran; nothing written: run it again", real)}
	}
	return t.Commit()
}

// verifyAdded checks the loaded result: the new account as written, the others as they were.
func verifyAdded(cfg *Config, old *Config, p Profile) error {
	a := cfg.Account(p.Name)
	if a == nil || a.Host != p.Host || a.Port != p.Port || a.TLS != p.TLS || a.User != p.User {
		return fmt.Errorf("the account %q does not read back as written", p.Name)
	}
	if old == nil {
		return nil
	}
	for _, oa := range old.Accounts {
		if oa.Name == p.Name {
			continue
		}
		if na := cfg.Account(oa.Name); na == nil || !na.Equal(oa) {
			return fmt.Errorf("the account %q would change", oa.Name)
		}
	}
	if len(cfg.Accounts) != len(old.Accounts)+1 && old.Account(p.Name) == nil {
		return errors.New("unexpected accounts")
	}
	return nil
}

// insertText adds the account block (name at column 0) to the block mapping under accounts:,
// as text, so that everything else of the file stays byte for byte: after the last account, or in
// place of the account of the same name (--force). It fails for layouts it does not handle (flow
// style), which insertNode then handles.
func insertText(old []byte, p Profile) ([]byte, error) {
	name := p.Name
	var doc yaml.Node
	if err := yaml.Unmarshal(old, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("not a YAML document")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode || root.Style&yaml.FlowStyle != 0 {
		return nil, errors.New("the top level is not a block mapping")
	}
	ai := -1
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "accounts" {
			ai = i
		}
	}
	if ai < 0 {
		return nil, errors.New("no accounts:")
	}
	accts := root.Content[ai+1]
	if accts.Kind != yaml.MappingNode || accts.Style&yaml.FlowStyle != 0 || len(accts.Content) == 0 {
		return nil, errors.New("accounts: is not a block mapping")
	}
	indent := accts.Content[0].Column - 1
	if indent < 1 {
		return nil, errors.New("accounts are not indented")
	}
	// Indent the new account's keys as the first block-style account does.
	inner := 2
	for k := 1; k < len(accts.Content); k += 2 {
		if v := accts.Content[k]; v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 {
			if n := v.Content[0].Column - 1 - indent; n >= 2 && n <= 8 {
				inner = n
			}
			break
		}
	}
	block, err := p.block(inner)
	if err != nil {
		return nil, err
	}
	lines := strings.SplitAfter(string(old), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	nl := "\n"
	if strings.Contains(string(old), "\r\n") {
		nl = "\r\n"
	}
	if n := len(lines); n > 0 && !strings.HasSuffix(lines[n-1], "\n") {
		lines[n-1] += nl
	}
	// The end of the accounts: block: the next top-level key, less the comments and blank lines
	// before it (they belong to that key).
	end := len(lines)
	if ai+2 < len(root.Content) {
		end = backOver(lines, root.Content[ai+2].Line-1, 0)
	}
	text := string(indentLines(block, indent))
	if nl != "\n" {
		text = strings.ReplaceAll(text, "\n", nl)
	}
	start, stop := end, end
	for k := 0; k+1 < len(accts.Content); k += 2 {
		if accts.Content[k].Value != name {
			continue
		}
		start = accts.Content[k].Line - 1
		if k+2 < len(accts.Content) {
			stop = backOver(lines, accts.Content[k+2].Line-1, indent)
		}
		if start >= stop || accts.Content[k].Column-1 != indent {
			return nil, errors.New("unexpected layout of the account")
		}
	}
	if start > len(lines) || stop > len(lines) {
		return nil, errors.New("unexpected layout")
	}
	out := strings.Join(lines[:start], "") + text + strings.Join(lines[stop:], "")
	return []byte(out), nil
}

// backOver moves line index i up over blank lines and comment lines indented by at most maxIndent.
func backOver(lines []string, i, maxIndent int) int {
	for i > 0 {
		l := strings.TrimRight(lines[i-1], "\r\n")
		t := strings.TrimLeft(l, " ")
		if t != "" && !(strings.HasPrefix(t, "#") && len(l)-len(t) <= maxIndent) {
			break
		}
		i--
	}
	return i
}

// insertNode adds the account with yaml.v3 node editing: comments are kept, but the file is
// re-indented as yaml.v3 writes it. Used when insertText cannot handle the layout.
func insertNode(old []byte, name string, acct *yaml.Node) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(old, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("not a YAML document")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, errors.New("the top level is not a mapping")
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "accounts" {
			continue
		}
		accts := root.Content[i+1]
		if accts.Kind != yaml.MappingNode {
			return nil, errors.New("accounts: is not a mapping")
		}
		indent := 2
		if len(accts.Content) > 0 && accts.Style&yaml.FlowStyle == 0 && accts.Content[0].Column > 1 {
			indent = accts.Content[0].Column - 1
		}
		// A flow mapping ({a: ..., b: ...}) becomes a block one: one account per line is easier to
		// read than everything on one line. The accounts themselves keep their style.
		root.Style &^= yaml.FlowStyle
		if accts.Style&yaml.FlowStyle != 0 {
			accts.Style &^= yaml.FlowStyle
			if key := root.Content[i]; key.LineComment == "" { // a block mapping shows none of its own
				key.LineComment, accts.LineComment = accts.LineComment, ""
			}
		}
		for k := 0; k+1 < len(accts.Content); k += 2 {
			if accts.Content[k].Value == name {
				accts.Content[k+1] = acct
				return yamlEncode(&doc, indent)
			}
		}
		accts.Content = append(accts.Content, yamlScalar("!!str", name), acct)
		return yamlEncode(&doc, indent)
	}
	return nil, errors.New("no accounts:")
}

// IsBlank reports whether the file holds nothing but blank lines and comments.
func IsBlank(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && l != "---" {
			return false
		}
	}
	return true
}
