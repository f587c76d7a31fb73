package main

import (
	"context"
	"time"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/internal/humanize"
	"github.com/popfetch/popfetch/internal/report"
	"github.com/popfetch/popfetch/store"
)

// runResult names what a run came to, for the status file and the daemon (its Outcome hook): ok,
// deferred (the server's LOGIN-DELAY was not over), temporary (exit 75), interrupted (130) or failed
// (any other code: a permanent failure). interrupted says a signal asked the run to stop (runSync's
// rule: whatever ended the run then, it was interrupted).
func runResult(res fetch.Result, err error, interrupted bool) (result string, code int) {
	code = exitCode(err)
	if err != nil && interrupted {
		code = exitInterrupted
	}
	switch {
	case err == nil && !res.DeferredUntil.IsZero():
		return store.RunDeferred, code
	case err == nil:
		return store.RunOK, code
	case code == exitInterrupted:
		return store.RunInterrupted, code
	case code == exitTempFail:
		return store.RunTemporary, code
	}
	return store.RunFailed, code
}

// recordRun writes the end of a run of account a into its status file (`popfetch status`). It runs
// under the account's lock, before the account is closed, or, with st nil, after the account could
// not be opened (not for a lock held by another run). A failure to write it does not change the
// run's outcome: it is reported as a warning, or not at all with a nil rep.
func recordRun(ctx context.Context, rep *report.Reporter, dir string, a *config.Account, keep bool, start time.Time,
	res fetch.Result, err error, st *store.State) {
	result, code := runResult(res, err, ctx.Err() != nil)
	r := store.Run{Start: start, End: time.Now(), Result: result, ExitCode: code, Fetched: res.Retrieved,
		Bytes: res.Bytes, Deleted: res.Deleted, KeptOnServer: -1}
	if err != nil {
		r.Error = humanize.OneLine(err)
	}
	if st != nil {
		r.LoginDelayUntil = st.LoginDelayUntil()
		if keep {
			r.KeptOnServer = st.Len()
		}
	}
	if werr := store.RecordRun(dir, a.Name, r); werr != nil && rep != nil {
		rep.Printf("popfetch: %s: warning: the run's status was not recorded (popfetch status): %v", a.Name, humanize.OneLine(werr))
	}
}
