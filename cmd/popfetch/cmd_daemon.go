package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/internal/daemon"
	"github.com/popfetch/popfetch/internal/shard"
)

// daemonOptions are the flags of `popfetch daemon`.
type daemonOptions struct {
	*globalOptions
	jobs   int // 0: as many as the open-file limit allows
	syslog bool
	shard  shard.Shard

	metrics            string // --metrics ADDR (internal/daemon/metrics.go)
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
			sh, err := shard.Parse(c.String("shard"))
			if err != nil {
				return err
			}
			return runDaemon(c.Context, daemonOptions{globalOptions: globalsFrom(c, env), jobs: c.Int("jobs"),
				syslog: c.Bool("syslog"), shard: sh, metrics: c.String("metrics"), metricsAllowRemote: c.Bool("metrics-allow-remote")})
		},
	}
}

// runDaemon checks the daemon's flags and runs internal/daemon with popfetch's configuration, its
// sync of one account and its meaning of errors (runResult, resourceExhausted).
func runDaemon(ctx context.Context, o daemonOptions) error {
	if o.jobs < 0 {
		return withCode(exitUsage, fmt.Errorf("--jobs must be 0 (as many as the open-file limit allows) or more"))
	}
	if o.json {
		return withCode(exitUsage, fmt.Errorf("the daemon writes a log, not JSON: drop --json"))
	}
	if o.metrics != "" {
		if err := daemon.CheckMetricsAddr(o.metrics, o.metricsAllowRemote); err != nil {
			return withCode(exitUsage, err)
		}
	}
	err := daemon.Run(ctx, daemon.Options{
		Stderr: o.stderr, Syslog: o.syslog, Quiet: o.quiet, Verbose: o.verbose,
		Jobs: o.jobs, Shard: o.shard, Metrics: o.metrics, Abort: o.abort,
		Load: func() (*config.Config, error) { return loadConfig(o.globalOptions) },
		Reload: func(path string) (*config.Config, error) {
			// A FIFO nobody writes would hold up the daemon: the first SIGTERM ends the wait.
			return interruptible(o.interrupt, path, func() (*config.Config, error) { return config.Load(path) })
		},
		Poll: func(ctx context.Context, log io.Writer, cfg *config.Config, a *config.Account) (fetch.Result, error) {
			// What the poll sees: stderr is the log, no terminal, no JSON, no prompt.
			g := *o.globalOptions
			g.stderr, g.stderrTTY, g.stderrTerm, g.json = log, false, nil, false
			g.stdin = strings.NewReader("")
			return syncAccount(ctx, g.abort, &g, cfg, a, accountRun{}, newReporter(&g))
		},
		Outcome:   func(res fetch.Result, err error) (string, int) { return runResult(res, err, false) },
		Exhausted: resourceExhausted,
	})
	if errors.Is(err, daemon.ErrAborted) {
		return exitStatus(exitCode(err)) // the log has said that the daemon stopped
	}
	return err
}
