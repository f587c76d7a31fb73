package daemon

import (
	"slices"
	"testing"
	"time"

	"github.com/popfetch/popfetch/config"
)

var daemonT0 = time.Date(2026, 11, 23, 15, 4, 5, 0, time.UTC)

func TestDaemonNextPoll(t *testing.T) {
	const m = time.Minute
	tests := []struct {
		name         string
		interval     time.Duration
		failures     int
		out          pollOutcome
		r            float64
		wantWait     time.Duration
		wantFailures int
	}{
		{"success, no jitter", 5 * m, 0, pollOutcome{kind: pollOK}, 0.5, 5 * m, 0},
		{"success, least jitter", 5 * m, 0, pollOutcome{kind: pollOK}, 0, 270 * time.Second, 0},
		{"success, most jitter", 5 * m, 0, pollOutcome{kind: pollOK}, 1, 330 * time.Second, 0},
		{"success resets failures", 5 * m, 4, pollOutcome{kind: pollOK}, 0.5, 5 * m, 0},
		{"first temporary failure doubles", 5 * m, 0, pollOutcome{kind: pollTemporary}, 0.5, 10 * m, 1},
		{"second doubles again", 5 * m, 1, pollOutcome{kind: pollTemporary}, 0.5, 20 * m, 2},
		{"third", 5 * m, 2, pollOutcome{kind: pollTemporary}, 0.5, 40 * m, 3},
		{"capped at an hour", 5 * m, 3, pollOutcome{kind: pollTemporary}, 0.5, time.Hour, 4},
		{"stays capped", 5 * m, 60, pollOutcome{kind: pollTemporary}, 0.5, time.Hour, 61},
		{"capped, with jitter", 5 * m, 9, pollOutcome{kind: pollTemporary}, 0, 54 * m, 10},
		{"interval over an hour: the cap is the interval", 2 * time.Hour, 0, pollOutcome{kind: pollTemporary}, 0.5, 2 * time.Hour, 1},
		{"1s interval backs off 2s, 4s", time.Second, 1, pollOutcome{kind: pollTemporary}, 0.5, 4 * time.Second, 2},
		{"permanent failure: the interval, count reset", 5 * m, 3, pollOutcome{kind: pollFailed}, 0.5, 5 * m, 0},
		{"lock held: the interval, count kept", 5 * m, 2, pollOutcome{kind: pollBusy}, 0.5, 5 * m, 2},
		{"LOGIN-DELAY: when it is over, no jitter", 5 * m, 2, pollOutcome{kind: pollOK, deferred: daemonT0.Add(17 * m)}, 0.9, 17 * m, 2},
		{"LOGIN-DELAY shorter than the interval", 5 * m, 0, pollOutcome{kind: pollOK, deferred: daemonT0.Add(30 * time.Second)}, 0.9, 30 * time.Second, 0},
		{"LOGIN-DELAY in the past: a second", 5 * m, 0, pollOutcome{kind: pollOK, deferred: daemonT0.Add(-m)}, 0.9, time.Second, 0},
		{"never below a second", time.Second, 0, pollOutcome{kind: pollOK}, 0, time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, failures := nextPoll(tt.interval, tt.failures, tt.out, daemonT0, tt.r)
			if got := next.Sub(daemonT0); got != tt.wantWait || failures != tt.wantFailures {
				t.Errorf("nextPoll = +%v, %d failures; want +%v, %d", got, failures, tt.wantWait, tt.wantFailures)
			}
		})
	}
}

// TestDaemonJitterSpread: the wait stays within ±10% for any r, and does spread.
func TestDaemonJitterSpread(t *testing.T) {
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for i := range 1000 {
		d := jitter(time.Minute, float64(i)/1000)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo != 54*time.Second || hi < 65900*time.Millisecond || hi >= 66*time.Second {
		t.Errorf("jitter of 1m spans [%v, %v], want [54s, 66s)", lo, hi)
	}
}

// daemonClock is a settable clock for the schedule tests.
type daemonClock struct{ t time.Time }

func (c *daemonClock) now() time.Time          { return c.t }
func (c *daemonClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func daemonAccount(name string, interval time.Duration) *config.Account {
	return &config.Account{Name: name, Host: "pop.example.com", User: "u", Interval: interval}
}

func daemonNames(accts []*config.Account) []string {
	var out []string
	for _, a := range accts {
		out = append(out, a.Name)
	}
	return out
}

func TestDaemonSchedule(t *testing.T) {
	clock := &daemonClock{t: daemonT0}
	s := newSchedule(clock.now, func() float64 { return 0.5 })
	added, changed, removed := s.set([]*config.Account{daemonAccount("a", time.Minute), daemonAccount("b", time.Hour)})
	if !slices.Equal(added, []string{"a", "b"}) || changed != nil || removed != nil {
		t.Fatalf("set: %v %v %v", added, changed, removed)
	}
	// Everything is due at the start; --jobs 1 takes one at a time, and never one being polled.
	if got := daemonNames(s.take(1)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("take(1) = %v", got)
	}
	if got := daemonNames(s.take(5)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("take(5) = %v", got)
	}
	if got := s.take(5); len(got) != 0 || s.running() != 2 {
		t.Fatalf("take while both run = %v, running %d", daemonNames(got), s.running())
	}
	if _, ok := s.wake(); ok {
		t.Errorf("wake with every account running")
	}
	clock.advance(3 * time.Second)
	if next, f := s.done("a", pollOutcome{kind: pollOK}); next != clock.t.Add(time.Minute) || f != 0 {
		t.Errorf("a done: %v, %d", next, f)
	}
	if next, f := s.done("b", pollOutcome{kind: pollTemporary}); next != clock.t.Add(time.Hour) || f != 1 {
		t.Errorf("b done after a temporary failure: %v, %d", next, f)
	}
	if at, ok := s.wake(); !ok || at != clock.t.Add(time.Minute) {
		t.Errorf("wake = %v, %v; want a's next poll", at, ok)
	}
	if got := s.take(5); len(got) != 0 {
		t.Errorf("take before anything is due = %v", daemonNames(got))
	}
	clock.advance(time.Minute)
	if got := daemonNames(s.take(5)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("take after a minute = %v", got)
	}

	// SIGUSR1: b (idle) is due now; a (running) is polled again as soon as its poll ends.
	s.pollAll()
	if got := daemonNames(s.take(5)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("take after pollAll = %v", got)
	}
	if next, _ := s.done("a", pollOutcome{kind: pollOK}); next != clock.t {
		t.Errorf("a polled again after pollAll: next %v, want now", next)
	}
	if next, f := s.done("b", pollOutcome{kind: pollTemporary}); next != clock.t.Add(time.Hour) || f != 2 {
		t.Errorf("b: %v, %d; want an hour (capped), 2 failures", next, f)
	}

	// A reload: b changed (its failures forgotten, due now), a removed, c added.
	b2 := daemonAccount("b", 2*time.Hour)
	added, changed, removed = s.set([]*config.Account{b2, daemonAccount("c", time.Minute)})
	if !slices.Equal(added, []string{"c"}) || !slices.Equal(changed, []string{"b"}) || !slices.Equal(removed, []string{"a"}) {
		t.Fatalf("reload: added %v changed %v removed %v", added, changed, removed)
	}
	if got := daemonNames(s.take(5)); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("take after reload = %v", got)
	}
	if next, f := s.done("b", pollOutcome{kind: pollTemporary}); next != clock.t.Add(2*time.Hour) || f != 1 {
		t.Errorf("changed b: %v, %d; want the new interval's backoff, 1 failure", next, f)
	}
	// An unchanged profile (a new pointer, equal value) keeps its timetable.
	_, changed, _ = s.set([]*config.Account{daemonAccount("b", 2*time.Hour), daemonAccount("c", time.Minute)})
	if changed != nil {
		t.Errorf("unchanged profiles reported as changed: %v", changed)
	}

	// Removed while running: forgotten when its poll ends, not polled again.
	_, _, removed = s.set([]*config.Account{daemonAccount("b", 2*time.Hour)})
	if !slices.Equal(removed, []string{"c"}) {
		t.Fatalf("removed %v", removed)
	}
	if next, _ := s.done("c", pollOutcome{kind: pollOK}); !next.IsZero() {
		t.Errorf("removed account rescheduled at %v", next)
	}
	if s.running() != 0 || len(s.entries) != 1 {
		t.Errorf("after removal: running %d, entries %d", s.running(), len(s.entries))
	}

	// LOGIN-DELAY not over: polled when it is, even after SIGUSR1 during the poll.
	s.pollAll()
	s.take(1)
	s.pollAll()
	until := clock.t.Add(10 * time.Minute)
	if next, _ := s.done("b", pollOutcome{kind: pollOK, deferred: until}); next != until {
		t.Errorf("deferred: next %v, want %v", next, until)
	}
}
