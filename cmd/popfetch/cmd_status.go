package main

import (
	"context"
	"fmt"
	"time"

	"github.com/popfetch/popfetch/internal/status"
	"github.com/urfave/cli/v2"
)

// statusOptions are the flags of `popfetch status`.
type statusOptions struct {
	*globalOptions
	accounts []string
	check    bool
	maxAge   time.Duration // 0: per account, 3 × its interval, at least an hour
	now      time.Time
}

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

func runStatus(_ context.Context, o statusOptions) error {
	cfg, err := loadConfig(o.globalOptions)
	if err != nil {
		return err
	}
	accts, err := selectAccounts(cfg, o.accounts)
	if err != nil {
		return err
	}
	v := status.Build(status.Query{StateDir: cfg.StateDir, Accounts: accts, Check: o.check, MaxAge: o.maxAge, Now: o.now})
	switch {
	case o.json:
		if err := writeJSON(o.stdout, v); err != nil {
			return err
		}
	case o.check:
		status.PrintCheck(o.stdout, o.now, v)
	default:
		status.PrintTable(o.stdout, o.now, v)
	}
	if v.Healthy != nil && !*v.Healthy {
		return exitStatus(exitUnhealthy)
	}
	return nil
}

// exitUnhealthy is `popfetch status --check`'s "an account is unhealthy": 1, as Docker's HEALTHCHECK
// wants (and Nagios reads as WARNING; other codes are errors of the check itself).
const exitUnhealthy = exitNoMail
