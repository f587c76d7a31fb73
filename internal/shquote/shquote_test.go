package shquote

import (
	"os/exec"
	"strings"
	"testing"
)

var cases = []struct{ in, want string }{
	{"", "''"},
	{"plain", "plain"},
	{"/home/alice/.config/popfetch/config.yaml", "/home/alice/.config/popfetch/config.yaml"},
	{"alice@example.com", "alice@example.com"},
	{"a b", "'a b'"},
	{"it's", `'it'\''s'`},
	{"'", `''\'''`},
	{`"double"`, `'"double"'`},
	{"$HOME", "'$HOME'"},
	{"$(id)`id`", "'$(id)`id`'"},
	{"line1\nline2", "'line1\nline2'"},
	{"a\\b", `'a\b'`},
	{"A=b", "'A=b'"},
	{"~alice", "'~alice'"},
	{"*?[x]", "'*?[x]'"},
	{"a;b|c&d>e<f", "'a;b|c&d>e<f'"},
	{"{a,b}", "'{a,b}'"},
	{"#x", "'#x'"},
	{"tab\there", "'tab\there'"},
	{"ünï", "'ünï'"},
}

func TestQuote(t *testing.T) {
	for _, c := range cases {
		if got := Quote(c.in); got != c.want {
			t.Errorf("Quote(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got, want := Join([]string{"pass", "show", "mail/it's me", ""}), `pass show 'mail/it'\''s me' ''`; got != want {
		t.Errorf("Join = %q, want %q", got, want)
	}
}

// The shell reads every quoted word back as the original string, as the first word and after it.
func TestQuoteRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	var words []string
	for _, c := range cases {
		words = append(words, c.in)
	}
	script := "for a in " + Join(words) + "; do printf '%s\\0' \"$a\"; done"
	out, err := exec.Command(sh, "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(got) != len(words) {
		t.Fatalf("the shell read %d words, want %d: %q", len(got), len(words), got)
	}
	for i := range words {
		if got[i] != words[i] {
			t.Errorf("the shell read %q as %q", Quote(words[i]), got[i])
		}
	}
	// A first word with '=' runs as a command, not as an assignment.
	out, _ = exec.Command(sh, "-c", Quote("A=b")+" 2>/dev/null; echo $?").Output()
	if strings.TrimSpace(string(out)) != "127" {
		t.Errorf("%s ran as %q, want command not found (127)", Quote("A=b"), out)
	}
}
