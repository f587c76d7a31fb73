package pop3

import (
	"bytes"
	"strconv"
)

// MessageInfo describes one message of the maildrop.
type MessageInfo struct {
	Number int    // message number in this session (RFC 1939 §5); never an identity across sessions
	Size   int64  // size in octets from LIST (-1 when unknown)
	UID    string // unique-id from UIDL (RFC 1939 §7), "" when unknown
}

// maxUIDLength bounds a unique-id. RFC 1939 §7 says 1 to 70 characters; servers exceed that in the
// wild, so popfetch accepts up to 255 and refuses longer ones.
const maxUIDLength = 255

// parseListLine parses "n size" of a LIST reply (RFC 1939 §5). Text after the size is allowed (§5:
// "additional information may follow").
func parseListLine(line []byte) (n int, size int64, ok bool) {
	num, rest, ok := cutNumber(line)
	if !ok {
		return 0, 0, false
	}
	sz, rest, ok := cutNumber(rest)
	if !ok || (len(rest) > 0 && rest[0] != ' ') {
		return 0, 0, false
	}
	return int(num), sz, true
}

// parseUIDLLine parses "n unique-id" of a UIDL reply (RFC 1939 §7). The unique-id is the rest of the
// line without surrounding blanks: servers that put spaces in it are tolerated, control characters
// and overlong ids are not.
func parseUIDLLine(line []byte) (n int, uid string, ok bool) {
	n, b, ok := parseUIDLBytes(line)
	return n, string(b), ok
}

// parseUIDLBytes is parseUIDLLine with the unique-id as a slice of line (no allocation).
func parseUIDLBytes(line []byte) (n int, uid []byte, ok bool) {
	num, rest, ok := cutNumber(line)
	if !ok {
		return 0, nil, false
	}
	rest = bytes.Trim(rest, " \t")
	if len(rest) == 0 || len(rest) > maxUIDLength {
		return 0, nil, false
	}
	for _, c := range rest {
		if c < 0x20 || c == 0x7f {
			return 0, nil, false
		}
	}
	return int(num), rest, true
}

// cutNumber reads a positive decimal number (for message numbers, at least 1; for sizes, 0 allowed by
// the caller's choice) after optional blanks, and returns the rest.
func cutNumber(b []byte) (int64, []byte, bool) {
	b = bytes.TrimLeft(b, " \t")
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || i > 18 {
		return 0, nil, false
	}
	v, err := strconv.ParseInt(string(b[:i]), 10, 64)
	if err != nil {
		return 0, nil, false
	}
	return v, b[i:], true
}
