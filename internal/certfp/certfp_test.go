package certfp

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	colons := strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	want := Prefix + hex64
	for _, c := range []struct {
		in     string
		prefix bool
		ok     bool
	}{
		{"sha256:" + hex64, true, true},
		{"SHA256:" + colons, true, true},
		{"  sha256:" + colons + "\n", true, true},
		{hex64, false, true},
		{colons, false, true},
		{"sha256:" + hex64[:62], true, false},
		{"sha256:" + hex64 + "ab", true, false},
		{"sha256:" + hex64[:63] + "g", true, false},
		{"sha1:" + hex64, false, false},
		{"sha256:", true, false},
		{"", false, false},
	} {
		fp, prefix, err := Parse(c.in)
		if (err == nil) != c.ok || prefix != c.prefix {
			t.Errorf("Parse(%q): prefix %v, err %v; want prefix %v, ok %v", c.in, prefix, err, c.prefix, c.ok)
			continue
		}
		if c.ok && Canonical(fp) != want {
			t.Errorf("Canonical(Parse(%q)) = %s, want %s", c.in, Canonical(fp), want)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts reads back from its canonical form.
func FuzzParse(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("0f", 32))
	f.Add(strings.TrimSuffix(strings.Repeat("AB:", 32), ":"))
	f.Add("sha256:")
	f.Fuzz(func(t *testing.T, s string) {
		fp, _, err := Parse(s)
		if err != nil {
			return
		}
		again, prefixed, err := Parse(Canonical(fp))
		if err != nil || !prefixed || again != fp {
			t.Fatalf("%q: canonical %q reads back as %x, %v", s, Canonical(fp), again, err)
		}
	})
}
