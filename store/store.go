// Package store holds the two halves of popfetch's promise: where messages go (destinations: maildir,
// mboxrd, MDA, LMTP, SMTP, stdout) and what popfetch remembers (the per-account UIDL state and lock).
//
// A destination takes each message as a stream and makes a batch of them durable at once:
//
//	for each message of the batch: p, err := dest.Deliver(ctx, env, body)
//	err := dest.Commit(ctx, journal)   // durable; journal(pending) runs before the batch becomes visible
//	... record the batch as delivered in the state, then DELE on the server
//
// See docs/ARCHITECTURE.md §4 for the order of writes that makes a sync exactly-once on a maildir.
package store

import (
	"context"
	"io"
	"time"
)

// Envelope describes one message being delivered.
type Envelope struct {
	Account  string    // account name from the profile
	User     string    // login user on the server
	Host     string    // server host name (for the trace header)
	UID      string    // the server's UIDL, "" when the server has none
	Size     int64     // size from LIST (advisory; the stream is authoritative)
	Received time.Time // when popfetch retrieved it
}

// Pending identifies a delivered message that is not yet committed. Ref is the destination's own
// handle for it (a maildir's unique file name, an mbox offset range), or "" where none exists.
type Pending struct {
	UID string
	Ref string
}

// Destination is where messages are delivered. Deliver streams one message (never holding it whole in
// memory); Commit is the durability barrier for every message delivered since the last Commit or Abort.
type Destination interface {
	// Deliver writes one message read from body. The message is not durable, and for exactly-once
	// destinations not yet visible, until Commit returns nil. A failed Deliver leaves nothing behind.
	Deliver(ctx context.Context, env Envelope, body io.Reader) (Pending, error)
	// Commit makes the batch durable. journal, when non-nil, is called with the batch once the messages
	// are durable but before they become visible to mail readers; if it fails, nothing becomes visible
	// and Commit returns its error.
	Commit(ctx context.Context, journal func([]Pending) error) error
	// Abort discards every message delivered since the last Commit.
	Abort() error
	// Close releases the destination (locks, connections). It does not commit.
	Close() error
}

// Resolver is implemented by destinations that can tell, after a crash, whether pending deliveries
// became visible (and so must not be delivered again). Destinations without it are at-least-once.
type Resolver interface {
	// Resolve reports, for each Ref, whether that message is visible in the destination. Pending
	// deliveries that never became visible are cleaned up.
	Resolve(refs []string) (visible map[string]bool, err error)
}
