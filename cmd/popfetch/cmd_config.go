package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/internal/humanize"
	"github.com/popfetch/popfetch/internal/termsafe"
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
		return printConfigJSON(opts.stdout, cfg)
	}
	return printConfig(opts.stdout, cfg)
}

// accountView is an account as `config check` shows it: every value resolved, secrets as their source.
type accountView struct {
	Name               string `json:"name"`
	Host               string `json:"host"`
	Port               int    `json:"port"`
	TLS                string `json:"tls"`
	CAFile             string `json:"ca_file,omitempty"`
	Fingerprint        string `json:"tls_fingerprint,omitempty"`
	User               string `json:"user"`
	Auth               string `json:"auth"`
	Password           string `json:"password"`
	OAuth2             string `json:"oauth2,omitempty"`
	PasswordTimeout    string `json:"password_timeout"`
	AllowPlaintextAuth bool   `json:"allow_plaintext_auth"`
	Keep               bool   `json:"keep"`
	KeepDays           int    `json:"keep_days"`
	FetchAll           bool   `json:"fetch_all"`
	DeleteImported     bool   `json:"delete_imported"`
	MaxSize            int64  `json:"max_size"`
	Oversize           string `json:"oversize"`
	MaxMessages        int    `json:"max_messages"`
	Timeout            string `json:"timeout"`
	Interval           string `json:"interval"`
	MaxConnections     int    `json:"max_connections"`
	Deliver            string `json:"deliver"`
	ReceivedHeader     bool   `json:"received_header"`
}

func viewOf(a *config.Account) accountView {
	pt := a.Password.Timeout
	if pt == 0 {
		pt = config.DefaultPasswordTimeout
		if a.Password.Kind == config.SourceKeyring || a.Password.Kind == config.SourceOAuth2 { // oauth2: the refresh token in the keyring
			pt = config.DefaultKeyringTimeout
		}
	}
	return accountView{
		Name: a.Name, Host: a.Host, Port: a.Port, TLS: a.TLS, CAFile: a.CAFile, Fingerprint: a.Fingerprint,
		User: a.User, Auth: a.Auth, Password: a.Password.String(), PasswordTimeout: humanize.Duration(pt),
		AllowPlaintextAuth: a.AllowPlaintextAuth, Keep: a.Keep, KeepDays: a.KeepDays, FetchAll: a.FetchAll,
		MaxSize: a.MaxSize, Oversize: a.Oversize, MaxMessages: a.MaxMessages, Timeout: humanize.Duration(a.Timeout),
		Interval: humanize.Duration(a.Interval), MaxConnections: a.MaxConnections,
		Deliver: a.Deliver.String(), ReceivedHeader: a.TraceHeader,
		OAuth2:         oauth2String(a),
		DeleteImported: a.DeleteImported,
	}
}

func oauth2String(a *config.Account) string {
	if a.OAuth2 == nil {
		return ""
	}
	return a.OAuth2.String()
}

func printConfigJSON(w io.Writer, cfg *config.Config) error {
	out := struct {
		Path     string        `json:"path"`
		StateDir string        `json:"state_dir"`
		Accounts []accountView `json:"accounts"`
	}{Path: cfg.Path, StateDir: cfg.StateDir}
	for _, a := range cfg.Accounts {
		out.Accounts = append(out.Accounts, viewOf(a))
	}
	enc := json.NewEncoder(termsafe.JSONWriter{W: w})
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func printConfig(w io.Writer, cfg *config.Config) error {
	var b strings.Builder
	n := len(cfg.Accounts)
	fmt.Fprintf(&b, "# %s: OK, %d account%s\n", cfg.Path, n, map[bool]string{true: "", false: "s"}[n == 1])
	fmt.Fprintf(&b, "state_dir: %s\naccounts:\n", cfg.StateDir)
	for _, a := range cfg.Accounts {
		v := viewOf(a)
		fmt.Fprintf(&b, "  %s:\n", v.Name)
		line := func(k string, val any) { fmt.Fprintf(&b, "    %-21s %v\n", k+":", val) }
		line("host", v.Host)
		line("port", v.Port)
		line("tls", v.TLS)
		if v.CAFile != "" {
			line("ca_file", v.CAFile)
		}
		if v.Fingerprint != "" {
			line("tls_fingerprint", v.Fingerprint)
		}
		line("user", v.User)
		line("auth", v.Auth)
		line("password", v.Password)
		if v.OAuth2 != "" {
			line("oauth2", v.OAuth2)
		}
		line("password_timeout", v.PasswordTimeout)
		line("allow_plaintext_auth", v.AllowPlaintextAuth)
		line("keep", v.Keep)
		line("keep_days", v.KeepDays)
		line("fetch_all", v.FetchAll)
		line("delete_imported", v.DeleteImported)
		if v.MaxSize > 0 {
			line("max_size", fmt.Sprintf("%d  # bytes", v.MaxSize))
		} else {
			line("max_size", "0  # no limit")
		}
		line("oversize", v.Oversize)
		line("max_messages", v.MaxMessages)
		line("timeout", v.Timeout)
		line("interval", v.Interval)
		line("max_connections", v.MaxConnections)
		line("deliver", v.Deliver)
		line("received_header", v.ReceivedHeader)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
