package daemon

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/popfetch/popfetch/config"
)

// TestSpreadOffsets: the first polls of the accounts of one interval are evenly apart, at most a
// second, the first at once; intervals are spread independently.
func TestSpreadOffsets(t *testing.T) {
	const s, m = time.Second, time.Minute
	rep := func(n int, d time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = d
		}
		return out
	}
	tests := []struct {
		name      string
		intervals []time.Duration
		want      []time.Duration
	}{
		{"none", nil, []time.Duration{}},
		{"one: at once", []time.Duration{5 * m}, []time.Duration{0}},
		{"a few: a second apart", rep(3, 5*m), []time.Duration{0, s, 2 * s}},
		{"many: interval/n apart", rep(4, 2*s), []time.Duration{0, 500 * time.Millisecond, s, 1500 * time.Millisecond}},
		{"two intervals, each its own spread", []time.Duration{m, 4 * s, m, 4 * s, 4 * s, 4 * s},
			[]time.Duration{0, 0, s, s, 2 * s, 3 * s}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := spreadOffsets(tt.intervals); !slices.Equal(got, tt.want) {
				t.Errorf("spreadOffsets(%v) = %v, want %v", tt.intervals, got, tt.want)
			}
		})
	}
}

// TestSpreadEven: N accounts of one interval are spread over the interval with the same number of
// first polls in every tenth of it (1,000 and 10,000 accounts every 5m; 1,000 every 1s).
func TestSpreadEven(t *testing.T) {
	for _, tt := range []struct {
		n        int
		interval time.Duration
	}{{1000, 5 * time.Minute}, {10000, 5 * time.Minute}, {1000, time.Second}, {7, time.Second}} {
		t.Run(fmt.Sprintf("%d every %v", tt.n, tt.interval), func(t *testing.T) {
			ivs := make([]time.Duration, tt.n)
			for i := range ivs {
				ivs[i] = tt.interval
			}
			offs := spreadOffsets(ivs)
			var buckets [10]int
			for _, o := range offs {
				if o < 0 || o >= tt.interval {
					t.Fatalf("offset %v outside [0, %v)", o, tt.interval)
				}
				buckets[int(o*10/tt.interval)]++
			}
			for i, b := range buckets {
				if b < tt.n/10 || b > (tt.n+9)/10 {
					t.Errorf("tenth %d of the interval has %d first polls, want %d (all: %v)", i, b, tt.n/10, buckets)
				}
			}
		})
	}
}

func hostAccount(name, host string, interval time.Duration, maxConns int) *config.Account {
	return &config.Account{Name: name, Host: host, User: "u", Interval: interval, MaxConnections: maxConns}
}

// TestScheduleSpreadsStartAndReload: a daemon's schedule with 100 accounts every 100s polls one at
// the start and one a second after that, not all at once; a reload that adds 50 spreads them too.
func TestScheduleSpreadsStartAndReload(t *testing.T) {
	clock := &daemonClock{t: daemonT0}
	s := newSchedule(clock.now, func() float64 { return 0.5 })
	var accts []*config.Account
	for i := range 100 {
		accts = append(accts, hostAccount(fmt.Sprintf("a%03d", i), fmt.Sprintf("h%d", i), 100*time.Second, 8))
	}
	s.set(accts)
	if got := daemonNames(s.take(1000)); !slices.Equal(got, []string{"a000"}) {
		t.Fatalf("due at the start: %v, want a000 only", got)
	}
	for i := 1; i < 100; i++ {
		at, ok := s.wake()
		if !ok || at != daemonT0.Add(time.Duration(i)*time.Second) {
			t.Fatalf("next wake %v, want +%ds", at, i)
		}
		clock.t = at
		if got := s.take(1000); len(got) != 1 {
			t.Fatalf("at +%ds: %d due, want 1", i, len(got))
		}
	}
	for _, a := range accts {
		s.done(a.Name, pollOutcome{kind: pollOK})
	}
	// A reload adding 50: one due at once, the rest one a second.
	start := clock.t
	for i := range 50 {
		accts = append(accts, hostAccount(fmt.Sprintf("b%03d", i), "new", 100*time.Second, 50))
	}
	if added, _, _ := s.set(accts); len(added) != 50 {
		t.Fatalf("added %d", len(added))
	}
	if got := daemonNames(s.take(1000)); !slices.Equal(got, []string{"b000"}) {
		t.Fatalf("due after the reload: %v, want b000 only", got)
	}
	clock.t = start.Add(49 * time.Second)
	if got := s.take(1000); len(got) != 49 {
		t.Fatalf("49s after the reload: %d due, want the other 49", len(got))
	}
}

// TestScheduleHostLimit: at most max_connections polls run at once per host (the smallest value of
// the host's accounts), other hosts are not held up, and an account waiting for its host is not a
// reason to wake (it waits for a poll's end).
func TestScheduleHostLimit(t *testing.T) {
	clock := &daemonClock{t: daemonT0}
	s := newSchedule(clock.now, func() float64 { return 0.5 })
	var accts []*config.Account
	for i := range 10 {
		limit := 5
		if i == 7 {
			limit = 3 // the smallest wins for the whole host
		}
		accts = append(accts, hostAccount(fmt.Sprintf("a%d", i), "POP.example.com", time.Hour, limit))
	}
	accts = append(accts, hostAccount("b0", "pop.other.net", time.Hour, 8), hostAccount("b1", "pop.other.net", time.Hour, 8))
	s.set(accts)
	s.pollAll()
	got := daemonNames(s.take(100))
	if want := []string{"a0", "a1", "a2", "b0", "b1"}; !slices.Equal(sorted(got), want) {
		t.Fatalf("take = %v, want %v (3 of pop.example.com, both of pop.other.net)", got, want)
	}
	if at, ok := s.wake(); ok {
		t.Errorf("wake = %v with every due account's host full", at)
	}
	s.done("a1", pollOutcome{kind: pollOK})
	if got := daemonNames(s.take(100)); !slices.Equal(got, []string{"a3"}) {
		t.Errorf("after a1 ended: take = %v, want a3", got)
	}
	if got := s.take(100); len(got) != 0 {
		t.Errorf("host full again: take = %v", daemonNames(got))
	}
	if s.running() != 5 {
		t.Errorf("running %d, want 5", s.running())
	}
	// The lag: how late each poll started.
	clock.advance(7 * time.Second)
	s.done("a2", pollOutcome{kind: pollOK})
	got = daemonNames(s.take(100))
	if len(got) != 1 || s.lagOf(got[0]) != 7*time.Second {
		t.Errorf("after 7s: took %v with lag %v, want one 7s late", got, s.lagOf(got[0]))
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestAutoJobs(t *testing.T) {
	for _, tt := range []struct {
		nofile uint64
		want   int
	}{{0, 256}, {64, 1}, {72, 1}, {1024, 120}, {2048, 248}, {1 << 20, 256}} {
		if got := autoJobs(tt.nofile); got != tt.want {
			t.Errorf("autoJobs(%d) = %d, want %d", tt.nofile, got, tt.want)
		}
	}
}

func TestLagWindow(t *testing.T) {
	w := lagWindow{since: daemonT0}
	for i := range 100 {
		w.add(time.Duration(i+1)*time.Millisecond, i%7)
		w.ended(time.Duration(i+1) * 20 * time.Millisecond)
	}
	want := "popfetch: schedule: 100 poll(s) started in the last 1m, late by p50 50ms, p99 99ms, max 100ms; up to 6 at once; polls took p50 1s, p99 2s"
	if got := w.summary(daemonT0.Add(time.Minute)); got != want {
		t.Errorf("summary:\n got %q\nwant %q", got, want)
	}
}

func TestSummarizeAccounts(t *testing.T) {
	var accts []*config.Account
	for i := range 1000 {
		iv := 5 * time.Minute
		if i%500 == 0 {
			iv = time.Minute
		}
		accts = append(accts, daemonAccount(fmt.Sprintf("acct%04d", i), iv))
	}
	if got, want := summarizeAccounts(accts), "1000 account(s), every 5m (998), 1m (2)"; got != want {
		t.Errorf("summarizeAccounts = %q, want %q", got, want)
	}
	if got, want := summarizeAccounts(nil), "0 account(s)"; got != want {
		t.Errorf("summarizeAccounts(nil) = %q, want %q", got, want)
	}
}

// TestScheduleIdleMemory: an idle account costs the timetable a small, constant amount of memory
// (its entry, its first-poll time): under 512 bytes an account at 10,000 accounts.
func TestScheduleIdleMemory(t *testing.T) {
	const n = 10000
	accts := make([]*config.Account, n)
	for i := range accts {
		accts[i] = hostAccount(fmt.Sprintf("acct%05d", i), "pop.example.com", 5*time.Minute, 64)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newSchedule((&daemonClock{t: daemonT0}).now, func() float64 { return 0.5 })
	s.set(accts)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	if per > 512 {
		t.Errorf("the timetable holds %d bytes an account, want at most 512", per)
	}
	t.Logf("%d bytes an idle account in the timetable", per)
	runtime.KeepAlive(s)
}
