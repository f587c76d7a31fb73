package pop3

import (
	"bytes"
	"strings"
)

// maxLineLength bounds every line read from the server other than message bodies. RFC 2449 §4 limits
// responses to 512 octets including CRLF; real servers sometimes send longer -ERR texts and listings
// lines, so popfetch allows 4 KiB and refuses anything longer as a protocol violation.
const maxLineLength = 4096

// reply is one parsed status line.
type reply struct {
	ok   bool   // "+OK"
	cont bool   // "+ " continuation (RFC 5034 SASL challenge)
	code string // RFC 2449 response code of a -ERR (or +OK) reply, without brackets
	text string // the text after the status indicator (and code)
}

// parseStatus parses a status line without its line ending: "+OK text", "-ERR [CODE] text", or
// (for SASL) "+ base64". Status indicators are matched case-insensitively, as lenient servers vary.
func parseStatus(line []byte) (reply, bool) {
	var r reply
	var rest []byte
	switch {
	case hasPrefixFold(line, "+OK"):
		r.ok = true
		rest = line[3:]
	case hasPrefixFold(line, "-ERR"):
		rest = line[4:]
	case len(line) >= 1 && line[0] == '+' && (len(line) == 1 || line[1] == ' '):
		r.cont = true
		r.text = string(bytes.TrimSpace(line[1:]))
		return r, true
	default:
		return r, false
	}
	if len(rest) > 0 && rest[0] != ' ' && rest[0] != '\t' {
		return r, false // "+OKAY", "-ERROR": not a status indicator
	}
	rest = bytes.TrimLeft(rest, " \t")
	// RFC 2449 §8: resp-code = "[" resp-level *("/" resp-level) "]"
	if len(rest) > 0 && rest[0] == '[' {
		if end := bytes.IndexByte(rest, ']'); end > 1 {
			code := rest[1:end]
			if validCode(code) {
				r.code = strings.ToUpper(string(code))
				rest = bytes.TrimLeft(rest[end+1:], " \t")
			}
		}
	}
	r.text = string(bytes.TrimRight(rest, " \t"))
	return r, true
}

// validCode reports whether b is a syntactically valid response code (RFC 2449 §8: levels of
// printable characters other than SP, "[", "]" and "/", separated by "/").
func validCode(b []byte) bool {
	if len(b) == 0 || b[0] == '/' || b[len(b)-1] == '/' {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == '[' || c == ']' {
			return false
		}
	}
	return !bytes.Contains(b, []byte("//"))
}

func hasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != prefix[i] { // prefix is upper case
			return false
		}
	}
	return true
}
