package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/internal/report"
	"github.com/popfetch/popfetch/internal/shard"
	"github.com/popfetch/popfetch/store"
)

// syncOptions are the flags of `popfetch sync` (and, in part, `popfetch check`).
type syncOptions struct {
	*globalOptions
	accountRun // how each account is synced
	accounts   []string
	jobs       int
	check      bool // `popfetch check`: count new messages only
	shard      string
}

// accountFlags are the flags of sync and check that say how accounts are run. A new set each call:
// urfave/cli writes into a flag what it parsed (an environment variable's value becomes the flag's
// default), so a set shared by commands or by two runs in one process would leak between them.
func accountFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, EnvVars: []string{"POPFETCH_JOBS"},
			Usage: "sync up to `N` accounts at once (and at most each host's max_connections)"},
		&cli.BoolFlag{Name: "wait", Usage: "wait for a run holding an account's lock instead of exiting 75"},
	}
}

func syncCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:      "sync",
		Usage:     "fetch new mail from all accounts, or the ones named",
		ArgsUsage: "[ACCOUNT...]",
		Description: "Retrieves new messages, delivers them durably, and then deletes them on the server\n" +
			"(or, with keep, remembers them). Silent on success when stderr is not a terminal, unless -v.",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "keep", Usage: "leave messages on the server this run"},
			&cli.BoolFlag{Name: "no-keep", Usage: "delete retrieved messages on the server this run"},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "also retrieve messages retrieved before (fetch_all)"},
			&cli.BoolFlag{Name: "delete-imported", Usage: "delete, as if popfetch had delivered them, messages known only from a state import (profile key delete_imported)"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "plan and print what would be done; change nothing"},
			&cli.BoolFlag{Name: "stdout", Usage: "write messages to stdout as an mboxrd stream instead of the profile's destination"},
			shardFlag(),
		}, accountFlags()...),
		Action: func(c *cli.Context) error {
			o := syncOptions{globalOptions: globalsFrom(c, env), accounts: c.Args().Slice(), jobs: c.Int("jobs"), shard: c.String("shard"),
				accountRun: accountRun{all: c.Bool("all"), dryRun: c.Bool("dry-run"), toStdout: c.Bool("stdout"),
					wait: c.Bool("wait"), deleteImported: c.Bool("delete-imported")}}
			if c.Bool("keep") && c.Bool("no-keep") {
				return withCode(exitUsage, fmt.Errorf("--keep and --no-keep exclude each other"))
			}
			if c.IsSet("keep") || c.IsSet("no-keep") {
				k := c.Bool("keep")
				o.keep = &k
			}
			if o.toStdout && o.json {
				return withCode(exitUsage, fmt.Errorf("--stdout and --json both want stdout: choose one"))
			}
			return runSync(c.Context, o)
		},
	}
}

func checkCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "count new messages without retrieving them: exit 0 if there are any, 1 if none",
		ArgsUsage: "[ACCOUNT...]",
		Flags:     append([]cli.Flag{shardFlag()}, accountFlags()...),
		Action: func(c *cli.Context) error {
			return runSync(c.Context, syncOptions{globalOptions: globalsFrom(c, env), accounts: c.Args().Slice(),
				jobs: c.Int("jobs"), accountRun: accountRun{wait: c.Bool("wait"), dryRun: true}, check: true, shard: c.String("shard")})
		},
	}
}

// selectAccounts returns the named accounts (all when none are named); an unknown name is a usage
// error that lists the valid ones.
func selectAccounts(cfg *config.Config, names []string) ([]*config.Account, error) {
	if len(names) == 0 {
		return cfg.Accounts, nil
	}
	var out []*config.Account
	seen := map[string]bool{}
	for _, n := range names {
		a := cfg.Account(n)
		if a == nil {
			return nil, withCode(exitUsage, fmt.Errorf("no account %q in %s (accounts: %s)", n, cfg.Path,
				strings.Join(cfg.Names(), ", ")))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, a)
		}
	}
	return out, nil
}

func runSync(ctx context.Context, o syncOptions) error {
	sh, err := shard.Parse(o.shard)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(o.globalOptions)
	if err != nil {
		return err
	}
	accts, err := selectAccounts(cfg, o.accounts)
	if err != nil {
		return err
	}
	if accts, err = sh.Select(accts, len(o.accounts) > 0); err != nil {
		return err
	}
	jobs := o.jobs
	if jobs < 1 {
		return withCode(exitUsage, fmt.Errorf("--jobs must be at least 1"))
	}
	if o.toStdout {
		jobs = 1 // one stream: accounts one after the other
	}
	rep := newReporter(o.globalOptions)
	codes := make([]int, len(accts))
	results := make([]fetch.Result, len(accts))
	sem := make(chan struct{}, jobs)
	hosts := hostSemaphores(accts) // max_connections
	var wg sync.WaitGroup
	for i, a := range accts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := hosts[config.HostKey(a)]
			host <- struct{}{}
			defer func() { <-host }()
			sem <- struct{}{}
			defer func() { <-sem }()
			start := time.Now()
			res, err := syncAccount(ctx, o.abort, o.globalOptions, cfg, a, o.accountRun, rep)
			res.Account = a.Name
			code := exitCode(err)
			if err != nil && ctx.Err() != nil {
				// A signal asked the run to stop: whatever ended it then (a stalled server timing out,
				// say), the run was interrupted (130, ARCHITECTURE.md §5); the message says what happened.
				code = exitInterrupted
			}
			codes[i], results[i] = code, res
			if o.check {
				rep.Check(res, err, time.Since(start), code)
			} else {
				rep.Done(res, err, time.Since(start), code)
			}
		}()
	}
	wg.Wait()
	rep.Wait()
	if o.dryRun && !o.check {
		for _, res := range results {
			report.Plan(o.stdout, res)
		}
	}
	code := combineCodes(codes)
	if o.check && code == exitOK {
		for _, res := range results {
			if res.Plan != nil && len(res.Plan.Retrieve) > 0 {
				return nil
			}
		}
		return exitStatus(exitNoMail)
	}
	return exitStatus(code)
}

// accountRun says how one account is synced beyond its profile: the command line's overrides and the
// run's mode. The zero value syncs as the profile says (a daemon's poll).
type accountRun struct {
	keep           *bool // --keep / --no-keep: override the profile for this run
	all            bool  // --all: fetch_all
	deleteImported bool  // --delete-imported: delete_imported
	dryRun         bool  // plan only: no destination, nothing settled, nothing changed
	toStdout       bool  // --stdout instead of the profile's destination
	wait           bool  // --wait for a run holding the account's lock
}

// syncAccount runs one account: store.OpenAccount (lock, state, destination, recovery), then the
// engine. ctx asks the engine to stop after the batch it is on; abort (a second signal) abandons the
// connection at once.
func syncAccount(ctx, abort context.Context, g *globalOptions, cfg *config.Config, a *config.Account, r accountRun, rep *report.Reporter) (res fetch.Result, err error) {
	if ctx.Err() != nil {
		return fetch.Result{}, fetch.ErrInterrupted
	}
	acct := fetchAccount(g, a)
	if r.keep != nil {
		acct.Policy.Keep = *r.keep
	}
	if r.all {
		acct.Policy.FetchAll = true
	}
	if r.deleteImported {
		acct.Policy.DeleteImported = true
	}
	opts := store.AccountOptions{Wait: r.wait}
	if !r.dryRun {
		// Settle what a crash left pending (ARCHITECTURE.md §2 step 2) before anything else.
		opts.Destination = func() (store.Destination, error) {
			if r.toStdout {
				return store.NewStdout(g.stdout, store.StdoutOptions{}), nil
			}
			return openDestination(a)
		}
	}
	start := time.Now()
	acc, err := store.OpenAccount(ctx, cfg.StateDir, a.Name, opts)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			err = fetch.ErrInterrupted // a signal while waiting for the lock
		}
		if !r.dryRun && !errors.Is(err, store.ErrLocked) && !errors.Is(err, fetch.ErrInterrupted) {
			// A state or destination that cannot be opened is a failed run for `popfetch status`
			// (recorded if the state directory allows it: the error line already says what failed).
			recordRun(ctx, nil, cfg.StateDir, a, acct.Policy.Keep, start, fetch.Result{}, err, nil)
		}
		return fetch.Result{}, err
	}
	defer acc.Close()
	if !r.dryRun { // `popfetch status` (status_record.go): under the lock, before acc.Close
		defer func() { recordRun(ctx, rep, cfg.StateDir, a, acct.Policy.Keep, start, res, err, acc.State) }()
	}

	var dest fetch.Destination
	if acc.Dest != nil {
		if g.verbose && len(acc.Delivered)+len(acc.Discarded) > 0 {
			rep.Printf("%s: recovered from an interrupted run: %d message(s) were delivered, %d will be fetched again",
				a.Name, len(acc.Delivered), len(acc.Discarded))
		}
		dest = destination{d: acc.Dest, acct: a}
	}
	prog := rep.Account(a.Name)
	res, err = fetch.Sync(abort, acct, dest, state{acc.State}, fetch.Options{DryRun: r.dryRun, Progress: prog, Stop: ctx.Done()})
	prog.Finish(err == nil)
	return res, err
}

// newReporter returns the reporter of a sync-like command run with the global options g.
func newReporter(g *globalOptions) *report.Reporter {
	return report.New(report.Options{Stderr: g.stderr, Term: g.stderrTerm, TTY: g.stderrTTY, Quiet: g.quiet,
		Verbose: g.verbose, JSON: g.json, Stdout: g.stdout})
}
