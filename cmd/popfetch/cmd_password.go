package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/internal/prompt"
)

func passwordCommand(env *appEnv) *cli.Command {
	action := func(run func(context.Context, passwordOptions) error) cli.ActionFunc {
		return func(c *cli.Context) error {
			if c.NArg() != 1 {
				return withCode(exitUsage, fmt.Errorf("usage: popfetch password %s ACCOUNT (one account name)", c.Command.Name))
			}
			return run(c.Context, passwordOptions{globalOptions: globalsFrom(c, env), account: c.Args().First(), deliver: c.Bool("deliver")})
		}
	}
	return &cli.Command{
		Name:  "password",
		Usage: "store or remove an account's password in the system keyring",
		Description: "Entries live in the system keyring (Secret Service) under service \"" + config.KeyringService +
			"\", key = account name.\nAn account uses them when its profile has no password, password_command or password_env.",
		Subcommands: []*cli.Command{
			{
				Name:      "set",
				Usage:     "store the password (or OAuth access token) of ACCOUNT: typed without echo on a terminal, or one line read from stdin",
				ArgsUsage: "ACCOUNT",
				Flags:     []cli.Flag{deliverFlag()},
				Action:    action(runPasswordSet),
			},
			{
				Name:      "delete",
				Usage:     "remove the stored password of ACCOUNT",
				ArgsUsage: "ACCOUNT",
				Flags:     []cli.Flag{deliverFlag()},
				Action:    action(runPasswordDelete),
			},
		},
	}
}

type passwordOptions struct {
	*globalOptions
	account string
	deliver bool // --deliver: the destination's password (keyring key ACCOUNT@deliver)
}

var validAccount = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func runPasswordSet(ctx context.Context, opts passwordOptions) error {
	cfg, err := loadConfig(opts.globalOptions)
	if err != nil {
		return err
	}
	a := cfg.Account(opts.account)
	if a == nil {
		return withCode(exitUsage, fmt.Errorf("no account %q in %s (accounts: %s)", opts.account, cfg.Path, strings.Join(cfg.Names(), ", ")))
	}
	if opts.deliver {
		if a, err = deliveryAccount(cfg, a); err != nil {
			return err
		}
	}
	if a.Password.Kind != config.SourceKeyring {
		fmt.Fprintf(opts.stderr, "popfetch: warning: account %q takes its password from %s in %s; the keyring entry is used only without password, password_command and password_env\n",
			a.Name, a.Password, cfg.Path)
	}
	secret, err := readSecret(opts, a)
	if err != nil {
		return err
	}
	if err := config.KeyringSet(ctx, nil, a.Name, secret, a.Password.Timeout); err != nil {
		return keyringErr(err)
	}
	if !opts.quiet {
		fmt.Fprintf(opts.stderr, "popfetch: stored the password of account %q in the system keyring\n", a.Name)
	}
	return nil
}

// runPasswordDelete removes the entry. It does not need the account in the configuration (to clean up
// after removing an account), and a missing entry is only a note: the result is what was asked for.
func runPasswordDelete(ctx context.Context, opts passwordOptions) error {
	if !validAccount.MatchString(opts.account) {
		return withCode(exitUsage, fmt.Errorf("%q is not an account name (letters, digits, '.', '_', '-')", opts.account))
	}
	timeout := config.DefaultKeyringTimeout
	if opts.deliver {
		opts.account += config.DeliverySuffix
	}
	if path, err := configPath(opts.globalOptions); err == nil {
		cfg, _ := config.Load(path) // only for password_timeout: a broken file does not stop a delete
		if cfg == nil {
			cfg = &config.Config{}
		}
		a := cfg.Account(opts.account)
		if owner := cfg.Account(strings.TrimSuffix(opts.account, config.DeliverySuffix)); opts.deliver && owner != nil {
			a = owner.DeliveryAccount()
		}
		if a != nil && a.Password.Timeout > 0 {
			timeout = a.Password.Timeout
		}
	}
	err := config.KeyringDelete(ctx, nil, opts.account, timeout)
	switch {
	case errors.Is(err, config.ErrKeyringNotFound):
		if !opts.quiet {
			fmt.Fprintf(opts.stderr, "popfetch: no password was stored for account %q\n", opts.account)
		}
		return nil
	case err != nil:
		return keyringErr(err)
	}
	if !opts.quiet {
		fmt.Fprintf(opts.stderr, "popfetch: removed the password of account %q from the system keyring\n", opts.account)
	}
	return nil
}

// keyringErr attaches the exit code of a keyring failure: 75 when it did not answer in time, 69 when
// there is none.
func keyringErr(err error) error {
	if code, ok := secretExitCode(err); ok {
		return withCode(code, err)
	}
	return err
}

// readSecret reads the secret without echo from a terminal, or one line from stdin when it is not one.
func readSecret(opts passwordOptions, a *config.Account) (string, error) {
	what := "Password"
	if a.Auth == "xoauth2" || a.Auth == "oauthbearer" {
		what = "Access token"
	}
	return prompt.Secret(opts.stdin, opts.stderr, fmt.Sprintf("%s for %s on %s (account %s)", what, a.User, a.Host, a.Name))
}
