package fetch

import (
	"errors"
	"fmt"
	"io"

	"github.com/popfetch/popfetch/fetch/pop3"
)

// max_size on the stream. LIST sizes come from the server and can be wrong, by
// accident or on purpose: a server that lists 32 octets and then sends 100 MB must not get 100 MB
// delivered past max_size. The engine counts what a RETR delivers; once a message passes its limit
// (max_size plus a slack for LIST's usual inaccuracy), it stops reading, delivers nothing of it
// (the destination's failed Deliver leaves nothing behind), remembers the UIDL as oversize in the
// state, and gives up the connection without QUIT (pop3.ErrAbandon): reading the rest of the body
// could take forever, and without it the connection is out of step. The messages of the batch
// delivered before it are committed and recorded as usual; nothing is deleted in that session (the
// next run deletes what was delivered, as after any dropped connection). The next run plans the
// message with the size the stream showed, so the profile's oversize policy (skip or delete)
// applies to it without retrieving it again.

// streamSlack is what a message may exceed max_size by on the stream before it is cut off: the
// larger of 64 KiB and 1 % of max_size. LIST sizes are counted with CRLF line endings and the
// stream with LF, so an honest server's message is never cut.
func streamSlack(maxSize int64) int64 { return max(64<<10, maxSize/100) }

// OversizeError reports a message whose stream passed max_size although its LIST size did not
// (the CLI exits 65: bad data from the server). The message was not delivered and is remembered as
// oversize; the connection was abandoned, so nothing was deleted in that session.
type OversizeError struct {
	Number   int
	UID      string
	ListSize int64 // what LIST said
	Read     int64 // octets read before popfetch stopped
	MaxSize  int64
	Delete   bool // the profile's oversize policy: delete (else skip)
}

func (e *OversizeError) Error() string {
	next := "the next run leaves it on the server (oversize: skip)"
	if e.Delete {
		next = "the next run deletes it without retrieving it (oversize: delete)"
	}
	id := ""
	if e.UID != "" {
		id = fmt.Sprintf(" (UIDL %q)", e.UID)
	}
	return fmt.Sprintf("message %d%s is larger than max_size %d octets although LIST said %d: stopped "+
		"reading after %d octets, delivered none of it and deleted nothing this run; %s",
		e.Number, id, e.MaxSize, e.ListSize, e.Read, next)
}

// Unwrap makes RetrMany abandon the connection (pop3.ErrAbandon).
func (e *OversizeError) Unwrap() error { return pop3.ErrAbandon }

// errStreamLimit is what a destination reads from a body cut off by sizeCap.
var errStreamLimit = errors.New("message larger than max_size: stopped reading")

// sizeCap reads r until limit octets have passed, then fails with errStreamLimit.
type sizeCap struct {
	r     io.Reader
	limit int64
	n     int64
	over  bool
}

func (c *sizeCap) Read(p []byte) (int, error) {
	if c.over {
		return 0, errStreamLimit
	}
	if room := c.limit + 1 - c.n; int64(len(p)) > room {
		p = p[:room] // one octet past the limit is enough to know
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		c.over = true
		return 0, errStreamLimit // the octets past the limit are never handed on
	}
	return n, err
}

// oversizeSizes returns listing with the sizes the state remembers for messages whose stream was
// larger than their LIST size, so that the plan treats them as oversize. listing is not modified.
func oversizeSizes(listing []pop3.MessageInfo, st State) []pop3.MessageInfo {
	var out []pop3.MessageInfo
	for i, m := range listing {
		if m.UID == "" {
			continue
		}
		if n, ok := st.Oversize(m.UID); ok && n > m.Size {
			if out == nil {
				out = append([]pop3.MessageInfo(nil), listing...)
			}
			out[i].Size = n
		}
	}
	if out == nil {
		return listing
	}
	return out
}
