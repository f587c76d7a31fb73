package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
)

func oauth2Command(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:  "oauth2",
		Usage: "authorize popfetch at an account's OAuth2 provider (Gmail, Microsoft 365)",
		Description: "For accounts with an oauth2: profile. The refresh token goes into the system keyring (service \"" +
			config.KeyringService + "\",\nkey \"ACCOUNT:oauth2-refresh\"), or, without a usable keyring, into STATE_DIR/ACCOUNT.oauth2 (mode 0600).\n" +
			"popfetch then refreshes the access token by itself at each sync.",
		Subcommands: []*cli.Command{{
			Name:      "login",
			Usage:     "log in in a browser (authorization code with PKCE, redirect to 127.0.0.1) and store the refresh token",
			ArgsUsage: "ACCOUNT",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "device", Usage: "use the device-code flow: open a URL and enter a code on any device (for machines without a browser)"},
				&cli.DurationFlag{Name: "timeout", Value: config.DefaultOAuth2LoginTimeout, Usage: "how long to wait for the sign-in"},
				deliverFlag(),
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return withCode(exitUsage, fmt.Errorf("usage: popfetch oauth2 login [--device] [--deliver] ACCOUNT (one account name)"))
				}
				return runOAuth2Login(c.Context, oauth2Options{globalOptions: globalsFrom(c, env), account: c.Args().First(),
					device: c.Bool("device"), timeout: c.Duration("timeout"), deliver: c.Bool("deliver")})
			},
		}},
	}
}

type oauth2Options struct {
	*globalOptions
	account string
	device  bool
	timeout time.Duration
	deliver bool // --deliver: log in the destination's account (ACCOUNT@deliver)
}

func runOAuth2Login(ctx context.Context, o oauth2Options) (err error) {
	cfg, a, err := oneAccount(o.globalOptions, o.account)
	if err != nil {
		return err
	}
	defer func() { err = forAccount(a.Name, err) }()
	if o.deliver {
		if a, err = deliveryAccount(cfg, a); err != nil {
			return err
		}
	}
	if a.OAuth2 == nil {
		return withCode(exitConfig, fmt.Errorf("account %q has no oauth2: profile in %s; add e.g. oauth2: {provider: google, client_id: …} (see the README's OAuth2 section)",
			a.Name, cfg.Path))
	}
	stored, err := a.OAuth2Login(ctx, &config.OAuth2LoginOptions{Device: o.device, Stderr: o.stderr, Timeout: o.timeout})
	if err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintf(o.stderr, "popfetch: logged in: account %q can sync now; its refresh token is in %s\n", a.Name, stored)
	}
	return nil
}
