package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/store"
)

type stateImportOptions struct {
	*globalOptions
	from, file, account string
}

func stateCommand(stdin io.Reader) *cli.Command {
	return &cli.Command{
		Name:  "state",
		Usage: "manage what popfetch remembers about each account",
		Subcommands: []*cli.Command{{
			Name:      "import",
			Usage:     "import another fetcher's list of retrieved messages, so that switching fetches nothing twice",
			ArgsUsage: "FILE ACCOUNT",
			Description: "FILE is fetchmail's .fetchids, mpop's UIDLs file (~/.mpop_uidls/...) or a getmail6 oldmail-* file;\n" +
				"the entries for the account's user and host are imported.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "from", Required: true, Usage: "the other fetcher: fetchmail, mpop or getmail"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 2 {
					return withCode(exitUsage, fmt.Errorf("state import takes FILE and ACCOUNT"))
				}
				return runStateImport(c.Context, stateImportOptions{globalOptions: globalsFrom(c, stdin),
					from: c.String("from"), file: c.Args().Get(0), account: c.Args().Get(1)})
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
	lock, err := store.Lock(cfg.StateDir, a.Name, false)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	st, err := store.OpenState(cfg.StateDir, a.Name)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := store.ImportFile(st, o.from, o.file, store.ImportOptions{User: a.User, Host: a.Host}, time.Now())
	if err != nil {
		var fe *store.ImportFormatError
		if errors.As(err, &fe) {
			return withCode(exitDataErr, err)
		}
		return err
	}
	if !o.quiet {
		fmt.Fprintf(o.stderr, "%s: imported %d UIDL(s) from %s; %d known in all\n", a.Name, n, o.file, st.Len())
	}
	return nil
}
