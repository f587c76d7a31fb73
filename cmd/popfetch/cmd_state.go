package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/store"
)

type stateImportOptions struct {
	*globalOptions
	from, file, account string
	force               bool // import a file that names another account
}

func stateCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:  "state",
		Usage: "manage what popfetch remembers about each account",
		Subcommands: []*cli.Command{{
			Name:      "import",
			Usage:     "import another fetcher's list of retrieved messages, so that switching fetches nothing twice",
			ArgsUsage: "FILE ACCOUNT",
			Description: "FILE is fetchmail's .fetchids, mpop's UIDLs file (~/.mpop_uidls/...) or a getmail6 oldmail-* file;\n" +
				"the entries for the account's user and host are imported. A file that belongs to another account\n" +
				"(fetchmail and mpop name user and host in it, getmail in the file name) is refused with exit 65\n" +
				"unless --force. Imported messages are not fetched again; in delete mode they are left on the\n" +
				"server, as popfetch never had them, unless sync --delete-imported or the profile's delete_imported.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "from", Required: true, Usage: "the other fetcher: fetchmail, mpop or getmail"},
				&cli.BoolFlag{Name: "force", Usage: "import a file that says it belongs to another user or host"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 2 {
					return withCode(exitUsage, fmt.Errorf("state import takes FILE and ACCOUNT"))
				}
				return runStateImport(c.Context, stateImportOptions{globalOptions: globalsFrom(c, env),
					from: c.String("from"), file: c.Args().Get(0), account: c.Args().Get(1), force: c.Bool("force")})
			},
		}},
	}
}

func runStateImport(ctx context.Context, o stateImportOptions) error {
	switch o.from {
	case "fetchmail", "mpop", "getmail":
	default:
		return withCode(exitUsage, fmt.Errorf("--from must be fetchmail, mpop or getmail, not %q", o.from))
	}
	cfg, a, err := oneAccount(o.globalOptions, o.account)
	if err != nil {
		return err
	}
	// Read the file before taking the lock: a FIFO nobody writes must not hold the account's lock,
	// and a signal ends the wait.
	opts := store.ImportOptions{User: a.User, Host: a.Host, Force: o.force}
	ids, err := interruptible(ctx, o.file, func() ([]store.ImportedUID, error) {
		return store.ReadImport(o.from, o.file, opts)
	})
	if err != nil {
		var (
			fe *store.ImportFormatError
			ae *store.ImportAccountError
		)
		if errors.As(err, &fe) || errors.As(err, &ae) {
			return withCode(exitDataErr, err)
		}
		return err
	}
	acc, err := store.OpenAccount(ctx, cfg.StateDir, a.Name, store.AccountOptions{})
	if err != nil {
		return err
	}
	defer acc.Close()
	st := acc.State
	n, err := st.Import(ids, time.Now())
	if err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintf(o.stderr, "%s: imported %d UIDL(s) from %s; %d known in all\n", a.Name, n, o.file, st.Len())
	}
	return nil
}
