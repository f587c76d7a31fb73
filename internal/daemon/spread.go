package daemon

import (
	"sort"
	"time"

	"github.com/popfetch/popfetch/config"
)

// daemonSpreadStep is the longest gap between the first polls of accounts that share an interval:
// a few accounts start within seconds, many are spread over the whole interval.
const daemonSpreadStep = time.Second

// spreadOffsets assigns first-poll offsets, so that a daemon that starts (or a reload that adds or
// changes many accounts) does not poll them all at once. intervals are the accounts' intervals, in
// the order the accounts are to be polled; the result gives each one's offset from now.
//
// The accounts of one interval I, n of them, are polled step apart in order, step = min(I/n, 1s):
// the first at once, the last within the interval. Polled every I from then on, they keep that
// spacing (±jitter), so the polls per second stay level at n/I. Accounts of different intervals are
// spread independently; the sum of level loads is level.
func spreadOffsets(intervals []time.Duration) []time.Duration {
	count := map[time.Duration]int{}
	for _, iv := range intervals {
		count[iv]++
	}
	seen := map[time.Duration]int{}
	out := make([]time.Duration, len(intervals))
	for i, iv := range intervals {
		step := min(iv/time.Duration(count[iv]), daemonSpreadStep)
		out[i] = step * time.Duration(seen[iv])
		seen[iv]++
	}
	return out
}

// firstPolls returns when each of accts is first polled, spread from now by spreadOffsets in the
// order of their names.
func firstPolls(accts []*config.Account, now time.Time) map[string]time.Time {
	sorted := append([]*config.Account(nil), accts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	intervals := make([]time.Duration, len(sorted))
	for i, a := range sorted {
		intervals[i] = max(a.Interval, daemonMinWait)
	}
	out := make(map[string]time.Time, len(sorted))
	for i, off := range spreadOffsets(intervals) {
		out[sorted[i].Name] = now.Add(off)
	}
	return out
}
