package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

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
		case DeliverIMAP:
			var good bool
			d.IMAP, good = p.deliverIMAP(e, sc)
			ok = ok && good
		case DeliverGmail:
			ok = p.gmail(e, sc, &d) && ok
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
