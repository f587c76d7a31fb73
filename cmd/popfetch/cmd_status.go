package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/internal/humanize"
	"github.com/popfetch/popfetch/internal/termsafe"
	"github.com/popfetch/popfetch/store"
)

// statusOptions are the flags of `popfetch status`.
type statusOptions struct {
	*globalOptions
	accounts []string
	check    bool
	maxAge   time.Duration // 0: per account, 3 × its interval, at least an hour
	now      time.Time
}

// statusMinMaxAge is the least default --max-age.
const statusMinMaxAge = time.Hour

func statusCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show each account's last runs, and with --check whether they are healthy",
		ArgsUsage: "[ACCOUNT...]",
		Description: "Reads what each run records in the state directory (<account>.status) and, when a daemon runs,\n" +
			"its timetable (@daemon.status): last attempt and its result, last success, consecutive failures,\n" +
			"next poll, messages fetched (in the last 24 hours, to within 10 minutes, and in total), messages\n" +
			"kept on the server (keep mode), the server's LOGIN-DELAY. A table, or JSON with --json.\n\n" +
			"--check prints one line per account and exits 1 when an account is unhealthy: it never synced,\n" +
			"its last success is older than --max-age (default: three times its interval, at least 1h), or\n" +
			"its last run failed permanently (password refused, TLS, configuration: any exit code but 0, 75\n" +
			"and 130). Temporary failures (exit 75) are tolerated until --max-age. For Docker HEALTHCHECK,\n" +
			"systemd and Nagios-style checks.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "check", Usage: "exit 1 unless every account synced within --max-age and its last run did not fail permanently"},
			&cli.DurationFlag{Name: "max-age", Usage: "with --check: the oldest acceptable last success (`DURATION`, e.g. 30m; default 3 × interval, at least 1h)"},
		},
		Action: func(c *cli.Context) error {
			o := statusOptions{globalOptions: globalsFrom(c, env), accounts: c.Args().Slice(), check: c.Bool("check"),
				maxAge: c.Duration("max-age"), now: time.Now()}
			if c.IsSet("max-age") && o.maxAge <= 0 {
				return withCode(exitUsage, fmt.Errorf("--max-age must be positive"))
			}
			if c.IsSet("max-age") && !o.check {
				return withCode(exitUsage, fmt.Errorf("--max-age goes with --check"))
			}
			return runStatus(c.Context, o)
		},
	}
}

// accountStatusView is one account in `popfetch status --json`.
type accountStatusView struct {
	Account             string    `json:"account"`
	LastAttempt         time.Time `json:"last_attempt,omitzero"`
	LastResult          string    `json:"last_result"` // "never" if it never ran
	LastExitCode        *int      `json:"last_exit_code,omitempty"`
	LastError           string    `json:"last_error,omitempty"`
	LastDurationMS      int64     `json:"last_duration_ms,omitempty"`
	LastFetched         int       `json:"last_fetched"`
	LastSuccess         time.Time `json:"last_success,omitzero"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	Polling             bool      `json:"polling,omitempty"`          // the daemon is polling it now
	NextPoll            time.Time `json:"next_poll,omitzero"`         // the daemon's next poll
	Fetched24h          int       `json:"fetched_24h"`                // to within 10 minutes
	FetchedTotal        int64     `json:"fetched_total"`              // since the status file was created
	BytesTotal          int64     `json:"bytes_total"`                // of those
	KeptOnServer        *int      `json:"kept_on_server,omitempty"`   // keep mode
	LoginDelayUntil     time.Time `json:"login_delay_until,omitzero"` // only while in the future
	StatusError         string    `json:"status_error,omitempty"`     // the status file is unreadable
	Healthy             *bool     `json:"healthy,omitempty"`          // --check
	Problem             string    `json:"problem,omitempty"`          // --check: why not healthy
	MaxAgeSeconds       float64   `json:"max_age_seconds,omitempty"`  // --check
}

// daemonView is the daemon in `popfetch status --json`.
type daemonView struct {
	Running bool      `json:"running"`
	PID     int       `json:"pid,omitempty"`
	Started time.Time `json:"started,omitzero"`
}

type statusView struct {
	Daemon   daemonView          `json:"daemon"`
	Accounts []accountStatusView `json:"accounts"`
	Healthy  *bool               `json:"healthy,omitempty"` // --check
}

func runStatus(_ context.Context, o statusOptions) error {
	cfg, err := loadConfig(o.globalOptions)
	if err != nil {
		return err
	}
	accts, err := selectAccounts(cfg, o.accounts)
	if err != nil {
		return err
	}
	v := statusView{}
	ds, _ := store.ReadDaemonStatus(cfg.StateDir) // unreadable: as if no daemon ran
	if ds != nil && processAlive(ds.PID) {
		v.Daemon = daemonView{Running: true, PID: ds.PID, Started: ds.Started}
	} else {
		ds = nil
	}
	healthy := true
	for _, a := range accts {
		av := statusOfAccount(o, cfg, a, ds)
		if o.check {
			ok := av.Problem == ""
			av.Healthy = &ok
			healthy = healthy && ok
		}
		v.Accounts = append(v.Accounts, av)
	}
	if o.check {
		v.Healthy = &healthy
	}
	switch {
	case o.json:
		if err := writeJSON(o.stdout, v); err != nil {
			return err
		}
	case o.check:
		printCheck(o.stdout, o.now, v)
	default:
		printStatus(o.stdout, o.now, v)
	}
	if !healthy {
		return exitStatus(exitUnhealthy)
	}
	return nil
}

// exitUnhealthy is `popfetch status --check`'s "an account is unhealthy": 1, as Docker's HEALTHCHECK
// wants (and Nagios reads as WARNING; other codes are errors of the check itself).
const exitUnhealthy = exitNoMail

func statusOfAccount(o statusOptions, cfg *config.Config, a *config.Account, ds *store.DaemonStatus) accountStatusView {
	av := accountStatusView{Account: a.Name, LastResult: "never"}
	st, err := store.ReadStatus(cfg.StateDir, a.Name)
	if err != nil {
		av.StatusError = humanize.OneLine(err)
	}
	if st != nil {
		code := st.LastExitCode
		av.LastAttempt, av.LastResult, av.LastExitCode, av.LastError = st.LastAttempt, st.LastResult, &code, st.LastError
		av.LastDurationMS, av.LastFetched, av.LastSuccess = st.LastDurationMS, st.LastFetched, st.LastSuccess
		av.ConsecutiveFailures, av.FetchedTotal, av.BytesTotal = st.ConsecutiveFailures, st.FetchedTotal, st.BytesTotal
		av.Fetched24h = st.Fetched24h(o.now)
		if a.Keep {
			av.KeptOnServer = st.KeptOnServer
		}
		if st.LoginDelayUntil.After(o.now) {
			av.LoginDelayUntil = st.LoginDelayUntil
		}
	}
	if ds != nil {
		if d, ok := ds.Accounts[a.Name]; ok {
			av.Polling, av.NextPoll = d.Polling, d.NextPoll
		}
	}
	if !o.check {
		return av
	}
	maxAge := o.maxAge
	if maxAge == 0 {
		maxAge = max(3*a.Interval, statusMinMaxAge)
	}
	av.MaxAgeSeconds = maxAge.Seconds()
	switch {
	case av.StatusError != "":
		av.Problem = av.StatusError
	case st == nil:
		av.Problem = "never synced"
	case st.LastResult == store.RunFailed:
		av.Problem = fmt.Sprintf("the last run (%s ago) failed with exit %d: %s", ago(o.now, st.LastAttempt), st.LastExitCode, st.LastError)
	case st.LastSuccess.IsZero():
		av.Problem = fmt.Sprintf("never synced successfully; the last run (%s ago) was %s", ago(o.now, st.LastAttempt), lastRun(st.LastResult, st.LastExitCode, st.LastError))
	case o.now.Sub(st.LastSuccess) > maxAge:
		av.Problem = fmt.Sprintf("last success %s ago, longer than %s; the last run (%s ago) was %s", ago(o.now, st.LastSuccess),
			humanize.Duration(maxAge), ago(o.now, st.LastAttempt), lastRun(st.LastResult, st.LastExitCode, st.LastError))
	}
	return av
}

// lastRun says what a run came to: "ok", "temporary (exit 75): …".
func lastRun(result string, code int, errText string) string {
	if errText == "" {
		return result
	}
	return fmt.Sprintf("%s (exit %d): %s", result, code, errText)
}

// ago formats now-t for people: "40s", "12m", "3h5m".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		d = d.Round(time.Second)
	default:
		d = d.Round(time.Minute)
	}
	return humanize.Duration(max(d, 0))
}

func printCheck(w io.Writer, now time.Time, v statusView) {
	for _, a := range v.Accounts {
		if a.Problem != "" {
			fmt.Fprintf(w, "%s: UNHEALTHY: %s\n", a.Account, termsafe.String(a.Problem))
			continue
		}
		fmt.Fprintf(w, "%s: OK: last success %s ago (max age %s)\n", a.Account, ago(now, a.LastSuccess),
			humanize.Duration(time.Duration(a.MaxAgeSeconds*float64(time.Second))))
	}
}

func printStatus(w io.Writer, now time.Time, v statusView) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tLAST RUN\tLAST SUCCESS\tFAILURES\tNEXT POLL\tFETCHED 24H\tTOTAL\tKEPT\tLOGIN-DELAY")
	var notes []string
	for _, a := range v.Accounts {
		last := "never"
		if !a.LastAttempt.IsZero() {
			last = a.LastResult
			if a.LastExitCode != nil && *a.LastExitCode != 0 {
				last += fmt.Sprintf(" (%d)", *a.LastExitCode)
			}
			last += ", " + ago(now, a.LastAttempt) + " ago"
		}
		success := "never"
		if !a.LastSuccess.IsZero() {
			success = ago(now, a.LastSuccess) + " ago"
		}
		next := "-"
		switch {
		case a.Polling:
			next = "polling now"
		case !a.NextPoll.IsZero() && a.NextPoll.After(now):
			next = "in " + humanize.Duration(a.NextPoll.Sub(now).Round(time.Second))
		case !a.NextPoll.IsZero():
			next = "due"
		}
		kept := "-"
		if a.KeptOnServer != nil {
			kept = fmt.Sprint(*a.KeptOnServer)
		}
		delay := "-"
		if !a.LoginDelayUntil.IsZero() {
			delay = "until " + a.LoginDelayUntil.Local().Format("15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\n", a.Account, last, success, a.ConsecutiveFailures, next,
			a.Fetched24h, a.FetchedTotal, kept, delay)
		if a.LastError != "" {
			notes = append(notes, fmt.Sprintf("%s: last error: %s", a.Account, termsafe.String(a.LastError)))
		}
		if a.StatusError != "" {
			notes = append(notes, fmt.Sprintf("%s: %s", a.Account, termsafe.String(a.StatusError)))
		}
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	if v.Daemon.Running {
		fmt.Fprintf(w, "daemon: running (pid %d) since %s\n", v.Daemon.PID, v.Daemon.Started.Local().Format(time.DateTime))
	} else {
		fmt.Fprintln(w, "daemon: not running")
	}
}
