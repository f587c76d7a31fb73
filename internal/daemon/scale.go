package daemon

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/internal/humanize"
)

// The daemon at scale: how many polls it runs at once, how late they start (schedule lag), and the
// one function per poll event that logging and metrics hook into.

const (
	daemonMaxAutoJobs = 256 // --jobs 0 (the default): at most this many polls at once …
	daemonFDsPerPoll  = 8   // … and no more than the open-file limit allows at this many descriptors a poll
	daemonFDReserve   = 64  // descriptors kept for the daemon itself (log, config, lock, syslog, …)
	daemonLagEvery    = time.Minute
)

// autoJobs is the daemon's global limit of polls at once when --jobs is 0: as many as the
// open-file limit (nofile, RLIMIT_NOFILE; 0 when unknown) leaves room for, at most 256. The polls
// then follow the work: every account that is due starts, up to this and its host's
// max_connections, so that polls in flight are the accounts' rate (Σ 1/interval) times a poll's
// duration.
func autoJobs(nofile uint64) int {
	if nofile == 0 {
		return daemonMaxAutoJobs
	}
	if nofile <= daemonFDReserve+daemonFDsPerPoll {
		return 1
	}
	return int(min(uint64(daemonMaxAutoJobs), (nofile-daemonFDReserve)/daemonFDsPerPoll))
}

// lagWindow collects the schedule lag of the polls started since the last summary.
type lagWindow struct {
	since time.Time
	lags  []time.Duration
	took  []time.Duration // how long the polls that ended took
	peak  int             // most polls running at once
}

// add records a poll that started lag late, with running polls running (it included).
func (w *lagWindow) add(lag time.Duration, running int) {
	w.lags = append(w.lags, max(lag, 0))
	w.peak = max(w.peak, running)
}

// ended records a poll that ended after took.
func (w *lagWindow) ended(took time.Duration) { w.took = append(w.took, took) }

// percentile returns the p-th percentile (0–100) of sorted lags, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

// summary is the -v line about the window: polls started, lag p50/p99/max, most running at once,
// how long the polls that ended took (p50, p99): with the intervals, what sizes max_connections.
func (w *lagWindow) summary(now time.Time) string {
	s := slices.Clone(w.lags)
	slices.Sort(s)
	t := slices.Clone(w.took)
	slices.Sort(t)
	return fmt.Sprintf("popfetch: schedule: %d poll(s) started in the last %s, late by p50 %s, p99 %s, max %s; up to %d at once; polls took p50 %s, p99 %s",
		len(s), humanize.Duration(now.Sub(w.since).Round(time.Second)), fmtLag(percentile(s, 50)), fmtLag(percentile(s, 99)),
		fmtLag(percentile(s, 100)), w.peak, fmtLag(percentile(t, 50)), fmtLag(percentile(t, 99)))
}

func fmtLag(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// pollStarted is called once for each poll, by the loop, as it starts: lag is how late it starts
// after it was due. Hook metrics here.
func (d *daemon) pollStarted(a *config.Account, lag time.Duration) {
	d.lags.add(lag, d.sched.running())
	if d.o.Verbose && lag >= max(a.Interval/10, time.Second) {
		d.log.Infof("%s: poll started %s late (interval %s)", a.Name, fmtLag(lag), humanize.Duration(a.Interval))
	}
}

// pollEnded is called once for each poll, by the loop, as it ends (p.lag is how late it started).
// Hook metrics here.
func (d *daemon) pollEnded(p polled, next time.Time, failures int, stopping bool) {
	d.report(p, next, failures, stopping)
	d.lags.ended(p.took)
	now := time.Now()
	if now.Sub(d.lags.since) >= daemonLagEvery {
		if d.o.Verbose && len(d.lags.lags) > 0 {
			d.log.Infof("%s", d.lags.summary(now))
		}
		d.lags = lagWindow{since: now}
	}
}

// summarizeAccounts is the start line's account part: the count and the distinct intervals, e.g.
// "1000 account(s), every 5m (998), 1m (2)".
func summarizeAccounts(accts []*config.Account) string {
	count := map[time.Duration]int{}
	for _, a := range accts {
		count[a.Interval]++
	}
	ivs := make([]time.Duration, 0, len(count))
	for iv := range count {
		ivs = append(ivs, iv)
	}
	sort.Slice(ivs, func(i, j int) bool {
		if count[ivs[i]] != count[ivs[j]] {
			return count[ivs[i]] > count[ivs[j]]
		}
		return ivs[i] < ivs[j]
	})
	parts := make([]string, len(ivs))
	for i, iv := range ivs {
		parts[i] = fmt.Sprintf("%s (%d)", humanize.Duration(iv), count[iv])
	}
	s := fmt.Sprintf("%d account(s)", len(accts))
	if len(parts) > 0 {
		s += ", every " + strings.Join(parts, ", ")
	}
	return s
}
