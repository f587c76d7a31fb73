package daemon

import (
	"container/heap"
	"reflect"
	"sort"
	"time"

	"github.com/popfetch/popfetch/config"
)

// This file is the daemon's timetable: when each account is polled next. It does no I/O and reads
// the clock and the random source it is given, so that tests can drive it.

const (
	daemonMaxBackoff = time.Hour   // temporary failures double the wait up to this (or the interval, if longer)
	daemonJitter     = 0.10        // each wait varies by ±10%, so that accounts do not poll in step
	daemonMinWait    = time.Second // never poll an account more often than this
)

// pollKind is what a poll of an account came to, as far as its timetable cares.
type pollKind int

const (
	pollOK        pollKind = iota // success; or the server's LOGIN-DELAY is not over (pollOutcome.deferred)
	pollTemporary                 // exit 75: network, timeout, [IN-USE], [SYS/TEMP], [LOGIN-DELAY]: back off
	pollFailed                    // a permanent failure (password, TLS, profile): try again at the interval
	pollBusy                      // another run (a `popfetch sync` by hand) held the account's lock
)

// pollOutcome is one poll's result for the timetable.
type pollOutcome struct {
	kind     pollKind
	deferred time.Time // pollOK: not polled, the server's LOGIN-DELAY is over only then
}

// nextPoll returns when to poll an account next, polled every interval, after a poll that ended at
// now with outcome out, and the new count of consecutive temporary failures (failures is the count
// before). r, in [0, 1), picks the jitter.
//
//   - success: the interval (±10%); the failure count starts again at 0;
//   - temporary failure: the interval doubled for each consecutive one (2×, 4×, …) up to an hour (or
//     the interval, if longer), ±10%;
//   - permanent failure: the interval (the user may fix the password or the profile meanwhile);
//   - lock held by another run: the interval, the failure count unchanged;
//   - LOGIN-DELAY not over: the moment it is over (at least a second from now), no jitter.
func nextPoll(interval time.Duration, failures int, out pollOutcome, now time.Time, r float64) (time.Time, int) {
	if interval < daemonMinWait {
		interval = daemonMinWait
	}
	base := interval
	switch out.kind {
	case pollOK:
		if !out.deferred.IsZero() {
			return latest(out.deferred, now.Add(daemonMinWait)), failures
		}
		failures = 0
	case pollTemporary:
		failures++
		base = backoff(interval, failures)
	case pollFailed:
		failures = 0
	case pollBusy:
	}
	return now.Add(jitter(base, r)), failures
}

// backoff is the wait after the n-th consecutive temporary failure: interval·2ⁿ, at most an hour (or
// the interval, if that is longer).
func backoff(interval time.Duration, n int) time.Duration {
	limit := max(daemonMaxBackoff, interval)
	d := interval
	for range n {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return d
}

// jitter spreads d over [0.9·d, 1.1·d) with r in [0, 1), and never goes below daemonMinWait.
func jitter(d time.Duration, r float64) time.Duration {
	f := 1 - daemonJitter + 2*daemonJitter*min(max(r, 0), 1)
	return max(time.Duration(float64(d)*f), daemonMinWait)
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// schedule is the daemon's timetable of accounts: when each is due, which are being polled (one
// account is never polled twice at once), how many temporary failures each has had in a row. It is
// used by one goroutine only (the daemon's loop).
type schedule struct {
	now     func() time.Time
	rand    func() float64 // in [0, 1)
	entries map[string]*scheduled
	hostMax map[string]int // host -> sessions at once (max_connections; HostLimits)
	busy    map[string]int // host -> polls running
	nrun    int            // polls running

	// idle holds the accounts neither running nor removed nor blocked, soonest due first; blocked
	// holds those that fell due while their host was full, until one of its polls ends. With them
	// take and wake cost O(log N) an account started, not a scan of every account.
	idle    idleHeap
	blocked map[string][]*scheduled // host -> accounts due, waiting for the host
}

// scheduled is one account in the timetable.
type scheduled struct {
	acct     *config.Account
	host     string // HostKey(acct)
	next     time.Time
	failures int
	running  bool
	again    bool          // poll once more as soon as the running poll ends (SIGUSR1, or the profile changed)
	removed  bool          // gone from the configuration: forget it when its running poll ends
	runHost  string        // running: the host its poll counts against
	lag      time.Duration // running: how late its poll started
	index    int           // in schedule.idle; -1 when not there
}

func newSchedule(now func() time.Time, rand func() float64) *schedule {
	return &schedule{now: now, rand: rand, entries: map[string]*scheduled{}, hostMax: map[string]int{}, busy: map[string]int{},
		blocked: map[string][]*scheduled{}}
}

// set installs the accounts of a configuration, the first one or a reloaded one. New accounts are
// due from now, spread over their interval (firstPolls: no thundering herd at the start or after a
// reload); an account whose profile changed is spread likewise, with its failure count reset (one
// being polled is polled again when that poll ends); unchanged ones keep their times; the others
// are forgotten (once their running poll ends). It returns the names of the accounts added, changed
// and removed, sorted.
func (s *schedule) set(accts []*config.Account) (added, changed, removed []string) {
	now := s.now()
	keep := map[string]bool{}
	var fresh []*config.Account // added or changed: their first polls are spread
	for _, a := range accts {
		keep[a.Name] = true
		e := s.entries[a.Name]
		switch {
		case e == nil:
			s.entries[a.Name] = &scheduled{acct: a, next: now}
			added = append(added, a.Name)
			fresh = append(fresh, a)
		case e.removed: // removed while it was being polled, and back before the poll ended
			*e = scheduled{acct: a, running: e.running, again: e.running, next: now, runHost: e.runHost, lag: e.lag}
			added = append(added, a.Name)
		case !reflect.DeepEqual(*e.acct, *a):
			e.acct, e.failures, e.next = a, 0, now
			e.again = e.running
			changed = append(changed, a.Name)
			if !e.running {
				fresh = append(fresh, a)
			}
		default:
			e.acct = a
		}
	}
	for name, e := range s.entries {
		if keep[name] || e.removed {
			continue
		}
		removed = append(removed, name)
		if e.running {
			e.removed, e.again = true, false
		} else {
			delete(s.entries, name)
		}
	}
	for _, e := range s.entries {
		e.host = config.HostKey(e.acct)
	}
	for name, at := range firstPolls(fresh, now) {
		s.entries[name].next = at
	}
	s.hostMax = config.HostLimits(accts)
	s.rebuild()
	sort.Strings(added)
	sort.Strings(changed)
	sort.Strings(removed)
	return added, changed, removed
}

// pollAll makes every account due now; one being polled is polled again when that poll ends.
func (s *schedule) pollAll() {
	now := s.now()
	for _, e := range s.entries {
		if e.removed {
			continue
		}
		if e.running {
			e.again = true
		} else {
			e.next = now
		}
	}
	s.rebuild()
}

// rebuild puts every account that is neither running nor removed back in the idle heap (after
// set or pollAll changed many times at once): O(N).
func (s *schedule) rebuild() {
	s.idle = s.idle[:0]
	clear(s.blocked)
	for _, e := range s.entries {
		e.index = -1
		if !e.running && !e.removed {
			e.index = len(s.idle)
			s.idle = append(s.idle, e)
		}
	}
	heap.Init(&s.idle)
}

// hostFull reports whether e's host has as many polls running as its max_connections allow.
func (s *schedule) hostFull(e *scheduled) bool {
	h := e.host
	limit, ok := s.hostMax[h]
	if !ok {
		limit = max(e.acct.MaxConnections, 1)
	}
	return s.busy[h] >= limit
}

// take returns up to n accounts that are due and not being polled, the longest overdue first, and
// marks them as being polled. An account whose host has max_connections polls running waits.
func (s *schedule) take(n int) []*config.Account {
	now := s.now()
	var out []*config.Account
	for len(out) < n && len(s.idle) > 0 && !s.idle[0].next.After(now) {
		e := heap.Pop(&s.idle).(*scheduled)
		if s.hostFull(e) {
			s.blocked[e.host] = append(s.blocked[e.host], e)
			continue
		}
		e.running, e.runHost, e.lag = true, e.host, now.Sub(e.next)
		s.busy[e.runHost]++
		s.nrun++
		out = append(out, e.acct)
	}
	return out
}

// lagOf returns how late the running poll of an account started (0 if none runs).
func (s *schedule) lagOf(name string) time.Duration {
	if e := s.entries[name]; e != nil && e.running {
		return e.lag
	}
	return 0
}

// wake returns when the next account that is not being polled is due; ok is false when there is
// none. Accounts whose host is full are left out: they wait for a poll's end, not for a time.
func (s *schedule) wake() (at time.Time, ok bool) {
	if len(s.idle) == 0 {
		return time.Time{}, false
	}
	return s.idle[0].next, true
}

// done records the end of an account's poll and returns when it is polled next (the zero time if it
// was removed from the configuration meanwhile) and how many temporary failures it has had in a row.
func (s *schedule) done(name string, out pollOutcome) (next time.Time, failures int) {
	e := s.entries[name]
	if e == nil {
		return time.Time{}, 0
	}
	if e.running {
		e.running = false
		s.nrun--
		if s.busy[e.runHost]--; s.busy[e.runHost] <= 0 {
			delete(s.busy, e.runHost)
		}
		// The host has room again: its accounts that fell due meanwhile go back in line.
		for _, b := range s.blocked[e.runHost] {
			heap.Push(&s.idle, b)
		}
		delete(s.blocked, e.runHost)
	}
	if e.removed {
		delete(s.entries, name)
		return time.Time{}, 0
	}
	e.next, e.failures = nextPoll(e.acct.Interval, e.failures, out, s.now(), s.rand())
	if e.again {
		e.again = false
		if out.deferred.IsZero() { // the server asked to wait: polling now would not poll
			e.next = s.now()
		}
	}
	heap.Push(&s.idle, e)
	return e.next, e.failures
}

// running returns how many accounts are being polled.
func (s *schedule) running() int { return s.nrun }

// idleHeap orders accounts by when they are due, then by name (container/heap).
type idleHeap []*scheduled

func (h idleHeap) Len() int { return len(h) }
func (h idleHeap) Less(i, j int) bool {
	if !h[i].next.Equal(h[j].next) {
		return h[i].next.Before(h[j].next)
	}
	return h[i].acct.Name < h[j].acct.Name
}
func (h idleHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *idleHeap) Push(x any) {
	e := x.(*scheduled)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *idleHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
