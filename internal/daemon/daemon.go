// Package daemon is `popfetch daemon`: it polls each account of a configuration on its own interval
// (schedule.go), spreads the first polls (spread.go), runs as many at once as the open-file limit
// and each host's max_connections allow (scale.go, limit.go), logs what happens (log.go), publishes
// its timetable for `popfetch status` (status.go) and serves Prometheus metrics (metrics.go). It
// acts on SIGHUP (reload), SIGUSR1 (poll every account now) and the end of its context (stop after
// the batch each poll is on).
//
// It knows nothing of exit codes: how a poll is done and what its error means come from its
// caller (Options), and Run returns errors that say what happened (ErrAborted, *RunningError,
// *ListenError).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/internal/humanize"
	"github.com/popfetch/popfetch/internal/shard"
	"github.com/popfetch/popfetch/store"
)

// daemonLockName is the daemon's lock in the state directory, "@daemon.lock": one daemon per
// configuration (per state directory). '@' cannot appear in an account name, so this lock never
// collides with an account's "<name>.lock".
const daemonLockName = "@daemon"

// daemonTick is the longest the daemon sleeps without looking at the (wall) clock: after a suspend,
// polls that fell due meanwhile start within this time.
const daemonTick = time.Minute

// wallClock is time.Now without its monotonic reading: the daemon's timetable follows the wall clock,
// which (unlike the monotonic one) counts the time a laptop spent suspended.
func wallClock() time.Time { return time.Now().Round(0) }

// Options are what a daemon runs with: its flags, and the hooks through which its caller loads the
// configuration, polls an account and says what a poll's error means. Poll and Outcome run on each
// poll's goroutine, several at once; the other hooks on the goroutine of Run.
type Options struct {
	Stderr  io.Writer // the log, unless Syslog (and syslog can be opened)
	Syslog  bool      // log to syslog (facility mail, tag popfetch)
	Quiet   bool      // log errors only
	Verbose bool      // log every poll, each account's timetable and the schedule's lag

	Jobs    int         // polls at once in all; 0: as many as the open-file limit allows (autoJobs)
	Shard   shard.Shard // the accounts this daemon polls
	Metrics string      // serve metrics on this address (checked by CheckMetricsAddr); "": none

	// Abort is done once a second signal asked to abandon the running polls: Run then returns
	// ErrAborted. Nil: never.
	Abort context.Context

	// Load reads the configuration at the start. Run calls it once SIGHUP and SIGUSR1 are caught
	// and the log is open.
	Load func() (*config.Config, error)
	// Reload reads the configuration file at path again (SIGHUP).
	Reload func(path string) (*config.Config, error)
	// Poll syncs account a under its lock, as `popfetch sync ACCOUNT` would, writing what it has to
	// say to log. ctx done: stop after the batch it is on.
	Poll func(ctx context.Context, log io.Writer, cfg *config.Config, a *config.Account) (fetch.Result, error)
	// Outcome says what a poll came to: store.RunOK, RunDeferred, RunTemporary, RunInterrupted or
	// RunFailed, and the exit code `popfetch sync` would have had.
	Outcome func(res fetch.Result, err error) (result string, code int)
	// Exhausted reports whether a poll's error is the machine running out of file descriptors or
	// memory: the daemon then runs fewer polls at once for a while (limit.go).
	Exhausted func(err error) bool
}

// ErrAborted is what Run returns when a second signal abandoned the running polls (the log says the
// daemon stopped).
var ErrAborted = errors.New("daemon: interrupted")

// RunningError says another daemon holds the state directory's daemon lock. It wraps the lock's
// *store.LockedError (errors.Is store.ErrLocked).
type RunningError struct {
	StateDir string
	Lock     *store.LockedError
}

func (e *RunningError) Error() string {
	holder := "another popfetch daemon"
	if e.Lock.PID > 0 {
		holder = fmt.Sprintf("another popfetch daemon (pid %d)", e.Lock.PID)
	}
	return fmt.Sprintf("%s is already running for the state directory %s (lock %s)", holder, e.StateDir, e.Lock.Path)
}

func (e *RunningError) Unwrap() error { return e.Lock }

// daemon is one run of `popfetch daemon`. Its fields are used by the loop's goroutine only, except
// those the polls read (o, log), which do not change.
type daemon struct {
	o     Options
	log   *Log
	cfg   *config.Config
	sched *schedule
	polls chan polled
	jobs  *jobLimit // limit.go: --jobs, lowered while polls run out of descriptors or memory
	obs   observers // status.go, metrics.go: told of polls' starts and ends
	lags  lagWindow // scale.go: schedule lag since the last -v summary
}

// polled is the end of one account's poll.
type polled struct {
	name   string
	res    fetch.Result
	err    error
	result string // Options.Outcome: store.RunOK, …
	code   int    // the exit code `popfetch sync` would have had
	took   time.Duration
	lag    time.Duration // how late the poll started after it was due
}

// Run runs the daemon until ctx is done (SIGTERM, SIGINT), then waits for the running polls, which
// stop after the batch they are on, and returns nil; or ErrAborted if o.Abort is done by then.
func Run(ctx context.Context, o Options) error {
	// First of all, before opening syslog, loading the configuration (which may wait on a FIFO or a
	// slow disk) and taking the lock: SIGHUP and SIGUSR1 would otherwise end the process (129, 138),
	// and a service manager's reload may send SIGHUP as soon as the process exists. A SIGHUP that
	// comes before the daemon has started reloads the configuration once it has.
	reloadSig, pollSig := daemonSignals()
	hup, usr1 := make(chan os.Signal, 1), make(chan os.Signal, 1)
	if reloadSig != nil {
		signal.Notify(hup, reloadSig)
		defer signal.Stop(hup)
	}
	if pollSig != nil {
		signal.Notify(usr1, pollSig)
		defer signal.Stop(usr1)
	}
	log := NewLog(o.Stderr, nil, o.Quiet)
	if o.Syslog {
		sys, err := openSyslog()
		if err != nil {
			fmt.Fprintf(o.Stderr, "popfetch: warning: --syslog: %v; logging to stderr instead\n", humanize.OneLine(err))
		} else {
			log.sys = sys
			defer sys.Close()
		}
	}
	cfg, err := o.Load()
	if err != nil {
		return err
	}
	lock, err := store.Lock(cfg.StateDir, daemonLockName, false)
	if err != nil {
		var le *store.LockedError
		if errors.As(err, &le) {
			return &RunningError{StateDir: cfg.StateDir, Lock: le}
		}
		return err
	}
	defer lock.Unlock()

	jobs, nofile := o.Jobs, openFileLimit()
	if jobs == 0 {
		jobs = autoJobs(nofile)
	}
	d := &daemon{o: o, log: log, cfg: cfg,
		sched: newSchedule(wallClock, rand.Float64), polls: make(chan polled), jobs: newJobLimit(jobs),
		lags: lagWindow{since: time.Now()}}
	accts := o.Shard.Filter(cfg.Accounts)
	d.sched.set(accts)
	in := ""
	if o.Shard.N > 0 {
		in = fmt.Sprintf(" of %d in shard %s", len(cfg.Accounts), o.Shard)
	}
	limits := fmt.Sprintf("up to %d poll(s) at once", jobs)
	if o.Jobs == 0 && nofile > 0 {
		limits += fmt.Sprintf(" (open-file limit %d)", nofile)
	}
	log.Infof("popfetch: daemon started (pid %d, %s): %s%s; %s", os.Getpid(), cfg.Path, summarizeAccounts(accts), in, limits)
	if o.Verbose {
		d.logAccounts(accts)
	}
	d.obs = observers{newDaemonStatusFile(cfg.StateDir, log)}
	if o.Metrics != "" {
		m, err := newDaemonMetrics(o.Metrics, cfg.StateDir, log)
		if err != nil {
			return err
		}
		d.obs = append(d.obs, m)
	}
	d.obs.accounts(accts)
	defer d.obs.stopped()
	return d.loop(ctx, hup, usr1)
}

// loop starts the polls that are due, at most --jobs at once, and acts on their ends and on signals.
// Once ctx is done it starts nothing more, waits for the running polls (which stop after the batch
// they are on) and returns.
func (d *daemon) loop(ctx context.Context, hup, usr1 <-chan os.Signal) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	done := ctx.Done()
	stopping := false
	for {
		if !stopping {
			for _, a := range d.sched.take(d.jobs.cur - d.sched.running()) {
				d.jobs.start(a.Name)
				lag := d.sched.lagOf(a.Name)
				d.pollStarted(a, lag)
				d.obs.pollStarted(a.Name)
				go d.poll(ctx, d.cfg, a, lag)
			}
			// When every job is busy, the due accounts wait for a poll's end, not for the timer.
			if at, ok := d.sched.wake(); ok && d.sched.running() < d.jobs.cur {
				timer.Reset(min(max(time.Until(at), 0), daemonTick))
			} else {
				timer.Stop()
			}
		} else if d.sched.running() == 0 {
			break
		}
		select {
		case <-done:
			done, stopping = nil, true
			timer.Stop()
			if n := d.sched.running(); n > 0 {
				d.log.Infof("popfetch: stopping after the batch each running poll is on (%d)", n)
			}
		case p := <-d.polls:
			next, failures := d.sched.done(p.name, outcomeOf(p))
			d.pollEnded(p, next, failures, stopping)
			d.obs.pollEnded(p, next)
			switch d.jobs.end(p.name, d.o.Exhausted(p.err)) {
			case -1:
				d.log.Errorf("popfetch: %s ran out of file descriptors or memory: polling at most %d account(s) at once from now on (--jobs %d); raise the limit (ulimit -n, LimitNOFILE=) or lower --jobs",
					p.name, d.jobs.cur, d.o.Jobs)
			case +1:
				d.log.Infof("popfetch: polling up to %d account(s) at once again (--jobs %d)", d.jobs.cur, d.o.Jobs)
			}
		case <-hup:
			d.reload()
		case <-usr1:
			d.log.Infof("popfetch: SIGUSR1: polling every account now")
			d.sched.pollAll()
		case <-timer.C:
		}
	}
	if d.o.Verbose && len(d.lags.lags) > 0 {
		d.log.Infof("%s", d.lags.summary(time.Now()))
	}
	d.log.Infof("popfetch: daemon stopped")
	if d.o.Abort != nil && d.o.Abort.Err() != nil {
		return ErrAborted
	}
	return nil
}

// poll syncs one account (Options.Poll): under the account's lock, which it releases when the sync
// ends (the daemon holds no account lock between polls).
func (d *daemon) poll(ctx context.Context, cfg *config.Config, a *config.Account, lag time.Duration) {
	start := time.Now()
	res, err := d.o.Poll(ctx, d.log, cfg, a)
	res.Account = a.Name
	took := time.Since(start)
	result, code := d.o.Outcome(res, err)
	d.polls <- polled{name: a.Name, res: res, err: err, result: result, code: code, took: took, lag: lag}
}

// outcomeOf says what a poll's result means for the account's timetable.
func outcomeOf(p polled) pollOutcome {
	switch {
	case p.err == nil:
		return pollOutcome{kind: pollOK, deferred: p.res.DeferredUntil}
	case errors.Is(p.err, store.ErrLocked):
		return pollOutcome{kind: pollBusy}
	case p.result == store.RunTemporary:
		return pollOutcome{kind: pollTemporary}
	}
	return pollOutcome{kind: pollFailed}
}

// report logs the end of a poll: new mail always, "no new mail" with -v, errors always (even with -q).
func (d *daemon) report(p polled, next time.Time, failures int, stopping bool) {
	in := ""
	if !stopping && !next.IsZero() {
		in = "; next poll in " + humanize.Duration(time.Until(next).Round(time.Second))
	}
	var le *store.LockedError
	switch {
	case p.err == nil && !p.res.DeferredUntil.IsZero():
		if d.o.Verbose {
			d.log.Infof("%s%s", p.res.Summary(p.took), in)
		}
	case p.err == nil:
		if d.o.Verbose || p.res.Retrieved > 0 || p.res.Deleted > 0 {
			d.log.Infof("%s", p.res.Summary(p.took))
		}
	case errors.As(p.err, &le):
		holder := "another popfetch run"
		if le.PID > 0 {
			holder += fmt.Sprintf(" (pid %d)", le.PID)
		}
		d.log.Infof("%s: not polled: %s is syncing it%s", p.name, holder, in)
	case p.result == store.RunInterrupted && p.res.Retrieved == 0 && p.res.Deleted == 0:
		d.log.Infof("%s: stopped before fetching anything", p.name)
	case p.result == store.RunInterrupted:
		d.log.Infof("%s (stopped)", p.res.Summary(p.took))
	default:
		why := ""
		if p.result == store.RunTemporary && in != "" {
			why = fmt.Sprintf(" (temporary failure %d in a row: backing off)", failures)
		}
		d.log.Errorf("%s: error: %s%s%s", p.name, humanize.OneLine(p.err), in, why)
	}
}

// reload reads the configuration file again (SIGHUP). A file that does not load leaves the running
// configuration in place; accounts added, removed or changed take effect at once (added and changed
// ones are polled now).
func (d *daemon) reload() {
	path := d.cfg.Path
	cfg, err := d.o.Reload(path)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) && len(ce.Issues) > 0 {
			for _, line := range strings.Split(ce.Error(), "\n") {
				d.log.Errorf("popfetch: error: SIGHUP: not reloaded, the previous configuration keeps running: %s", line)
			}
		} else {
			d.log.Errorf("popfetch: error: SIGHUP: not reloaded, the previous configuration keeps running: %s", humanize.OneLine(err))
		}
		return
	}
	if cfg.StateDir != d.cfg.StateDir {
		d.log.Errorf("popfetch: error: SIGHUP: not reloaded, the previous configuration keeps running: state_dir changed from %s to %s; restart the daemon to move it",
			d.cfg.StateDir, cfg.StateDir)
		return
	}
	added, changed, removed := d.sched.set(d.o.Shard.Filter(cfg.Accounts))
	d.cfg = cfg
	d.obs.accounts(d.o.Shard.Filter(cfg.Accounts))
	var parts []string
	for _, c := range []struct {
		what  string
		names []string
	}{{"added", added}, {"changed", changed}, {"removed", removed}} {
		if len(c.names) > 0 {
			parts = append(parts, c.what+" "+strings.Join(c.names, ", "))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no account changed"}
	}
	d.log.Infof("popfetch: SIGHUP: reloaded %s: %s", path, strings.Join(parts, "; "))
}

// logAccounts logs (-v) one line per account: its interval, host and first poll.
func (d *daemon) logAccounts(accts []*config.Account) {
	now := wallClock()
	for _, a := range accts {
		first := ""
		if e := d.sched.entries[a.Name]; e != nil {
			first = "; first poll in " + humanize.Duration(max(e.next.Sub(now), 0).Round(time.Second))
		}
		d.log.Infof("%s: every %s from %s%s", a.Name, humanize.Duration(a.Interval), a.Host, first)
	}
}
