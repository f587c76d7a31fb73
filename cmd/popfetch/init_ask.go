package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/internal/discover"
	"github.com/popfetch/popfetch/internal/prompt"
	"github.com/popfetch/popfetch/internal/shquote"
)

// The questions `popfetch init` asks when stdin is a terminal (runInit asks none otherwise), and
// what it says to do next.

// initChoose shows the settings that work and lets the user pick one (or none).
func initChoose(ask *prompt.Prompter, ok []discover.Result) (discover.Result, bool, error) {
	if len(ok) == 1 {
		yes, err := ask.Yes(fmt.Sprintf("Use %s (%s)?", ok[0].Addr(), discover.ModeLabel(ok[0].Mode)), true)
		return ok[0], yes, err
	}
	fmt.Fprintln(ask.W, "Settings that work, safest first:")
	for i, r := range ok {
		fmt.Fprintf(ask.W, "  %d) %s  %s (%s)\n", i+1, r.Addr(), discover.ModeLabel(r.Mode), r.Source)
	}
	fmt.Fprintf(ask.W, "  %d) another server\n", len(ok)+1)
	for {
		s, err := ask.Line("Which one", "1")
		if err != nil {
			return discover.Result{}, false, err
		}
		n, err := strconv.Atoi(s)
		switch {
		case err == nil && n >= 1 && n <= len(ok):
			return ok[n-1], true, nil
		case err == nil && n == len(ok)+1:
			return discover.Result{}, false, nil
		}
	}
}

// initAskServer asks for the server when discovery found none (or the user wants another).
func initAskServer(ask *prompt.Prompter, tlsFlag string) (discover.Result, error) {
	r := discover.Result{Candidate: discover.Candidate{Source: "entered"}}
	for r.Host == "" {
		h, err := ask.Line("POP3 server host name", "")
		if err != nil {
			return r, err
		}
		if initHostName.MatchString(h) {
			r.Host = h
		}
	}
	mode := tlsFlag
	for mode == "" || !slices.Contains([]string{config.TLSImplicit, config.TLSStartTLS, config.TLSNone}, mode) {
		var err error
		if mode, err = ask.Line("TLS (implicit, starttls or none)", config.TLSImplicit); err != nil {
			return r, err
		}
	}
	r.Mode = tlsMode(mode)
	for r.Port == 0 {
		s, err := ask.Line("Port", strconv.Itoa(r.Mode.DefaultPort()))
		if err != nil {
			return r, err
		}
		if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65536 {
			r.Port = n
		}
	}
	return r, nil
}

// initAskRest fills in the user, account name, destination and password source: from the flags,
// else asked on a terminal, else the defaults.
func initAskRest(ask *prompt.Prompter, p *initProfile, o initOptions, exists func(string) bool) error {
	var err error
	if ask != nil && o.user == "" {
		for p.User == "" || strings.ContainsAny(p.User, "\r\n") {
			if p.User, err = ask.Line("User name", p.User); err != nil {
				return err
			}
		}
	}
	if ask != nil && o.name == "" {
		for {
			if p.Name, err = ask.Line("Account name", p.Name); err != nil {
				return err
			}
			switch {
			case !validAccount.MatchString(p.Name):
				fmt.Fprintln(ask.W, "letters, digits, '.', '_' and '-' only")
			case exists(p.Name) && !o.force:
				fmt.Fprintf(ask.W, "account %q already exists; choose another name\n", p.Name)
			default:
				goto named
			}
		}
	named:
	}
	if p.Maildir == "" {
		p.Maildir = "~/Maildir"
		if ask != nil {
			for {
				m, err := ask.Line("Deliver to maildir", p.Maildir)
				if err != nil {
					return err
				}
				if m, err = initAbsPath(m); err == nil {
					p.Maildir = m
					break
				}
			}
		}
	}
	if ask != nil && o.passwordCommand == "" && o.passwordEnv == "" {
		fmt.Fprintf(ask.W, "Where does the password come from?\n  1) the system keyring (popfetch password set %s)\n"+
			"  2) a command that prints it (password_command), e.g. pass show mail/%s\n"+
			"  3) an environment variable (password_env)\n", p.Name, p.Name)
		for {
			s, err := ask.Line("Choice", "1")
			if err != nil {
				return err
			}
			switch s {
			case "1":
				return nil
			case "2":
				for p.PasswordCommand == "" {
					if p.PasswordCommand, err = ask.Line("Command", ""); err != nil {
						return err
					}
				}
				return nil
			case "3":
				def := strings.ToUpper(regexp.MustCompile(`[^A-Za-z0-9_]`).ReplaceAllString(p.Name, "_")) + "_PASSWORD"
				for !initEnvName.MatchString(p.PasswordEnv) {
					if p.PasswordEnv, err = ask.Line("Variable", def); err != nil {
						return err
					}
				}
				return nil
			}
		}
	}
	return nil
}

// initNextSteps tells the user what to do next, and on a terminal offers to store the password.
func initNextSteps(ctx context.Context, o initOptions, ask *prompt.Prompter, p initProfile, path string) error {
	cfgFlag := ""
	if def, err := config.DefaultPath(); err != nil || def != path {
		cfgFlag = " --config " + shquote.Quote(path)
	}
	if ask != nil && p.PasswordCommand == "" && p.PasswordEnv == "" && !p.passwordKnown && !o.quiet {
		yes, err := ask.Yes("Store the password in the system keyring now?", true)
		if err != nil {
			return err
		}
		if yes {
			g := *o.globalOptions
			g.configPath = path
			if err := runPasswordSet(ctx, passwordOptions{globalOptions: &g, account: p.Name}); err != nil {
				return fmt.Errorf("the profile is written, but storing the password failed: %w", err)
			}
			p.passwordKnown = true
		}
	}
	if o.quiet {
		return nil
	}
	fmt.Fprintln(o.stderr, "Next:")
	switch {
	case p.PasswordCommand != "":
		fmt.Fprintf(o.stderr, "  check that `%s` prints the password\n", p.PasswordCommand)
	case p.passwordKnown:
	case p.PasswordEnv != "":
		fmt.Fprintf(o.stderr, "  export %s=...               # popfetch reads the password from it\n", p.PasswordEnv)
	default:
		fmt.Fprintf(o.stderr, "  popfetch%s password set %s     # store the password in the system keyring\n", cfgFlag, p.Name)
	}
	fmt.Fprintf(o.stderr, "  popfetch%s sync --dry-run %s   # what a sync would fetch; changes nothing\n", cfgFlag, p.Name)
	fmt.Fprintf(o.stderr, "  popfetch%s sync %s\n", cfgFlag, p.Name)
	return nil
}
