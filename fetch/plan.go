package fetch

import (
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

// Reason says why the plan treats a message as it does.
type Reason string

const (
	ReasonNew        Reason = "new"
	ReasonFetchAll   Reason = "fetch_all"
	ReasonSeen       Reason = "already retrieved"
	ReasonOversize   Reason = "over max_size"
	ReasonLimit      Reason = "over max_messages"
	ReasonExpired    Reason = "older than keep_days"
	ReasonNotDeleted Reason = "retrieved before, deletion not yet committed"
)

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
func MakePlan(listing []pop3.MessageInfo, seen Seen, pol Policy, now time.Time) Plan {
	var p Plan
	retrieved := 0
	for _, m := range listing {
		var first time.Time
		had := false
		if m.UID != "" && seen != nil {
			first, had = seen(m.UID)
		}
		if had && !pol.FetchAll {
			switch {
			case !pol.Keep:
				// Delivered in an earlier run whose deletion was not committed (no QUIT).
				p.Delete = append(p.Delete, Item{MessageInfo: m, Reason: ReasonNotDeleted, Delete: true})
			case pol.KeepDays > 0 && !first.IsZero() && now.Sub(first) >= time.Duration(pol.KeepDays)*24*time.Hour:
				p.Delete = append(p.Delete, Item{MessageInfo: m, Reason: ReasonExpired, Delete: true})
			default:
				p.Skip = append(p.Skip, Item{MessageInfo: m, Reason: ReasonSeen})
			}
			continue
		}
		reason := ReasonNew
		if had {
			reason = ReasonFetchAll
		}
		if pol.MaxSize > 0 && m.Size > pol.MaxSize {
			if pol.OversizeDelete {
				p.Delete = append(p.Delete, Item{MessageInfo: m, Reason: ReasonOversize, Delete: true})
			} else {
				p.Skip = append(p.Skip, Item{MessageInfo: m, Reason: ReasonOversize})
			}
			continue
		}
		if pol.MaxMessages > 0 && retrieved >= pol.MaxMessages {
			p.Skip = append(p.Skip, Item{MessageInfo: m, Reason: ReasonLimit})
			continue
		}
		retrieved++
		del := !pol.Keep
		if pol.Keep && had && pol.KeepDays > 0 && !first.IsZero() && now.Sub(first) >= time.Duration(pol.KeepDays)*24*time.Hour {
			del = true // fetch_all in keep mode: an expired message is retrieved once more, then deleted
		}
		p.Retrieve = append(p.Retrieve, Item{MessageInfo: m, Reason: reason, Delete: del})
	}
	return p
}
