package pop3

import (
	"fmt"
	"unsafe"
)

// A listing held compactly. A maildrop of a million messages with 250-character UIDLs
// took 721 MB in `popfetch check`: a separate string per UIDL, a second slice for the UIDL reply, a
// map to merge it with LIST's by number. Now the UIDL reply is written straight into the LIST
// slice (message numbers are 1..n in order at the start of a session, so the index is the number;
// a map is built only for a server that lists them otherwise), and the UIDLs are copied into shared
// blocks of 1 MiB instead of one allocation each.

// MaxListing bounds the lines of a LIST or UIDL reply: a maildrop of more messages is refused with
// ErrListingTooLong (the CLI exits 65). A million is far beyond what a POP3 maildrop holds in
// practice (at a typical 50 KB a message, 50 GB in one mailbox that POP3 reads whole on every
// login), and it bounds what a listing can take: `popfetch check` of a million UIDLs of the longest
// length popfetch accepts (255) peaks at 350 MB (docs/BENCHMARKS.md). It was 10,000,000 (about 7 GB).
const MaxListing = 1_000_000

// uidBlock is the size of the blocks UIDLs are copied into.
const uidBlock = 1 << 20

// uidArena copies UIDLs into shared blocks. The strings it returns point into a block; a block is
// only ever appended to, never changed, so the strings are immutable as Go requires. A block lives
// as long as any of its strings.
//
// Blocks start at 4 KiB and double up to uidBlock, so that a small maildrop's listing costs a few KiB,
// not a megabyte of heap in every sync.
type uidArena struct {
	buf  []byte
	next int // size of the next block
}

func (a *uidArena) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > cap(a.buf)-len(a.buf) {
		a.next = min(uidBlock, max(4<<10, 2*a.next))
		a.buf = make([]byte, 0, max(a.next, len(b)))
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[start], len(b))
}

// tooLong is the error for a listing of more than MaxListing lines.
func tooLong(cmd string) error {
	return fmt.Errorf("%w: the %s reply names more than %d, the most popfetch takes from one maildrop "+
		"(empty it some other way first, e.g. with webmail or IMAP)", ErrListingTooLong, cmd, MaxListing)
}

// readList reads a LIST reply. It collects the lines in chunks and copies them once into a slice of
// the exact length: growing one slice by append would leave about four times its final size behind
// as garbage.
func (c *Client) readList() ([]MessageInfo, error) {
	const chunk = 4096 // the largest; chunks start at 64 entries and double
	var chunks [][]MessageInfo
	cur := make([]MessageInfo, 0, 64)
	total := 0
	err := c.readLines("LIST", MaxListing+1, func(l []byte) error {
		if total == MaxListing {
			return tooLong("LIST")
		}
		n, sz, ok := parseListLine(l)
		if !ok || n < 1 {
			return protocolError("LIST", "malformed line %q", sanitize(string(l)))
		}
		if len(cur) == cap(cur) {
			chunks = append(chunks, cur)
			cur = make([]MessageInfo, 0, min(chunk, 2*cap(cur)))
		}
		cur = append(cur, MessageInfo{Number: n, Size: sz})
		total++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(chunks) == 0 {
		return cur, nil
	}
	out := make([]MessageInfo, 0, total)
	for _, ch := range chunks {
		out = append(out, ch...)
	}
	return append(out, cur...), nil
}

// readUidl reads a UIDL reply into a listing of its own (Size -1).
func (c *Client) readUidl() ([]MessageInfo, error) {
	var out []MessageInfo
	var arena uidArena
	err := c.readLines("UIDL", MaxListing+1, func(l []byte) error {
		if len(out) == MaxListing {
			return tooLong("UIDL")
		}
		n, uid, ok := parseUIDLBytes(l)
		if !ok || n < 1 {
			return protocolError("UIDL", "malformed line %q", sanitize(string(l)))
		}
		out = append(out, MessageInfo{Number: n, Size: -1, UID: arena.intern(uid)})
		return nil
	})
	return out, err
}

// listIndex finds a message number's position in a LIST reply: the number minus one when the
// reply is in order (always, at the start of a session), else through a map built on first need.
type listIndex struct {
	list  []MessageInfo
	byNum map[int]int
}

func (x *listIndex) find(n int) (int, bool) {
	if n >= 1 && n <= len(x.list) && x.list[n-1].Number == n {
		return n - 1, true
	}
	if x.byNum == nil {
		x.byNum = make(map[int]int)
		for i, m := range x.list {
			x.byNum[m.Number] = i
		}
	}
	i, ok := x.byNum[n]
	return i, ok
}

// checkListNumbers refuses a LIST reply that names a message twice.
func (c *Client) checkListNumbers(list []MessageInfo) error {
	inOrder := true
	for i, m := range list {
		if m.Number != i+1 {
			inOrder = false
			break
		}
	}
	if inOrder {
		return nil
	}
	seen := make(map[int]bool, len(list))
	for _, m := range list {
		if seen[m.Number] {
			return c.fail(protocolError("LIST", "message %d listed twice", m.Number))
		}
		seen[m.Number] = true
	}
	return nil
}

// readUidlInto reads a UIDL reply and sets the UID of each message of list (a LIST reply; check it
// with checkListNumbers afterwards). UIDLs of messages LIST did not name are ignored; a message
// named twice is a protocol violation.
func (c *Client) readUidlInto(list []MessageInfo) error {
	x := listIndex{list: list}
	var arena uidArena
	count := 0
	return c.readLines("UIDL", MaxListing+1, func(l []byte) error {
		if count == MaxListing {
			return tooLong("UIDL")
		}
		count++
		n, uid, ok := parseUIDLBytes(l)
		if !ok || n < 1 {
			return protocolError("UIDL", "malformed line %q", sanitize(string(l)))
		}
		i, ok := x.find(n)
		if !ok {
			return nil
		}
		if list[i].UID != "" {
			return protocolError("UIDL", "message %d listed twice", n)
		}
		list[i].UID = arena.intern(uid)
		return nil
	})
}
