// Package termsafe makes text that came from a server, a message or any other party popfetch does not
// control safe to show on a terminal. It is the only way such text reaches stdout or stderr in human
// form: error lines, serverinfo, list, the --trace dialogue, the daemon log and syslog, the OAuth2
// prompts and init's report all pass through it.
//
// What is escaped, and how (everything else is kept as it is):
//
//   - C0 controls (U+0000–U+001F) and DEL (U+007F): `\t`, `\n` and `\r` for tab, line feed and
//     carriage return, `\x1b` (two hex digits) for the others. Tab is escaped too: a field is one
//     token on one line, and a tab in server text is as likely to be an attempt at alignment
//     spoofing as anything useful.
//   - C1 controls (U+0080–U+009F, which many terminals obey as ESC sequences: U+009B is CSI):
//     `\u009b`.
//   - Invalid UTF-8, one byte at a time: `\x9b` for a stray 0x9b byte (a raw C1 control on a terminal
//     that is not in UTF-8 mode).
//   - Characters that reorder or break what the reader sees without being controls to the terminal:
//     the bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069)
//     and the line and paragraph separators (U+2028, U+2029): `\u202e`.
//
// A backslash is not escaped: the output is for people, not for parsing back, and leaving it alone
// makes String idempotent (escaping text that was already escaped changes nothing), so a value may
// pass through it more than once on its way to the terminal.
//
// Text splits a message into lines and keeps the line feeds between them, for popfetch's own
// multi-line messages that carry foreign text; Writer applies Text to every Write. JSON makes
// encoding/json output terminal-safe while keeping it valid JSON with the same meaning.
package termsafe

import (
	"io"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// String returns s with every character that could act on a terminal, and every byte of invalid
// UTF-8, escaped (see the package doc). The result is valid UTF-8 and one line: it holds no byte below
// 0x20, no DEL and no C1 control. A line feed the caller wants after it is the caller's to add.
func String(s string) string {
	if clean(s, false) {
		return s
	}
	return string(appendEscaped(make([]byte, 0, len(s)+16), s, false))
}

// Text is String but keeps line feeds ('\n'), for a multi-line message. A carriage return is escaped,
// with or without a line feed after it: no bare CR leaves popfetch.
func Text(s string) string {
	if clean(s, true) {
		return s
	}
	return string(appendEscaped(make([]byte, 0, len(s)+16), s, true))
}

// clean reports whether s needs no escaping (fast path: plain ASCII text).
func clean(s string, keepLF bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c == 0x7f || (c < 0x20 && !(keepLF && c == '\n')) {
			return false
		}
	}
	return true
}

// appendEscaped appends s to b, escaped.
func appendEscaped(b []byte, s string, keepLF bool) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '\n' && keepLF:
				b = append(b, c)
			case c == '\n':
				b = append(b, `\n`...)
			case c == '\r':
				b = append(b, `\r`...)
			case c == '\t':
				b = append(b, `\t`...)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			i++
			continue
		}
		if unsafeRune(r) {
			b = append(b, '\\', 'u',
				hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// unsafeRune reports whether a (valid, non-ASCII) rune is escaped: C1 controls, bidirectional
// formatting characters, line and paragraph separators.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// Writer escapes what is written to it with Text before passing it on: line feeds are kept, every
// other control and invalid UTF-8 is escaped. Each Write is escaped on its own (a UTF-8 sequence split
// across two Writes is shown as escaped bytes; fmt.Fprintf writes once per call). Write reports
// len(p) on success. A Writer is as safe for concurrent use as the writer it wraps.
type Writer struct {
	w io.Writer
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

func (t *Writer) Write(p []byte) (int, error) {
	s := string(p)
	if clean(s, true) {
		return t.w.Write(p)
	}
	if _, err := t.w.Write(appendEscaped(make([]byte, 0, len(p)+16), s, true)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// JSON returns the output of encoding/json with the characters it leaves raw but a terminal would
// obey (DEL, the C1 controls, the bidirectional formatting characters) written as \u escapes, so that
// `--json` output shown on a terminal cannot drive it. The result is valid JSON with the same meaning:
// outside strings JSON is ASCII, and inside a string \u00XX is the character itself. encoding/json
// already escapes C0 controls, U+2028 and U+2029, and replaces invalid UTF-8 with U+FFFD; b that is not
// valid UTF-8 has such bytes escaped as \ufffd.
func JSON(b []byte) []byte {
	if !hasHigh(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c == 0x7f {
				out = append(out, `\u007f`...)
			} else {
				out = append(out, c) // a C0 byte in encoder output is whitespace between tokens
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, `\ufffd`...)
		case unsafeRune(r):
			out = append(out, '\\', 'u',
				hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		default:
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

// hasHigh reports whether b holds DEL or a non-ASCII byte.
func hasHigh(b []byte) bool {
	for _, c := range b {
		if c >= 0x7f {
			return true
		}
	}
	return false
}

// JSONWriter passes encoding/json output on to w through JSON. An encoder writes each value in one
// Write, so no escape is split.
type JSONWriter struct{ W io.Writer }

func (j JSONWriter) Write(b []byte) (int, error) {
	if _, err := j.W.Write(JSON(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}
