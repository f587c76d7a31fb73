package fetch_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// importedState is a memState whose UIDLs in imported came from another fetcher's list.
type importedState struct {
	*memState
	imported map[string]bool
}

func (s importedState) Imported(uid string) bool { return s.imported[uid] }

// TestSyncKeepsImported (issue 17.4): a UIDL imported from another fetcher's list is not fetched,
// and not deleted either unless Policy.DeleteImported; messages popfetch delivered itself are.
func TestSyncKeepsImported(t *testing.T) {
	now := time.Now()
	old := now.Add(-40 * 24 * time.Hour)
	for _, c := range []struct {
		name     string
		pol      fetch.Policy
		wantLeft []string // on the server afterwards
	}{
		{"delete mode", fetch.Policy{}, []string{"uid-001"}},
		{"delete mode, delete_imported", fetch.Policy{DeleteImported: true}, nil},
		{"keep_days", fetch.Policy{Keep: true, KeepDays: 30}, []string{"uid-001", "uid-003"}},
		{"keep_days, delete_imported", fetch.Policy{Keep: true, KeepDays: 30, DeleteImported: true}, []string{"uid-003"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			msgs := messages(3)
			s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs})
			st := importedState{newMemState(time.Now), map[string]bool{"uid-001": true}}
			// uid-001 imported, uid-002 delivered by popfetch (both long ago), uid-003 new.
			st.first["uid-001"], st.first["uid-002"] = old, old
			st.delivered["uid-002"] = true
			dest := &memDest{}
			res, err := fetch.Sync(context.Background(), account(s, c.pol), dest, st, fetch.Options{})
			if err != nil {
				t.Fatal(err)
			}
			wantDelivered(t, dest, msgs, 3)
			if got := serverUIDs(s); !slices.Equal(got, c.wantLeft) {
				t.Errorf("left on the server: %v, want %v", got, c.wantLeft)
			}
			for _, l := range s.Received() {
				if l == "DELE 1" && !c.pol.DeleteImported {
					t.Errorf("the server received DELE 1 for the imported, never fetched message")
				}
			}
			if !c.pol.DeleteImported && res.Skipped < 1 {
				t.Errorf("result %+v: the imported message is not counted as skipped", res)
			}
		})
	}
}

// TestDryRunShowsImported: a dry run says why an imported message is left.
func TestDryRunShowsImported(t *testing.T) {
	msgs := messages(2)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs})
	st := importedState{newMemState(time.Now), map[string]bool{"uid-002": true}}
	st.first["uid-002"] = time.Now()
	res, err := fetch.Sync(context.Background(), account(s, fetch.Policy{}), nil, st, fetch.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Delete) != 0 || len(res.Plan.Skip) != 1 || res.Plan.Skip[0].Reason != fetch.ReasonImported ||
		!strings.Contains(res.Plan.Skip[0].Reason.String(), "delete_imported") {
		t.Errorf("plan = %+v", res.Plan)
	}
}
