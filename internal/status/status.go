// Package status builds what `popfetch status` shows from what runs and the daemon record in the
// state directory (store.ReadStatus, store.ReadDaemonStatus), judges each account's health for
// --check, and prints it.
package status

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/internal/humanize"
	"github.com/popfetch/popfetch/internal/termsafe"
	"github.com/popfetch/popfetch/store"
)

// MinMaxAge is the least default --max-age.
const MinMaxAge = time.Hour

// Query says which accounts to show, and whether and how to judge their health.
type Query struct {
	StateDir string
	Accounts []*config.Account
	Check    bool          // judge each account's health (Account.Healthy, Problem; View.Healthy)
	MaxAge   time.Duration // with Check: the oldest acceptable last success; 0: per account, 3 × its interval, at least MinMaxAge
	Now      time.Time
}

// Build reads the accounts' status files and the daemon's timetable. A daemon status file whose
// process is gone (a daemon killed with SIGKILL) counts as no daemon.
func Build(q Query) View {
	v := View{}
	ds, _ := store.ReadDaemonStatus(q.StateDir) // unreadable: as if no daemon ran
	if ds != nil && processAlive(ds.PID) {
		v.Daemon = Daemon{Running: true, PID: ds.PID, Started: ds.Started}
	} else {
		ds = nil
	}
	healthy := true
	for _, a := range q.Accounts {
		av := ofAccount(q, a, ds)
		if q.Check {
			ok := av.Problem == ""
			av.Healthy = &ok
			healthy = healthy && ok
		}
		v.Accounts = append(v.Accounts, av)
	}
	if q.Check {
		v.Healthy = &healthy
	}
	return v
}

// Account is one account in `popfetch status --json`.
type Account struct {
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

// Daemon is the daemon in `popfetch status --json`.
type Daemon struct {
	Running bool      `json:"running"`
	PID     int       `json:"pid,omitempty"`
	Started time.Time `json:"started,omitzero"`
}

// View is what `popfetch status` shows, and its --json output.
type View struct {
	Daemon   Daemon    `json:"daemon"`
	Accounts []Account `json:"accounts"`
	Healthy  *bool     `json:"healthy,omitempty"` // --check
}

func ofAccount(q Query, a *config.Account, ds *store.DaemonStatus) Account {
	av := Account{Account: a.Name, LastResult: "never"}
	st, err := store.ReadStatus(q.StateDir, a.Name)
	if err != nil {
		av.StatusError = humanize.OneLine(err)
	}
	if st != nil {
		code := st.LastExitCode
		av.LastAttempt, av.LastResult, av.LastExitCode, av.LastError = st.LastAttempt, st.LastResult, &code, st.LastError
		av.LastDurationMS, av.LastFetched, av.LastSuccess = st.LastDurationMS, st.LastFetched, st.LastSuccess
		av.ConsecutiveFailures, av.FetchedTotal, av.BytesTotal = st.ConsecutiveFailures, st.FetchedTotal, st.BytesTotal
		av.Fetched24h = st.Fetched24h(q.Now)
		if a.Keep {
			av.KeptOnServer = st.KeptOnServer
		}
		if st.LoginDelayUntil.After(q.Now) {
			av.LoginDelayUntil = st.LoginDelayUntil
		}
	}
	if ds != nil {
		if d, ok := ds.Accounts[a.Name]; ok {
			av.Polling, av.NextPoll = d.Polling, d.NextPoll
		}
	}
	if !q.Check {
		return av
	}
	maxAge := q.MaxAge
	if maxAge == 0 {
		maxAge = max(3*a.Interval, MinMaxAge)
	}
	av.MaxAgeSeconds = maxAge.Seconds()
	switch {
	case av.StatusError != "":
		av.Problem = av.StatusError
	case st == nil:
		av.Problem = "never synced"
	case st.LastResult == store.RunFailed:
		av.Problem = fmt.Sprintf("the last run (%s ago) failed with exit %d: %s", ago(q.Now, st.LastAttempt), st.LastExitCode, st.LastError)
	case st.LastSuccess.IsZero():
		av.Problem = fmt.Sprintf("never synced successfully; the last run (%s ago) was %s", ago(q.Now, st.LastAttempt), lastRun(st.LastResult, st.LastExitCode, st.LastError))
	case q.Now.Sub(st.LastSuccess) > maxAge:
		av.Problem = fmt.Sprintf("last success %s ago, longer than %s; the last run (%s ago) was %s", ago(q.Now, st.LastSuccess),
			humanize.Duration(maxAge), ago(q.Now, st.LastAttempt), lastRun(st.LastResult, st.LastExitCode, st.LastError))
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

// PrintCheck prints --check's one line per account.
func PrintCheck(w io.Writer, now time.Time, v View) {
	for _, a := range v.Accounts {
		if a.Problem != "" {
			fmt.Fprintf(w, "%s: UNHEALTHY: %s\n", a.Account, termsafe.String(a.Problem))
			continue
		}
		fmt.Fprintf(w, "%s: OK: last success %s ago (max age %s)\n", a.Account, ago(now, a.LastSuccess),
			humanize.Duration(time.Duration(a.MaxAgeSeconds*float64(time.Second))))
	}
}

// PrintTable prints the table of `popfetch status`.
func PrintTable(w io.Writer, now time.Time, v View) {
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
