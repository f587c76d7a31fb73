package fetch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

func (s *memState) Oversize(uid string) (int64, bool) { n, ok := s.oversize[uid]; return n, ok }
func (s *memState) MarkOversize(uid string, size int64) error {
	s.oversize[uid] = size
	return nil
}

// TestSyncStreamPastMaxSize: message 2 is listed as 32 octets but its RETR sends 100 MB. With
// max_size 1 MB the engine stops reading it just past 1 MB + slack, delivers message 1 (before it)
// and nothing of message 2, deletes nothing, remembers message 2 as oversize, and the next run
// applies the oversize policy to it and fetches the rest.
func TestSyncStreamPastMaxSize(t *testing.T) {
	for _, del := range []bool{false, true} {
		name := "skip"
		if del {
			name = "delete"
		}
		t.Run(name, func(t *testing.T) {
			msgs := messages(4)
			s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs,
				Faults: []pop3test.Fault{
					{Command: "LIST", Action: pop3test.WrongSize, Arg: "2", Bytes: 32},
					{Command: "RETR", Arg: "2", Action: pop3test.Inflate, Bytes: 100 << 20},
				}})
			st := newMemState(time.Now)
			dest := &memDest{}
			pol := fetch.Policy{MaxSize: 1_000_000, OversizeDelete: del}
			acct := account(s, pol)
			res, err := fetch.Sync(context.Background(), acct, dest, st, fetch.Options{})
			var oerr *fetch.OversizeError
			if !errors.As(err, &oerr) {
				t.Fatalf("Sync: %v, want an *OversizeError", err)
			}
			if !errors.Is(err, pop3.ErrAbandon) {
				t.Errorf("the error does not say the connection was abandoned")
			}
			limit := int64(1_000_000 + 64<<10)
			if oerr.Number != 2 || oerr.UID != "uid-002" || oerr.ListSize != 32 || oerr.Read <= 1_000_000 || oerr.Read > limit+1 {
				t.Errorf("error %+v", oerr)
			}
			if !strings.Contains(err.Error(), "delivered none of it and deleted nothing") {
				t.Errorf("error %q", err)
			}
			wantDelivered(t, dest, msgs, 1)
			if res.Deleted != 0 || len(s.Messages()) != 4 {
				t.Errorf("deleted %d, the server holds %d of 4", res.Deleted, len(s.Messages()))
			}
			if n, ok := st.Oversize("uid-002"); !ok || n != oerr.Read {
				t.Errorf("state: oversize %d %v", n, ok)
			}

			res, err = fetch.Sync(context.Background(), acct, dest, st, fetch.Options{})
			if err != nil {
				t.Fatalf("second Sync: %v", err)
			}
			wantDelivered(t, dest, msgs, 1, 3, 4)
			held := len(s.Messages())
			switch {
			case del && held != 0:
				t.Errorf("oversize: delete: the server still holds %d messages", held)
			case !del && (held != 1 || s.Messages()[0].UID != "uid-002"):
				t.Errorf("oversize: skip: the server holds %d messages, want only uid-002", held)
			}
			if !del && res.Skipped != 1 {
				t.Errorf("skipped %d, want 1", res.Skipped)
			}
		})
	}
}

// TestSyncStreamWithinSlack: a message whose stream passes max_size by less than the slack (LIST
// sizes are approximate) is delivered.
func TestSyncStreamWithinSlack(t *testing.T) {
	msgs := messages(2)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs,
		Faults: []pop3test.Fault{
			{Command: "LIST", Action: pop3test.WrongSize, Arg: "2", Bytes: 32},
			{Command: "RETR", Arg: "2", Action: pop3test.Inflate, Bytes: 1_000_000 + 32<<10},
		}})
	st := newMemState(time.Now)
	dest := &memDest{}
	res, err := fetch.Sync(context.Background(), account(s, fetch.Policy{MaxSize: 1_000_000}), dest, st, fetch.Options{})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if res.Retrieved != 2 || res.Deleted != 2 {
		t.Errorf("retrieved %d, deleted %d, want 2 and 2", res.Retrieved, res.Deleted)
	}
}
