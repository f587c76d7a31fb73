package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/internal/humanize"
	"github.com/popfetch/popfetch/internal/report"
	"github.com/popfetch/popfetch/internal/termsafe"
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

// daemonOptions are the flags of `popfetch daemon`.
type daemonOptions struct {
	*globalOptions
	jobs   int // 0: autoJobs
	syslog bool
	shard  shard

	metrics            string // --metrics ADDR (daemon_metrics.go)
	metricsAllowRemote bool
}

func daemonCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:  "daemon",
		Usage: "keep running: poll each account on its own interval, and log what happens",
		Description: "Polls each account on its own interval (profile key interval, default 5m, ±10% jitter), doubling\n" +
			"the wait after each temporary failure (exit-75 kind: network, [IN-USE], …) up to an hour, and\n" +
			"waiting out a server's LOGIN-DELAY. Logs one line per event on stderr (\"TIME ACCOUNT: …\"), or\n" +
			"to syslog with --syslog.\n\n" +
			"Signals: SIGHUP reloads the configuration (a broken file keeps the previous one running and\n" +
			"logs why); SIGUSR1 polls every account now; SIGTERM or SIGINT stops after the batch each\n" +
			"account is on and exits 0 (a second one abandons the connections at once, exit 130). Windows\n" +
			"has neither SIGHUP nor SIGUSR1: restart the daemon to reload, run `popfetch sync` to poll now.\n\n" +
			"--metrics 127.0.0.1:9782 serves Prometheus metrics on /metrics and a health answer on /healthz;\n" +
			"`popfetch status` shows each account's last runs and next poll.\n\n" +
			"One daemon runs per state directory (a second one exits 75). A `popfetch sync` by hand while\n" +
			"the daemon runs waits for the account (--wait) or exits 75, as with any other run.\n\n" +
			"At the start (and for accounts a SIGHUP adds or changes) the first polls are spread over the\n" +
			"interval, so that many accounts do not all poll at once. Every due account is polled at once, up\n" +
			"to --jobs in all (default: as many as the open-file limit allows, at most 256) and up to each\n" +
			"host's max_connections (profile key, default 8). With -v the log says every minute how late\n" +
			"polls started (schedule lag).",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 0, EnvVars: []string{"POPFETCH_JOBS"},
				Usage: "poll up to `N` accounts at once in all (0: as many as the open-file limit allows, at most 256; each host also has its max_connections)"},
			shardFlag(),
			&cli.BoolFlag{Name: "syslog", Usage: "log to syslog (facility mail, tag popfetch) instead of stderr"},
			&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics on http://`ADDR`/metrics and /healthz (e.g. 127.0.0.1:9782; loopback only unless --metrics-allow-remote)"},
			&cli.BoolFlag{Name: "metrics-allow-remote", Usage: "let --metrics listen on an address other than loopback"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return withCode(exitUsage, fmt.Errorf("daemon takes no arguments: it polls every account of the configuration"))
			}
			sh, err := parseShard(c.String("shard"))
			if err != nil {
				return err
			}
			return runDaemon(c.Context, daemonOptions{globalOptions: globalsFrom(c, env), jobs: c.Int("jobs"),
				syslog: c.Bool("syslog"), shard: sh, metrics: c.String("metrics"), metricsAllowRemote: c.Bool("metrics-allow-remote")})
		},
	}
}

// syslogWriter is what the daemon needs of a *syslog.Writer.
type syslogWriter interface {
	Info(string) error
	Err(string) error
	Close() error
}

// daemonLog is the daemon's log: one line per event, "2026-11-23T15:04:05Z work: 3 fetched …", on
// stderr (where journald picks it up), or to syslog, which stamps the time itself. It is safe for
// concurrent use; as an io.Writer it logs each line written (protocol traces, a password_command's
// stderr).
type daemonLog struct {
	mu    sync.Mutex
	w     io.Writer
	sys   syslogWriter // nil: w
	now   func() time.Time
	quiet bool // -q: errors only
}

func (l *daemonLog) line(isErr bool, text string) {
	text = termsafe.String(text) // one line, terminal-safe, on stderr and in syslog alike
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sys != nil {
		if isErr {
			l.sys.Err(text)
		} else {
			l.sys.Info(text)
		}
		return
	}
	fmt.Fprintf(l.w, "%s %s\n", l.now().UTC().Format(time.RFC3339), text)
}

func (l *daemonLog) infof(format string, args ...any) {
	if !l.quiet {
		l.line(false, fmt.Sprintf(format, args...))
	}
}

func (l *daemonLog) errorf(format string, args ...any) { l.line(true, fmt.Sprintf(format, args...)) }

func (l *daemonLog) Write(b []byte) (int, error) {
	for _, s := range strings.Split(string(b), "\n") {
		if s = strings.TrimRight(s, "\r"); s != "" {
			l.line(false, s)
		}
	}
	return len(b), nil
}

// daemon is one run of `popfetch daemon`. Its fields are used by the loop's goroutine only, except
// those the polls read (g, rep, log), which do not change.
type daemon struct {
	o     daemonOptions
	g     *globalOptions // what the polls see: stderr is the log, no terminal, no prompt
	log   *daemonLog
	rep   *report.Reporter
	cfg   *config.Config
	sched *schedule
	polls chan polled
	jobs  *jobLimit // daemon_limit.go: --jobs, lowered while polls run out of descriptors or memory
	obs   observers // status_record.go, daemon_metrics.go: told of polls' starts and ends
	lags  lagWindow // daemon_scale.go: schedule lag since the last -v summary
}

// polled is the end of one account's poll.
type polled struct {
	name string
	res  fetch.Result
	err  error
	took time.Duration
	lag  time.Duration // how late the poll started after it was due
}

func runDaemon(ctx context.Context, o daemonOptions) error {
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
	if o.jobs < 0 {
		return withCode(exitUsage, fmt.Errorf("--jobs must be 0 (as many as the open-file limit allows) or more"))
	}
	if o.json {
		return withCode(exitUsage, fmt.Errorf("the daemon writes a log, not JSON: drop --json"))
	}
	if o.metrics != "" {
		if err := checkMetricsAddr(o.metrics, o.metricsAllowRemote); err != nil {
			return withCode(exitUsage, err)
		}
	}
	log := &daemonLog{w: o.stderr, now: time.Now, quiet: o.quiet}
	if o.syslog {
		sys, err := openSyslog()
		if err != nil {
			fmt.Fprintf(o.stderr, "popfetch: warning: --syslog: %v; logging to stderr instead\n", humanize.OneLine(err))
		} else {
			log.sys = sys
			defer sys.Close()
		}
	}
	cfg, err := loadConfig(o.globalOptions)
	if err != nil {
		return err
	}
	lock, err := store.Lock(cfg.StateDir, daemonLockName, false)
	if err != nil {
		var le *store.LockedError
		if errors.As(err, &le) {
			holder := "another popfetch daemon"
			if le.PID > 0 {
				holder = fmt.Sprintf("another popfetch daemon (pid %d)", le.PID)
			}
			return withCode(exitTempFail, fmt.Errorf("%s is already running for the state directory %s (lock %s)",
				holder, cfg.StateDir, le.Path))
		}
		return err
	}
	defer lock.Unlock()

	g := *o.globalOptions
	g.stderr, g.stderrTTY, g.stderrTerm, g.json = log, false, nil, false
	g.stdin = strings.NewReader("") // not a terminal: never ask for a password
	jobs, nofile := o.jobs, openFileLimit()
	if jobs == 0 {
		jobs = autoJobs(nofile)
	}
	d := &daemon{o: o, g: &g, log: log, rep: newReporter(&g), cfg: cfg,
		sched: newSchedule(wallClock, rand.Float64), polls: make(chan polled), jobs: newJobLimit(jobs),
		lags: lagWindow{since: time.Now()}}
	accts := o.shard.filter(cfg.Accounts)
	d.sched.set(accts)
	in := ""
	if o.shard.n > 0 {
		in = fmt.Sprintf(" of %d in shard %s", len(cfg.Accounts), o.shard)
	}
	limits := fmt.Sprintf("up to %d poll(s) at once", jobs)
	if o.jobs == 0 && nofile > 0 {
		limits += fmt.Sprintf(" (open-file limit %d)", nofile)
	}
	log.infof("popfetch: daemon started (pid %d, %s): %s%s; %s", os.Getpid(), cfg.Path, summarizeAccounts(accts), in, limits)
	if o.verbose {
		d.logAccounts(accts)
	}
	d.obs = observers{newDaemonStatusFile(cfg.StateDir, log)}
	if o.metrics != "" {
		m, err := newDaemonMetrics(o.metrics, cfg.StateDir, log)
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
				d.log.infof("popfetch: stopping after the batch each running poll is on (%d)", n)
			}
		case p := <-d.polls:
			next, failures := d.sched.done(p.name, outcomeOf(p.res, p.err))
			d.pollEnded(p, next, failures, stopping)
			d.obs.pollEnded(p, next)
			switch d.jobs.end(p.name, p.err) {
			case -1:
				d.log.errorf("popfetch: %s ran out of file descriptors or memory: polling at most %d account(s) at once from now on (--jobs %d); raise the limit (ulimit -n, LimitNOFILE=) or lower --jobs",
					p.name, d.jobs.cur, d.o.jobs)
			case +1:
				d.log.infof("popfetch: polling up to %d account(s) at once again (--jobs %d)", d.jobs.cur, d.o.jobs)
			}
		case <-hup:
			d.reload()
		case <-usr1:
			d.log.infof("popfetch: SIGUSR1: polling every account now")
			d.sched.pollAll()
		case <-timer.C:
		}
	}
	if d.o.verbose && len(d.lags.lags) > 0 {
		d.log.infof("%s", d.lags.summary(time.Now()))
	}
	d.log.infof("popfetch: daemon stopped")
	if d.o.abort.Err() != nil {
		return exitStatus(exitInterrupted)
	}
	return nil
}

// poll syncs one account, as `popfetch sync ACCOUNT` would: under the account's lock, which it
// releases when the sync ends (the daemon holds no account lock between polls).
func (d *daemon) poll(ctx context.Context, cfg *config.Config, a *config.Account, lag time.Duration) {
	start := time.Now()
	res, err := syncAccount(ctx, d.g.abort, d.g, cfg, a, accountRun{}, d.rep)
	res.Account = a.Name
	d.polls <- polled{name: a.Name, res: res, err: err, took: time.Since(start), lag: lag}
}

// outcomeOf says what a poll's result means for the account's timetable.
func outcomeOf(res fetch.Result, err error) pollOutcome {
	switch {
	case err == nil:
		return pollOutcome{kind: pollOK, deferred: res.DeferredUntil}
	case errors.Is(err, store.ErrLocked):
		return pollOutcome{kind: pollBusy}
	case exitCode(err) == exitTempFail:
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
		if d.o.verbose {
			d.log.infof("%s%s", p.res.Summary(p.took), in)
		}
	case p.err == nil:
		if d.o.verbose || p.res.Retrieved > 0 || p.res.Deleted > 0 {
			d.log.infof("%s", p.res.Summary(p.took))
		}
	case errors.As(p.err, &le):
		holder := "another popfetch run"
		if le.PID > 0 {
			holder += fmt.Sprintf(" (pid %d)", le.PID)
		}
		d.log.infof("%s: not polled: %s is syncing it%s", p.name, holder, in)
	case exitCode(p.err) == exitInterrupted && p.res.Retrieved == 0 && p.res.Deleted == 0:
		d.log.infof("%s: stopped before fetching anything", p.name)
	case exitCode(p.err) == exitInterrupted:
		d.log.infof("%s (stopped)", p.res.Summary(p.took))
	default:
		why := ""
		if exitCode(p.err) == exitTempFail && in != "" {
			why = fmt.Sprintf(" (temporary failure %d in a row: backing off)", failures)
		}
		d.log.errorf("%s: error: %s%s%s", p.name, humanize.OneLine(p.err), in, why)
	}
}

// reload reads the configuration file again (SIGHUP). A file that does not load leaves the running
// configuration in place; accounts added, removed or changed take effect at once (added and changed
// ones are polled now).
func (d *daemon) reload() {
	path := d.cfg.Path
	// A FIFO nobody writes would hold up the loop: the first SIGTERM ends the wait.
	cfg, err := interruptible(d.g.interrupt, path, func() (*config.Config, error) { return config.Load(path) })
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) && len(ce.Issues) > 0 {
			for _, line := range strings.Split(ce.Error(), "\n") {
				d.log.errorf("popfetch: error: SIGHUP: not reloaded, the previous configuration keeps running: %s", line)
			}
		} else {
			d.log.errorf("popfetch: error: SIGHUP: not reloaded, the previous configuration keeps running: %s", humanize.OneLine(err))
		}
		return
	}
	if cfg.StateDir != d.cfg.StateDir {
		d.log.errorf("popfetch: error: SIGHUP: not reloaded, the previous configuration keeps running: state_dir changed from %s to %s; restart the daemon to move it",
			d.cfg.StateDir, cfg.StateDir)
		return
	}
	added, changed, removed := d.sched.set(d.o.shard.filter(cfg.Accounts))
	d.cfg = cfg
	d.obs.accounts(d.o.shard.filter(cfg.Accounts))
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
	d.log.infof("popfetch: SIGHUP: reloaded %s: %s", path, strings.Join(parts, "; "))
}

// logAccounts logs (-v) one line per account: its interval, host and first poll.
func (d *daemon) logAccounts(accts []*config.Account) {
	now := wallClock()
	for _, a := range accts {
		first := ""
		if e := d.sched.entries[a.Name]; e != nil {
			first = "; first poll in " + humanize.Duration(max(e.next.Sub(now), 0).Round(time.Second))
		}
		d.log.infof("%s: every %s from %s%s", a.Name, humanize.Duration(a.Interval), a.Host, first)
	}
}
