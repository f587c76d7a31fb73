package fetch

import (
	"strconv"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3"
)

// Policy is what a profile says to do with the maildrop.
type Policy struct {
	Keep           bool  // leave messages on the server (UIDL tracking)
	KeepDays       int   // with Keep: delete a message this many days after it was first seen (0: never)
	FetchAll       bool  // also retrieve messages retrieved before
	MaxSize        int64 // bytes; 0 = no limit
	OversizeDelete bool  // delete oversized messages without retrieving them (else skip them)
	MaxMessages    int   // retrieve at most this many per run; 0 = no limit
	// DeleteImported lets the plan delete, like messages popfetch delivered, messages whose UIDL was
	// imported from another fetcher's list (see ImportedState); without it they are left alone.
	DeleteImported bool
}

// Reason says why the plan treats a message as it does. It is one byte, not a string: a plan of a
// million messages is a million Items.
type Reason uint8

const (
	ReasonNew Reason = iota + 1
	ReasonFetchAll
	ReasonSeen
	ReasonOversize
	ReasonLimit
	ReasonExpired
	ReasonNotDeleted
	// ReasonImported: the state has the message's UIDL from another fetcher's list (`popfetch state
	// import`), so popfetch does not retrieve it, and, never having had it, does not delete it either.
	ReasonImported
)

var reasonText = [...]string{
	ReasonNew:        "new",
	ReasonFetchAll:   "fetch_all",
	ReasonSeen:       "already retrieved",
	ReasonOversize:   "over max_size",
	ReasonLimit:      "over max_messages",
	ReasonExpired:    "older than keep_days",
	ReasonNotDeleted: "retrieved before, deletion not yet committed",
	ReasonImported:   "imported from another fetcher: left on the server (delete_imported)",
}

// String returns the reason in words ("new", "over max_size", ...).
func (r Reason) String() string {
	if int(r) < len(reasonText) && reasonText[r] != "" {
		return reasonText[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText makes a Reason its words in JSON.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Item is one message of a plan.
type Item struct {
	pop3.MessageInfo
	Reason Reason
	Delete bool // after retrieval (Retrieve) or instead of it (Delete)
}

// Plan is what one sync will do: retrieve (then maybe delete), delete without retrieving, or skip.
type Plan struct {
	Retrieve []Item
	Delete   []Item // deleted without being retrieved (already had, expired, oversize with delete)
	Skip     []Item
}

// Bytes returns the total size of the messages to retrieve.
func (p *Plan) Bytes() int64 {
	var n int64
	for _, it := range p.Retrieve {
		if it.Size > 0 {
			n += it.Size
		}
	}
	return n
}

// Seen answers what the state knows about a UIDL: whether it was retrieved before, and when it was
// first seen.
type Seen func(uid string) (firstSeen time.Time, ok bool)

// MakePlan decides, from the listing, the state and the policy, what to do with each message. It is a
// pure function: the same inputs give the same plan. Messages without a UIDL are always new (a
// server without UIDL cannot be tracked; keep mode refuses such servers before planning).
//
// The plan's slices are allocated once at their final size: a first pass decides and counts (one
// byte a message), the second fills them. A listing of a million messages must not cost several
// times its plan in garbage from growing slices.
func MakePlan(listing []pop3.MessageInfo, seen Seen, pol Policy, now time.Time) Plan {
	var counts [3]int
	decided := make([]uint8, len(listing)) // where<<6 | delete<<5 | reason
	retrieved := 0
	for i, m := range listing {
		it, k := place(m, seen, pol, now, &retrieved)
		counts[k]++
		d := uint8(k)<<6 | uint8(it.Reason)
		if it.Delete {
			d |= 1 << 5
		}
		decided[i] = d
	}
	var p Plan
	out := [3]*[]Item{&p.Retrieve, &p.Delete, &p.Skip}
	for k, n := range counts {
		if n > 0 {
			*out[k] = make([]Item, 0, n)
		}
	}
	for i, m := range listing {
		d := decided[i]
		s := out[d>>6]
		*s = append(*s, Item{MessageInfo: m, Reason: Reason(d & 31), Delete: d&(1<<5) != 0})
	}
	return p
}

// Where place puts a message.
const (
	toRetrieve = iota
	toDelete
	toSkip
)

// place decides what to do with one message; retrieved counts the messages retrieved so far (for
// max_messages).
func place(m pop3.MessageInfo, seen Seen, pol Policy, now time.Time, retrieved *int) (Item, int) {
	var first time.Time
	had := false
	if m.UID != "" && seen != nil {
		first, had = seen(m.UID)
	}
	if had && !pol.FetchAll {
		switch {
		case !pol.Keep:
			// Delivered in an earlier run whose deletion was not committed (no QUIT).
			return Item{MessageInfo: m, Reason: ReasonNotDeleted, Delete: true}, toDelete
		case pol.KeepDays > 0 && !first.IsZero() && now.Sub(first) >= time.Duration(pol.KeepDays)*24*time.Hour:
			return Item{MessageInfo: m, Reason: ReasonExpired, Delete: true}, toDelete
		default:
			return Item{MessageInfo: m, Reason: ReasonSeen}, toSkip
		}
	}
	reason := ReasonNew
	if had {
		reason = ReasonFetchAll
	}
	if pol.MaxSize > 0 && m.Size > pol.MaxSize {
		if pol.OversizeDelete {
			return Item{MessageInfo: m, Reason: ReasonOversize, Delete: true}, toDelete
		}
		return Item{MessageInfo: m, Reason: ReasonOversize}, toSkip
	}
	if pol.MaxMessages > 0 && *retrieved >= pol.MaxMessages {
		return Item{MessageInfo: m, Reason: ReasonLimit}, toSkip
	}
	*retrieved++
	del := !pol.Keep
	if pol.Keep && had && pol.KeepDays > 0 && !first.IsZero() && now.Sub(first) >= time.Duration(pol.KeepDays)*24*time.Hour {
		del = true // fetch_all in keep mode: an expired message is retrieved once more, then deleted
	}
	return Item{MessageInfo: m, Reason: reason, Delete: del}, toRetrieve
}
