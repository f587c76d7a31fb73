package termsafe

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain ASCII: +OK POP3 ready <1.2@host>", "plain ASCII: +OK POP3 ready <1.2@host>"},
		{"\x1b]0;pwned\x07\x1b[2J", `\x1b]0;pwned\x07\x1b[2J`},
		{"a\r\nb\tc\x00d\x7fe", `a\r\nb\tc\x00d\x7fe`},
		{"csi \u009b31m", `csi \u009b31m`}, // U+009B (C2 9B)
		{"stray \x9b31m", `stray \x9b31m`}, // raw 0x9b, not UTF-8
		{"ě is C4 9B", "ě is C4 9B"},       // 0x9b inside a valid sequence is kept
		{"Grüße, 日本語, 😀", "Grüße, 日本語, 😀"}, // printable Unicode is kept
		{"\xc3", `\xc3`},                                        // truncated sequence
		{"\xed\xa0\x80", `\xed\xa0\x80`},                        // surrogate: invalid UTF-8
		{"\xc2\x80\xc2\x9f\xc2\xa0", `\u0080\u009f` + "\u00a0"}, // C1 range ends at U+009F
		{"admin\u202egnp.exe", `admin\u202egnp.exe`},            // bidi override
		{"a\u2028b", `a\u2028b`},                                // line separator
		{`already \x1b escaped`, `already \x1b escaped`},        // a backslash is kept: idempotent
	}
	for _, tt := range tests {
		if got := String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := String(String(tt.in)); got != String(tt.in) {
			t.Errorf("String is not idempotent on %q: %q", tt.in, got)
		}
	}
}

func TestText(t *testing.T) {
	in := "line 1\nline 2 \x1b[2J\r\nline 3\r\n"
	want := "line 1\nline 2 \\x1b[2J\\r\nline 3\\r\n"
	if got := Text(in); got != want {
		t.Errorf("Text(%q) = %q, want %q", in, got, want)
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	in := "popfetch: x: \x1b]0;t\x07 \x9b \u009b\n"
	n, err := w.Write([]byte(in))
	if err != nil || n != len(in) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(in))
	}
	if want := `popfetch: x: \x1b]0;t\x07 \x9b \u009b` + "\n"; b.String() != want {
		t.Errorf("wrote %q, want %q", b.String(), want)
	}
}

func TestJSON(t *testing.T) {
	for _, v := range []string{"plain", "\u009b[2J \x9b \x7f \x1b \u202e x\u2028", "Grüße 😀"} {
		raw, err := json.Marshal(map[string]string{"uidl": v})
		if err != nil {
			t.Fatal(err)
		}
		out := JSON(raw)
		if !json.Valid(out) {
			t.Fatalf("JSON(%q) = %q: not valid JSON", raw, out)
		}
		var back, orig map[string]string
		json.Unmarshal(raw, &orig)
		json.Unmarshal(out, &back)
		if back["uidl"] != orig["uidl"] {
			t.Errorf("JSON changed the value: %q, want %q", back["uidl"], orig["uidl"])
		}
		if err := checkSafe(string(out), false); err != "" {
			t.Errorf("JSON(%q) = %q: %s", raw, out, err)
		}
	}
}

// checkSafe returns what is wrong with s as terminal output, or "".
func checkSafe(s string, keepLF bool) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	for _, r := range s {
		switch {
		case r == '\n' && keepLF:
		case r < 0x20 || r == 0x7f:
			return "holds a C0 control or DEL"
		case r >= 0x80 && r <= 0x9f:
			return "holds a C1 control"
		case unsafeRune(r):
			return "holds a bidi or separator character"
		}
	}
	return ""
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "+OK ready", "\x1b]0;x\x07\x1b[2J", "\x9b\xc2\x9b", "ě\r\n\t", "\xff\xfe",
		"a\u202eb", "\\x1b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if err := checkSafe(out, false); err != "" {
			t.Fatalf("String(%q) = %q: %s", s, out, err)
		}
		if String(out) != out {
			t.Fatalf("String(%q) = %q is not stable under String", s, out)
		}
		txt := Text(s)
		if err := checkSafe(txt, true); err != "" {
			t.Fatalf("Text(%q) = %q: %s", s, txt, err)
		}
		if strings.Count(txt, "\n") != strings.Count(s, "\n") {
			t.Fatalf("Text(%q) = %q changed the number of lines", s, txt)
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
			return r < 0x20 || r == 0x7f || unsafeRune(r)
		}) && out != s {
			t.Fatalf("String(%q) = %q changed safe text", s, out)
		}
	})
}

func BenchmarkString(b *testing.B) {
	clean := "pop3: server refused PASS: -ERR [AUTH] invalid user name or password"
	dirty := "x509: certificate is valid for san\x1b]0;pwned\x07\x1b[2J.test, \u009b2J \x9b, not localhost"
	b.Run("clean", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			String(clean)
		}
	})
	b.Run("escapes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			String(dirty)
		}
	})
}
