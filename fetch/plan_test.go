package fetch

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3"
)

func TestMakePlan(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	listing := []pop3.MessageInfo{
		{Number: 1, Size: 100, UID: "old"},   // seen 10 days ago
		{Number: 2, Size: 200, UID: "fresh"}, // seen 1 day ago
		{Number: 3, Size: 5000, UID: "big"},  // new, large
		{Number: 4, Size: 300, UID: "new1"},
		{Number: 5, Size: 400, UID: "new2"},
	}
	state := map[string]time.Time{"old": now.Add(-10 * day), "fresh": now.Add(-day)}
	seen := func(uid string) (time.Time, bool) { t, ok := state[uid]; return t, ok }

	type short struct {
		n      int
		reason Reason
		del    bool
	}
	summarise := func(items []Item) []short {
		var out []short
		for _, it := range items {
			out = append(out, short{it.Number, it.Reason, it.Delete})
		}
		return out
	}
	tests := []struct {
		name                   string
		pol                    Policy
		retrieve, delete, skip []short
	}{
		{"delete mode", Policy{},
			[]short{{3, ReasonNew, true}, {4, ReasonNew, true}, {5, ReasonNew, true}},
			[]short{{1, ReasonNotDeleted, true}, {2, ReasonNotDeleted, true}}, nil},
		{"keep mode", Policy{Keep: true},
			[]short{{3, ReasonNew, false}, {4, ReasonNew, false}, {5, ReasonNew, false}},
			nil, []short{{1, ReasonSeen, false}, {2, ReasonSeen, false}}},
		{"keep_days 7", Policy{Keep: true, KeepDays: 7},
			[]short{{3, ReasonNew, false}, {4, ReasonNew, false}, {5, ReasonNew, false}},
			[]short{{1, ReasonExpired, true}}, []short{{2, ReasonSeen, false}}},
		{"fetch_all keep", Policy{Keep: true, FetchAll: true},
			[]short{{1, ReasonFetchAll, false}, {2, ReasonFetchAll, false}, {3, ReasonNew, false}, {4, ReasonNew, false}, {5, ReasonNew, false}},
			nil, nil},
		{"fetch_all keep_days", Policy{Keep: true, FetchAll: true, KeepDays: 7},
			[]short{{1, ReasonFetchAll, true}, {2, ReasonFetchAll, false}, {3, ReasonNew, false}, {4, ReasonNew, false}, {5, ReasonNew, false}},
			nil, nil},
		{"max_size skip", Policy{Keep: true, MaxSize: 1000},
			[]short{{4, ReasonNew, false}, {5, ReasonNew, false}},
			nil, []short{{1, ReasonSeen, false}, {2, ReasonSeen, false}, {3, ReasonOversize, false}}},
		{"max_size delete", Policy{MaxSize: 1000, OversizeDelete: true},
			[]short{{4, ReasonNew, true}, {5, ReasonNew, true}},
			[]short{{1, ReasonNotDeleted, true}, {2, ReasonNotDeleted, true}, {3, ReasonOversize, true}}, nil},
		{"max_messages", Policy{Keep: true, MaxMessages: 2},
			[]short{{3, ReasonNew, false}, {4, ReasonNew, false}},
			nil, []short{{1, ReasonSeen, false}, {2, ReasonSeen, false}, {5, ReasonLimit, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MakePlan(listing, seen, tt.pol, now)
			if got := summarise(p.Retrieve); !reflect.DeepEqual(got, tt.retrieve) {
				t.Errorf("retrieve = %v, want %v", got, tt.retrieve)
			}
			if got := summarise(p.Delete); !reflect.DeepEqual(got, tt.delete) {
				t.Errorf("delete = %v, want %v", got, tt.delete)
			}
			if got := summarise(p.Skip); !reflect.DeepEqual(got, tt.skip) {
				t.Errorf("skip = %v, want %v", got, tt.skip)
			}
			// Every message appears exactly once.
			if n := len(p.Retrieve) + len(p.Delete) + len(p.Skip); n != len(listing) {
				t.Errorf("plan covers %d messages, listing has %d", n, len(listing))
			}
		})
	}
}

func TestMakePlanWithoutUIDL(t *testing.T) {
	listing := []pop3.MessageInfo{{Number: 1, Size: 10}, {Number: 2, Size: 20}}
	p := MakePlan(listing, func(string) (time.Time, bool) { return time.Time{}, true }, Policy{}, time.Now())
	if len(p.Retrieve) != 2 || !p.Retrieve[0].Delete {
		t.Fatalf("without UIDs every message is new: %+v", p)
	}
	if p.Bytes() != 30 {
		t.Errorf("Bytes() = %d", p.Bytes())
	}
}

func BenchmarkMakePlan100k(b *testing.B) {
	listing := make([]pop3.MessageInfo, 100_000)
	state := make(map[string]time.Time, len(listing))
	now := time.Now()
	for i := range listing {
		uid := fmt.Sprintf("%08x%08x", i, 42)
		listing[i] = pop3.MessageInfo{Number: i + 1, Size: 4096, UID: uid}
		state[uid] = now
	}
	seen := func(uid string) (time.Time, bool) { t, ok := state[uid]; return t, ok }
	for b.Loop() {
		MakePlan(listing, seen, Policy{Keep: true}, now)
	}
}

func TestBatches(t *testing.T) {
	items := func(sizes ...int64) []Item {
		out := make([]Item, len(sizes))
		for i, s := range sizes {
			out[i] = Item{MessageInfo: pop3.MessageInfo{Number: i + 1, Size: s}}
		}
		return out
	}
	shape := func(bs [][]Item) []int {
		var out []int
		for _, b := range bs {
			out = append(out, len(b))
		}
		return out
	}
	tests := []struct {
		name  string
		items []Item
		size  int
		bytes int64
		want  []int
	}{
		{"none", nil, 3, 100, nil},
		{"by count", items(1, 1, 1, 1, 1, 1, 1), 3, 100, []int{3, 3, 1}},
		{"by bytes", items(40, 40, 40, 40), 10, 100, []int{2, 2}},
		{"one too big alone", items(10, 500, 10), 10, 100, []int{1, 1, 1}},
		{"unknown sizes count as 0", items(-1, -1, -1), 2, 1, []int{2, 1}},
		{"defaults", items(4096, 4096, 4096), 0, 0, []int{3}},
	}
	for _, tt := range tests {
		if got := shape(batches(tt.items, tt.size, tt.bytes)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: batches = %v, want %v", tt.name, got, tt.want)
		}
	}
}
