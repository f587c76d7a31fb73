package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/internal/discover"
	"github.com/popfetch/popfetch/internal/prompt"
	"github.com/popfetch/popfetch/internal/termsafe"
)

// initOptions are the flags of `popfetch init`.
type initOptions struct {
	*globalOptions
	email, host     string
	port            int
	tls, user, name string
	maildir         string
	passwordCommand string
	passwordEnv     string
	auth, caFile    string
	dnsServer       string
	timeout         time.Duration
	dryRun, force   bool
	testPorts       string // --test-ports (hidden): "995=PORT,110=PORT", for tests, which cannot listen there
}

// initDefaultProbeTimeout bounds each DNS lookup and each probe; they run concurrently.
const initDefaultProbeTimeout = 5 * time.Second

func initCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "find an account's POP3 server (DNS SRV, usual names) and add a profile for it to the configuration file",
		Description: "popfetch init --email alice@example.com looks up the SRV records _pop3s._tcp and _pop3._tcp of the\n" +
			"domain (RFC 6186), then pop., pop3. and mail.DOMAIN; probes each for POP3S on 995 and STLS on 110\n" +
			"(certificates verified), reads CAPA, and proposes the safest setting that works (implicit TLS, then\n" +
			"STLS; plaintext only with --tls none). On a terminal it asks for what it cannot discover; otherwise\n" +
			"it takes flags and never asks (missing data: exit 64). It adds the account to the configuration\n" +
			"file (created 0600 in a 0700 directory, or extended keeping its content and comments), validated\n" +
			"before it replaces the file. --dry-run prints the profile instead.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "email", Usage: "the account's e-mail address: its domain is looked up, it is the default user name"},
			&cli.StringFlag{Name: "host", Usage: "the POP3 server (skips the discovery; the server is still probed)"},
			&cli.IntFlag{Name: "port", Usage: "the server's port, with --host (default 995 for implicit TLS, 110 for STLS)"},
			&cli.StringFlag{Name: "tls", Usage: "implicit | starttls | none (none only when asked for; default: the safest that works)"},
			&cli.StringFlag{Name: "user", Usage: "the login name (default: the e-mail address)"},
			&cli.StringFlag{Name: "account", Usage: "the account's name in the configuration (default: from the domain)"},
			&cli.StringFlag{Name: "maildir", Usage: "deliver to this maildir (default ~/Maildir)"},
			&cli.StringFlag{Name: "password-command", Usage: "the password comes from this command (run by sh -c), not the keyring"},
			&cli.StringFlag{Name: "password-env", Usage: "the password comes from this environment variable, not the keyring"},
			&cli.StringFlag{Name: "auth", Usage: "the authentication method (" + strings.Join(config.AuthMethods, ", ") + "); default auto"},
			&cli.StringFlag{Name: "ca-file", Usage: "extra trust anchors (PEM) for a private CA: used by the probes and written into the profile"},
			&cli.StringFlag{Name: "dns-server", Usage: "ask this DNS server (IP[:PORT]) instead of the system's resolver (split DNS)"},
			&cli.DurationFlag{Name: "timeout", Value: initDefaultProbeTimeout, Usage: "per DNS lookup and per probe (they run at once)"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the profile on stdout; write nothing"},
			&cli.BoolFlag{Name: "force", Usage: "replace an account of the same name"},
			&cli.StringFlag{Name: "test-ports", Hidden: true, Usage: "probe these ports instead of 995 and 110 (\"995=PORT,110=PORT\"): for tests"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return withCode(exitUsage, fmt.Errorf("init takes no arguments (did you mean --email %s?)", c.Args().First()))
			}
			return runInit(c.Context, initOptions{
				globalOptions: globalsFrom(c, env),
				email:         c.String("email"), host: c.String("host"), port: c.Int("port"), tls: c.String("tls"),
				user: c.String("user"), name: c.String("account"), maildir: c.String("maildir"),
				passwordCommand: c.String("password-command"), passwordEnv: c.String("password-env"),
				auth: c.String("auth"), caFile: c.String("ca-file"), dnsServer: c.String("dns-server"),
				timeout: c.Duration("timeout"), dryRun: c.Bool("dry-run"), force: c.Bool("force"),
				testPorts: c.String("test-ports"),
			})
		},
	}
}

var (
	initHostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	initEnvName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// initProfile is the account init writes.
type initProfile struct {
	config.Profile
	passwordKnown bool // the password source needs no next step (stored now, or inherited): not written
}

func runInit(ctx context.Context, o initOptions) error {
	say := func(format string, args ...any) {
		if !o.quiet {
			fmt.Fprintf(o.stderr, format+"\n", args...)
		}
	}
	var ask *prompt.Prompter
	if f, ok := o.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ask = &prompt.Prompter{Ctx: ctx, R: bufio.NewReader(f), W: o.stderr}
	}
	p, err := o.check()
	if err != nil {
		return err
	}
	ports, err := discover.ParsePorts(o.testPorts)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("--test-ports %w", err))
	}
	resolver, err := discover.Resolver(o.dnsServer)
	if err != nil {
		return withCode(exitUsage, err)
	}

	// The configuration file: an existing one must be valid before init adds to it.
	path, err := configPath(o.globalOptions)
	if err != nil {
		return err
	}
	var old *config.Config
	if _, err := os.Stat(path); err == nil {
		if old, err = loadConfig(o.globalOptions); err != nil && !config.IsBlank(path) {
			return fmt.Errorf("%w\npopfetch: fix %s first (`popfetch config check`); init adds to a valid file only", err, path)
		}
	}

	// What the flags leave open: asked on a terminal, else an error naming the flags.
	if o.email == "" && o.host == "" {
		if ask == nil {
			return withCode(exitUsage, errors.New("missing --email ADDRESS (or --host HOST with --user NAME and --account NAME); init asks only on a terminal"))
		}
		for o.email == "" {
			if o.email, err = ask.Line("E-mail address", ""); err != nil {
				return err
			}
			if _, err := initDomain(o.email); err != nil {
				fmt.Fprintf(o.stderr, "%v\n", err)
				o.email = ""
			}
		}
	}
	domain := ""
	if o.email != "" {
		domain, _ = initDomain(o.email)
	}
	if p.User == "" && o.email == "" && ask == nil {
		return withCode(exitUsage, errors.New("missing --user NAME (the login name; the default is the --email address)"))
	}
	if p.Name == "" {
		p.Name = initDefaultName(domain, o.host)
		if p.Name == "" && ask == nil {
			return withCode(exitUsage, errors.New("missing --account NAME"))
		}
	}
	exists := func(name string) bool { return old != nil && old.Account(name) != nil }
	if exists(p.Name) && !o.force {
		if ask == nil || o.name != "" {
			return withCode(exitUsage, fmt.Errorf("account %q already exists in %s: choose another name with --account NAME, or replace it with --force", p.Name, path))
		}
	}

	// Discovery.
	modes := []pop3.TLSMode{pop3.TLSImplicit, pop3.TLSStartTLS}
	if p.TLS != "" {
		modes = []pop3.TLSMode{tlsMode(p.TLS)}
	}
	params := discover.Params{Domain: domain, Host: o.host, Port: o.port, Modes: modes, Resolver: resolver,
		CAFile: p.CAFile, Timeout: o.timeout, Ports: ports}
	if o.host != "" {
		say("popfetch: probing %s", o.host)
	} else {
		say("popfetch: looking for the POP3 server of %s", domain)
	}
	d := discover.Find(ctx, params)
	if err := ctx.Err(); err != nil {
		return err
	}
	if !o.quiet {
		d.Report(o.stderr, o.verbose, o.timeout)
	}
	choice, found := d.Best()
	if found && ask != nil {
		if choice, found, err = initChoose(ask, d.Working()); err != nil {
			return err
		}
	}
	if !found {
		switch {
		case o.host != "" && p.TLS != "":
			// Everything was given: the server may be unreachable from here; the user knows best.
			port := o.port
			if port == 0 {
				port = d.Results[0].Port
			}
			choice = discover.Result{Candidate: discover.Candidate{Host: o.host, Port: port, Mode: modes[0], Source: "--host"}}
			fmt.Fprintf(o.stderr, "popfetch: warning: %s did not answer as expected; the profile is written as given\n", o.host)
		case ask != nil:
			if choice, err = initAskServer(ask, p.TLS); err != nil {
				return err
			}
			if r := discover.Probe(ctx, choice.Candidate, params); r.Err != nil {
				fmt.Fprintf(o.stderr, "  failed  %s  %s: %s\n", r.Addr(), discover.ModeLabel(r.Mode), discover.DescribeErr(r.Err, o.timeout))
				if yes, err := ask.Yes("Write the profile anyway?", false); err != nil {
					return err // interrupted (130) or no answer (64)
				} else if !yes {
					return withCode(exitUsage, errors.New("nothing written"))
				}
			} else {
				fmt.Fprintf(o.stderr, "  ok      %s  %s: %s\n", r.Addr(), discover.ModeLabel(r.Mode), discover.CapsSummary(r))
				choice, found = r, true
			}
		default:
			what := domain
			if o.host != "" {
				what = o.host
			}
			return withCode(exitUsage, fmt.Errorf("found no working POP3 server for %s; pass --host HOST and --tls implicit|starttls (and --port PORT, --ca-file FILE for a private CA)", what))
		}
	}
	p.Host, p.Port, p.TLS = choice.Host, choice.Port, tlsModeName(choice.Mode)
	if found {
		// The summary quotes the server (SASL mechanisms): escaped, it cannot end the YAML comment or
		// put a control character (which YAML refuses) in the file.
		p.Comments = append(p.Comments, termsafe.String(fmt.Sprintf("found by popfetch init on %s (%s): %s",
			time.Now().Format(time.DateOnly), choice.Source, discover.CapsSummary(choice))))
	}
	say("popfetch: using %s (%s)", choice.Addr(), discover.ModeLabel(choice.Mode))
	for _, n := range discover.Advice(choice, p.Auth, domain) {
		fmt.Fprintf(o.stderr, "popfetch: note: %s\n", n)
	}

	// The rest: flags, else asked on a terminal, else the defaults.
	if err := initAskRest(ask, &p, o, exists); err != nil {
		return err
	}

	text, err := p.Document()
	if err != nil {
		return withCode(exitSoftware, err)
	}
	if err := config.CheckProfile(text); err != nil {
		return withCode(exitUsage, err) // from the flags or answers
	}
	if o.dryRun {
		if _, err := o.stdout.Write(text); err != nil {
			return withCode(exitIOErr, err)
		}
		say("popfetch: dry run: nothing written; without --dry-run the account %q goes into %s", p.Name, path)
		return nil
	}
	created, err := config.AddAccount(path, old, p.Profile, o.force)
	if err != nil {
		return initEditErr(err)
	}
	verb := "added account %q to %s"
	if created {
		verb = "created %[2]s with account %[1]q"
	}
	say("popfetch: "+verb, p.Name, path)
	if cfg, err := config.Load(path); err == nil && p.PasswordCommand == "" && p.PasswordEnv == "" {
		if a := cfg.Account(p.Name); a != nil && a.Password.Kind != config.SourceKeyring {
			// defaults: names a password source, which the account inherits.
			fmt.Fprintf(o.stderr, "popfetch: note: account %q takes its password from %s, set under defaults: in %s\n", p.Name, a.Password, path)
			p.passwordKnown = true
		}
	}
	return initNextSteps(ctx, o, ask, p, path)
}

// check validates the flags and returns the profile they determine so far.
func (o *initOptions) check() (initProfile, error) {
	p := initProfile{Profile: config.Profile{Name: o.name, TLS: o.tls, User: o.user, Auth: o.auth,
		PasswordCommand: o.passwordCommand, PasswordEnv: o.passwordEnv, Maildir: o.maildir}}
	usage := func(format string, args ...any) (initProfile, error) {
		return p, withCode(exitUsage, fmt.Errorf(format, args...))
	}
	if o.email != "" {
		if _, err := initDomain(o.email); err != nil {
			return p, err
		}
		if p.User == "" {
			p.User = o.email
		}
	}
	if o.host != "" {
		if _, _, err := net.SplitHostPort(o.host); err == nil {
			return usage("--host %q: give the port with --port", o.host)
		}
		o.host = strings.Trim(o.host, "[]")
		if !initHostName.MatchString(o.host) && net.ParseIP(o.host) == nil {
			return usage("--host %q is not a host name or IP address", o.host)
		}
	}
	if o.port != 0 && o.host == "" {
		return usage("--port needs --host (discovery finds the port itself)")
	}
	if o.port < 0 || o.port > 65535 {
		return usage("--port %d is out of range", o.port)
	}
	if p.TLS != "" && !slices.Contains([]string{config.TLSImplicit, config.TLSStartTLS, config.TLSNone}, p.TLS) {
		return usage("--tls %q: want implicit, starttls or none", p.TLS)
	}
	if p.Auth != "" && !slices.Contains(config.AuthMethods, p.Auth) {
		return usage("--auth %q: want one of %s", p.Auth, strings.Join(config.AuthMethods, ", "))
	}
	if p.Name != "" && !validAccount.MatchString(p.Name) {
		return usage("--account %q: an account name has letters, digits, '.', '_' and '-' only", p.Name)
	}
	if strings.ContainsAny(p.User, "\r\n") {
		return usage("--user must not contain a line break")
	}
	if p.PasswordCommand != "" && p.PasswordEnv != "" {
		return usage("--password-command and --password-env exclude each other (an account has one password source)")
	}
	if p.PasswordEnv != "" && !initEnvName.MatchString(p.PasswordEnv) {
		return usage("--password-env %q is not a variable name", p.PasswordEnv)
	}
	if o.caFile != "" {
		abs, err := filepath.Abs(o.caFile)
		if err != nil {
			return usage("--ca-file: %v", err)
		}
		pem, err := os.ReadFile(abs)
		if err != nil {
			return usage("--ca-file: %v", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return usage("--ca-file %s holds no PEM certificate", abs)
		}
		if p.TLS == config.TLSNone {
			return usage("--ca-file has no effect with --tls none")
		}
		p.CAFile = abs
	}
	if p.Maildir != "" {
		m, err := initAbsPath(p.Maildir)
		if err != nil {
			return usage("--maildir: %v", err)
		}
		p.Maildir = m
	}
	if o.timeout <= 0 {
		o.timeout = initDefaultProbeTimeout
	}
	return p, nil
}

// initAbsPath makes a path absolute unless it starts with ~ or $ (which the configuration expands).
func initAbsPath(s string) (string, error) {
	if strings.HasPrefix(s, "~") || strings.HasPrefix(s, "$") || filepath.IsAbs(s) {
		return s, nil
	}
	return filepath.Abs(s)
}

// initDomain returns the domain of an e-mail address, lower case.
func initDomain(email string) (string, error) {
	i := strings.LastIndexByte(email, '@')
	if i <= 0 || i == len(email)-1 || strings.ContainsAny(email, " \t\r\n<>") {
		return "", withCode(exitUsage, fmt.Errorf("%q is not an e-mail address (want user@domain)", email))
	}
	domain := strings.ToLower(strings.TrimSuffix(email[i+1:], "."))
	if !initHostName.MatchString(domain) {
		return "", withCode(exitUsage, fmt.Errorf("%q: the domain %q is not a host name (internationalised domains: use the xn-- form)", email, domain))
	}
	return domain, nil
}

// initDefaultName derives an account name from the domain (example.com -> example), or the host.
func initDefaultName(domain, host string) string {
	if domain == "" {
		labels := strings.Split(strings.Trim(host, "[]"), ".")
		if len(labels) < 2 || net.ParseIP(host) != nil {
			return ""
		}
		domain = strings.Join(labels[max(len(labels)-2, 0):], ".")
	}
	name, _, _ := strings.Cut(domain, ".")
	if !validAccount.MatchString(name) {
		return ""
	}
	return name
}
