package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
)

func configCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "check the configuration file or show where it is",
		Subcommands: []*cli.Command{
			{
				Name:  "check",
				Usage: "validate the configuration and print every account with its defaults applied (secrets shown as their source only)",
				Description: "Exit status 78 when the file is missing or has errors; every error is reported, one per line,\n" +
					"as FILE:LINE:COL: account \"NAME\": key \"KEY\": problem.",
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return withCode(exitUsage, fmt.Errorf("config check takes no arguments"))
					}
					return runConfigCheck(c.Context, configCheckOptions{globalOptions: globalsFrom(c, env)})
				},
			},
			{
				Name:  "path",
				Usage: "print the path of the configuration file popfetch reads (--config, POPFETCH_CONFIG or the default)",
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return withCode(exitUsage, fmt.Errorf("config path takes no arguments"))
					}
					return runConfigPath(c.Context, globalsFrom(c, env))
				},
			},
		},
	}
}

// configPath is the configuration file to read: --config (or POPFETCH_CONFIG, through the flag), else
// config.DefaultPath.
func configPath(g *globalOptions) (string, error) {
	if g.configPath != "" {
		return g.configPath, nil
	}
	p, err := config.DefaultPath()
	if err != nil {
		return "", withCode(exitConfig, err)
	}
	return p, nil
}

// loadConfig reads and validates the configuration file; its errors exit 78. A file with several
// problems has them printed on stderr here, one per line starting with FILE:LINE:COL (so editors can
// jump to them, and run's "popfetch: " prefix stays off them), and the error returned summarises them.
func loadConfig(g *globalOptions) (*config.Config, error) {
	path, err := configPath(g)
	if err != nil {
		return nil, err
	}
	// A FIFO nobody writes would block here for ever: a signal ends the wait.
	cfg, err := interruptible(g.interrupt, path, func() (*config.Config, error) { return config.Load(path) })
	var ce *config.Error
	if errors.As(err, &ce) && len(ce.Issues) > 1 {
		fmt.Fprintln(g.stderr, ce.Error())
		return nil, withCode(exitConfig, fmt.Errorf("%d problems in %s", len(ce.Issues), ce.Path))
	}
	return cfg, err
}

func runConfigPath(_ context.Context, g *globalOptions) error {
	path, err := configPath(g)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(g.stdout, path)
	return err
}

type configCheckOptions struct {
	*globalOptions
}

func runConfigCheck(_ context.Context, opts configCheckOptions) error {
	cfg, err := loadConfig(opts.globalOptions)
	if err != nil {
		return err
	}
	if opts.json {
		return cfg.WriteJSON(opts.stdout)
	}
	return cfg.WriteResolved(opts.stdout)
}
