package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
	"gopkg.in/yaml.v3"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/internal/fsutil"
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
	testPorts       string // initTestPortsEnv (tests only)
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
				testPorts: os.Getenv(initTestPortsEnv),
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
	name, host      string
	port            int
	tls, caFile     string
	user, auth      string
	passwordCommand string
	passwordEnv     string
	maildir         string
	comments        []string
	passwordKnown   bool // the password source needs no next step (stored now, or inherited): not written
}

func runInit(ctx context.Context, o initOptions) error {
	say := func(format string, args ...any) {
		if !o.quiet {
			fmt.Fprintf(o.stderr, format+"\n", args...)
		}
	}
	var ask *initPrompter
	if f, ok := o.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ask = &initPrompter{ctx: ctx, r: bufio.NewReader(f), w: o.stderr}
	}
	p, err := o.check()
	if err != nil {
		return err
	}
	ports, err := initParsePorts(o.testPorts)
	if err != nil {
		return withCode(exitUsage, err)
	}
	resolver, err := initResolver(o.dnsServer)
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
		if old, err = loadConfig(o.globalOptions); err != nil && !initBlank(path) {
			return fmt.Errorf("%w\npopfetch: fix %s first (`popfetch config check`); init adds to a valid file only", err, path)
		}
	}

	// What the flags leave open: asked on a terminal, else an error naming the flags.
	if o.email == "" && o.host == "" {
		if ask == nil {
			return withCode(exitUsage, errors.New("missing --email ADDRESS (or --host HOST with --user NAME and --account NAME); init asks only on a terminal"))
		}
		for o.email == "" {
			if o.email, err = ask.line("E-mail address", ""); err != nil {
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
	if p.user == "" && o.email == "" && ask == nil {
		return withCode(exitUsage, errors.New("missing --user NAME (the login name; the default is the --email address)"))
	}
	if p.name == "" {
		p.name = initDefaultName(domain, o.host)
		if p.name == "" && ask == nil {
			return withCode(exitUsage, errors.New("missing --account NAME"))
		}
	}
	exists := func(name string) bool { return old != nil && old.Account(name) != nil }
	if exists(p.name) && !o.force {
		if ask == nil || o.name != "" {
			return withCode(exitUsage, fmt.Errorf("account %q already exists in %s: choose another name with --account NAME, or replace it with --force", p.name, path))
		}
	}

	// Discovery.
	modes := []pop3.TLSMode{pop3.TLSImplicit, pop3.TLSStartTLS}
	switch p.tls {
	case config.TLSImplicit:
		modes = []pop3.TLSMode{pop3.TLSImplicit}
	case config.TLSStartTLS:
		modes = []pop3.TLSMode{pop3.TLSStartTLS}
	case config.TLSNone:
		modes = []pop3.TLSMode{pop3.TLSNone}
	}
	params := initDiscoverParams{domain: domain, host: o.host, port: o.port, modes: modes, resolver: resolver,
		caFile: p.caFile, timeout: o.timeout, ports: ports}
	if o.host != "" {
		say("popfetch: probing %s", o.host)
	} else {
		say("popfetch: looking for the POP3 server of %s", domain)
	}
	d := initDiscover(ctx, params)
	if err := ctx.Err(); err != nil {
		return err
	}
	initReport(o, d)
	choice, found := d.best()
	if found && ask != nil {
		if choice, found, err = initChoose(ask, d.working()); err != nil {
			return err
		}
	}
	if !found {
		switch {
		case o.host != "" && p.tls != "":
			// Everything was given: the server may be unreachable from here; the user knows best.
			port := o.port
			if port == 0 {
				port = d.results[0].port
			}
			choice = initProbeResult{initCandidate: initCandidate{host: o.host, port: port, mode: modes[0], source: "--host"}}
			fmt.Fprintf(o.stderr, "popfetch: warning: %s did not answer as expected; the profile is written as given\n", o.host)
		case ask != nil:
			if choice, err = initAskServer(ask, p.tls); err != nil {
				return err
			}
			if r := initProbe(ctx, choice.initCandidate, params); r.err != nil {
				fmt.Fprintf(o.stderr, "  failed  %s  %s: %s\n", r.addr(), initModeLabel(r.mode), initDescribeErr(r.err, o.timeout))
				if yes, err := ask.yes("Write the profile anyway?", false); err != nil || !yes {
					return errors.Join(err, withCode(exitUsage, errors.New("nothing written")))
				}
			} else {
				fmt.Fprintf(o.stderr, "  ok      %s  %s: %s\n", r.addr(), initModeLabel(r.mode), initCapsSummary(r))
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
	p.host, p.port, p.tls = choice.host, choice.port, initModeName(choice.mode)
	if found {
		// The summary quotes the server (SASL mechanisms): escaped, it cannot end the YAML comment or
		// put a control character (which YAML refuses) in the file.
		p.comments = append(p.comments, termsafe.String(fmt.Sprintf("found by popfetch init on %s (%s): %s",
			time.Now().Format(time.DateOnly), choice.source, initCapsSummary(choice))))
	}
	say("popfetch: using %s (%s)", choice.addr(), initModeLabel(choice.mode))
	initNotes(o, choice, p, domain)

	// The rest: flags, else asked on a terminal, else the defaults.
	if err := initAskRest(ask, &p, o, exists); err != nil {
		return err
	}

	text, err := p.document()
	if err != nil {
		return withCode(exitSoftware, err)
	}
	if err := initValidate(text); err != nil {
		return err
	}
	if o.dryRun {
		if _, err := o.stdout.Write(text); err != nil {
			return withCode(exitIOErr, err)
		}
		say("popfetch: dry run: nothing written; without --dry-run the account %q goes into %s", p.name, path)
		return nil
	}
	created, err := initWrite(path, old, p)
	if err != nil {
		return err
	}
	verb := "added account %q to %s"
	if created {
		verb = "created %[2]s with account %[1]q"
	}
	say("popfetch: "+verb, p.name, path)
	if cfg, err := config.Load(path); err == nil && p.passwordCommand == "" && p.passwordEnv == "" {
		if a := cfg.Account(p.name); a != nil && a.Password.Kind != config.SourceKeyring {
			// defaults: names a password source, which the account inherits.
			fmt.Fprintf(o.stderr, "popfetch: note: account %q takes its password from %s, set under defaults: in %s\n", p.name, a.Password, path)
			p.passwordKnown = true
		}
	}
	return initNextSteps(ctx, o, ask, p, path)
}

// check validates the flags and returns the profile they determine so far.
func (o *initOptions) check() (initProfile, error) {
	p := initProfile{name: o.name, tls: o.tls, user: o.user, auth: o.auth, passwordCommand: o.passwordCommand,
		passwordEnv: o.passwordEnv, maildir: o.maildir}
	usage := func(format string, args ...any) (initProfile, error) {
		return p, withCode(exitUsage, fmt.Errorf(format, args...))
	}
	if o.email != "" {
		if _, err := initDomain(o.email); err != nil {
			return p, err
		}
		if p.user == "" {
			p.user = o.email
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
	if p.tls != "" && !slices.Contains([]string{config.TLSImplicit, config.TLSStartTLS, config.TLSNone}, p.tls) {
		return usage("--tls %q: want implicit, starttls or none", p.tls)
	}
	if p.auth != "" && !slices.Contains(config.AuthMethods, p.auth) {
		return usage("--auth %q: want one of %s", p.auth, strings.Join(config.AuthMethods, ", "))
	}
	if p.name != "" && !validAccount.MatchString(p.name) {
		return usage("--account %q: an account name has letters, digits, '.', '_' and '-' only", p.name)
	}
	if strings.ContainsAny(p.user, "\r\n") {
		return usage("--user must not contain a line break")
	}
	if p.passwordCommand != "" && p.passwordEnv != "" {
		return usage("--password-command and --password-env exclude each other (an account has one password source)")
	}
	if p.passwordEnv != "" && !initEnvName.MatchString(p.passwordEnv) {
		return usage("--password-env %q is not a variable name", p.passwordEnv)
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
		if p.tls == config.TLSNone {
			return usage("--ca-file has no effect with --tls none")
		}
		p.caFile = abs
	}
	if p.maildir != "" {
		m, err := initAbsPath(p.maildir)
		if err != nil {
			return usage("--maildir: %v", err)
		}
		p.maildir = m
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

// initBlank reports whether the file holds nothing but blank lines and comments.
func initBlank(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && l != "---" {
			return false
		}
	}
	return true
}

// initReport prints what DNS said and what each probe found.
func initReport(o initOptions, d *initDiscovery) {
	if o.quiet {
		return
	}
	for _, n := range d.notes {
		fmt.Fprintf(o.stderr, "  %s\n", n)
	}
	var unknown, skipped []string
	for _, r := range d.results {
		switch {
		case errors.Is(r.err, errInitNotNeeded):
			skipped = append(skipped, r.addr()+" ("+initModeLabel(r.mode)+")")
		case r.err == nil:
			fmt.Fprintf(o.stderr, "  ok      %s  %s (%s): %s\n", r.addr(), initModeLabel(r.mode), r.source, initCapsSummary(r))
		case initNotFound(r.err) && !o.verbose:
			if !slices.Contains(unknown, r.host) {
				unknown = append(unknown, r.host)
			}
		default:
			fmt.Fprintf(o.stderr, "  failed  %s  %s (%s): %s\n", r.addr(), initModeLabel(r.mode), r.source, initDescribeErr(r.err, o.timeout))
		}
	}
	if len(unknown) > 0 {
		fmt.Fprintf(o.stderr, "  no such host: %s\n", strings.Join(unknown, ", "))
	}
	if len(skipped) > 0 {
		fmt.Fprintf(o.stderr, "  not waited for (a safer setting works): %s\n", strings.Join(skipped, ", "))
	}
}

// initNotes says what the chosen server's capabilities mean for the profile.
func initNotes(o initOptions, r initProbeResult, p initProfile, domain string) {
	note := func(format string, args ...any) { fmt.Fprintf(o.stderr, "popfetch: note: "+format+"\n", args...) }
	if domain != "" && r.srv && r.source != "--host" && r.host != domain && !strings.HasSuffix(r.host, "."+domain) {
		note("the server %s named by DNS is not in %s: check that it is your provider's", r.host, domain)
	}
	if r.mode == pop3.TLSNone {
		note("tls: none sends everything in clear; auth auto uses only SCRAM there (APOP and CRAM-MD5 digests can be cracked offline), unless you add allow_plaintext_auth: true")
	}
	if r.err != nil || r.caps == nil {
		return
	}
	if !r.caps.UIDL {
		note("the server has no UIDL: popfetch deletes messages once delivered (keep: true is impossible)")
	}
	oauthOnly := len(r.caps.SASL) > 0 && !r.caps.User
	for _, m := range r.caps.SASL {
		if m != "XOAUTH2" && m != "OAUTHBEARER" {
			oauthOnly = false
		}
	}
	if oauthOnly {
		note("the server offers only OAuth2 (%s): see the README on OAuth2", strings.Join(r.caps.SASL, " "))
	}
	if p.auth != "" && p.auth != "auto" {
		offered := true
		switch p.auth {
		case "user":
			offered = r.caps.User
		case "apop":
		default:
			offered = r.caps.HasSASL(strings.ToUpper(p.auth))
		}
		if !offered {
			note("the server does not advertise %s (CAPA); auth: %s may be refused", strings.ToUpper(p.auth), p.auth)
		}
	}
}

// initChoose shows the settings that work and lets the user pick one (or none).
func initChoose(ask *initPrompter, ok []initProbeResult) (initProbeResult, bool, error) {
	if len(ok) == 1 {
		yes, err := ask.yes(fmt.Sprintf("Use %s (%s)?", ok[0].addr(), initModeLabel(ok[0].mode)), true)
		return ok[0], yes, err
	}
	fmt.Fprintln(ask.w, "Settings that work, safest first:")
	for i, r := range ok {
		fmt.Fprintf(ask.w, "  %d) %s  %s (%s)\n", i+1, r.addr(), initModeLabel(r.mode), r.source)
	}
	fmt.Fprintf(ask.w, "  %d) another server\n", len(ok)+1)
	for {
		s, err := ask.line("Which one", "1")
		if err != nil {
			return initProbeResult{}, false, err
		}
		n, err := strconv.Atoi(s)
		switch {
		case err == nil && n >= 1 && n <= len(ok):
			return ok[n-1], true, nil
		case err == nil && n == len(ok)+1:
			return initProbeResult{}, false, nil
		}
	}
}

// initAskServer asks for the server when discovery found none (or the user wants another).
func initAskServer(ask *initPrompter, tlsFlag string) (initProbeResult, error) {
	r := initProbeResult{initCandidate: initCandidate{source: "entered"}}
	for r.host == "" {
		h, err := ask.line("POP3 server host name", "")
		if err != nil {
			return r, err
		}
		if initHostName.MatchString(h) {
			r.host = h
		}
	}
	mode := tlsFlag
	for mode == "" || !slices.Contains([]string{config.TLSImplicit, config.TLSStartTLS, config.TLSNone}, mode) {
		var err error
		if mode, err = ask.line("TLS (implicit, starttls or none)", config.TLSImplicit); err != nil {
			return r, err
		}
	}
	r.mode = map[string]pop3.TLSMode{config.TLSImplicit: pop3.TLSImplicit, config.TLSStartTLS: pop3.TLSStartTLS, config.TLSNone: pop3.TLSNone}[mode]
	for r.port == 0 {
		s, err := ask.line("Port", strconv.Itoa(r.mode.DefaultPort()))
		if err != nil {
			return r, err
		}
		if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65536 {
			r.port = n
		}
	}
	return r, nil
}

// initAskRest fills in the user, account name, destination and password source: from the flags,
// else asked on a terminal, else the defaults.
func initAskRest(ask *initPrompter, p *initProfile, o initOptions, exists func(string) bool) error {
	var err error
	if ask != nil && o.user == "" {
		for p.user == "" || strings.ContainsAny(p.user, "\r\n") {
			if p.user, err = ask.line("User name", p.user); err != nil {
				return err
			}
		}
	}
	if ask != nil && o.name == "" {
		for {
			if p.name, err = ask.line("Account name", p.name); err != nil {
				return err
			}
			switch {
			case !validAccount.MatchString(p.name):
				fmt.Fprintln(ask.w, "letters, digits, '.', '_' and '-' only")
			case exists(p.name) && !o.force:
				fmt.Fprintf(ask.w, "account %q already exists; choose another name\n", p.name)
			default:
				goto named
			}
		}
	named:
	}
	if p.maildir == "" {
		p.maildir = "~/Maildir"
		if ask != nil {
			for {
				m, err := ask.line("Deliver to maildir", p.maildir)
				if err != nil {
					return err
				}
				if m, err = initAbsPath(m); err == nil {
					p.maildir = m
					break
				}
			}
		}
	}
	if ask != nil && o.passwordCommand == "" && o.passwordEnv == "" {
		fmt.Fprintf(ask.w, "Where does the password come from?\n  1) the system keyring (popfetch password set %s)\n"+
			"  2) a command that prints it (password_command), e.g. pass show mail/%s\n"+
			"  3) an environment variable (password_env)\n", p.name, p.name)
		for {
			s, err := ask.line("Choice", "1")
			if err != nil {
				return err
			}
			switch s {
			case "1":
				return nil
			case "2":
				for p.passwordCommand == "" {
					if p.passwordCommand, err = ask.line("Command", ""); err != nil {
						return err
					}
				}
				return nil
			case "3":
				def := strings.ToUpper(regexp.MustCompile(`[^A-Za-z0-9_]`).ReplaceAllString(p.name, "_")) + "_PASSWORD"
				for !initEnvName.MatchString(p.passwordEnv) {
					if p.passwordEnv, err = ask.line("Variable", def); err != nil {
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
func initNextSteps(ctx context.Context, o initOptions, ask *initPrompter, p initProfile, path string) error {
	cfgFlag := ""
	if def, err := config.DefaultPath(); err != nil || def != path {
		cfgFlag = " --config " + initShellQuote(path)
	}
	if ask != nil && p.passwordCommand == "" && p.passwordEnv == "" && !p.passwordKnown && !o.quiet {
		yes, err := ask.yes("Store the password in the system keyring now?", true)
		if err != nil {
			return err
		}
		if yes {
			g := *o.globalOptions
			g.configPath = path
			if err := runPasswordSet(ctx, passwordOptions{globalOptions: &g, account: p.name}); err != nil {
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
	case p.passwordCommand != "":
		fmt.Fprintf(o.stderr, "  check that `%s` prints the password\n", p.passwordCommand)
	case p.passwordKnown:
	case p.passwordEnv != "":
		fmt.Fprintf(o.stderr, "  export %s=...               # popfetch reads the password from it\n", p.passwordEnv)
	default:
		fmt.Fprintf(o.stderr, "  popfetch%s password set %s     # store the password in the system keyring\n", cfgFlag, p.name)
	}
	fmt.Fprintf(o.stderr, "  popfetch%s sync --dry-run %s   # what a sync would fetch; changes nothing\n", cfgFlag, p.name)
	fmt.Fprintf(o.stderr, "  popfetch%s sync %s\n", cfgFlag, p.name)
	return nil
}

// initShellQuote quotes s for a shell when it needs it.
func initShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// initPrompter asks questions on a terminal: the question on stderr, one line from stdin. A
// SIGINT/SIGTERM (ctx) ends a question at once: the read is left behind, and the process exits.
type initPrompter struct {
	ctx context.Context
	r   *bufio.Reader
	w   io.Writer
}

func (a *initPrompter) line(question, def string) (string, error) {
	if def != "" {
		fmt.Fprintf(a.w, "%s [%s]: ", question, def)
	} else {
		fmt.Fprintf(a.w, "%s: ", question)
	}
	type answer struct {
		s   string
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		s, err := a.r.ReadString('\n')
		ch <- answer{s, err}
	}()
	var s string
	var err error
	select {
	case <-a.ctx.Done():
		fmt.Fprintln(a.w)
		return "", withCode(exitInterrupted, errors.New("interrupted"))
	case ans := <-ch:
		s, err = ans.s, ans.err
	}
	if err != nil && s == "" {
		fmt.Fprintln(a.w)
		return "", withCode(exitUsage, errors.New("no answer (end of input); nothing written"))
	}
	if s = strings.TrimSpace(s); s == "" {
		return def, nil
	}
	return s, nil
}

func (a *initPrompter) yes(question string, def bool) (bool, error) {
	hint := "Y/n"
	if !def {
		hint = "y/N"
	}
	for {
		s, err := a.line(question+" ["+hint+"]", "")
		if err != nil {
			return false, err
		}
		switch strings.ToLower(s) {
		case "":
			return def, nil
		case "y", "yes":
			return true, nil
		case "n", "no":
			return false, nil
		}
	}
}

// Profile YAML.

func initScalar(tag, v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v}
}

// accountNode returns the account's mapping.
func (p initProfile) accountNode() *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v *yaml.Node) { m.Content = append(m.Content, initScalar("!!str", k), v) }
	str := func(k, v string) {
		if v != "" {
			add(k, initScalar("!!str", v))
		}
	}
	str("host", p.host)
	add("port", initScalar("!!int", strconv.Itoa(p.port)))
	str("tls", p.tls)
	str("ca_file", p.caFile)
	str("user", p.user)
	if p.auth != "auto" {
		str("auth", p.auth)
	}
	str("password_command", p.passwordCommand)
	str("password_env", p.passwordEnv)
	deliver := &yaml.Node{Kind: yaml.MappingNode}
	deliver.Content = append(deliver.Content, initScalar("!!str", config.DeliverMaildir), initScalar("!!str", p.maildir))
	add("deliver", deliver)
	if len(p.comments) > 0 {
		m.Content[0].HeadComment = "# " + strings.Join(p.comments, "\n# ")
	}
	if p.passwordCommand == "" && p.passwordEnv == "" {
		m.Content[len(m.Content)-2].HeadComment = "# password: the system keyring (popfetch password set " + p.name + ")"
	}
	return m
}

// block is the account as YAML lines: its name at column 0, its keys indented by indent spaces.
func (p initProfile) block(indent int) ([]byte, error) {
	m := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{initScalar("!!str", p.name), p.accountNode()}}
	return initEncode(m, indent)
}

// document is a whole configuration file holding only this account.
func (p initProfile) document() ([]byte, error) {
	b, err := p.block(2)
	if err != nil {
		return nil, err
	}
	return append([]byte("accounts:\n"), initIndent(b, 2)...), nil
}

func initEncode(n *yaml.Node, indent int) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(indent)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// initIndent prefixes every non-empty line with n spaces.
func initIndent(b []byte, n int) []byte {
	pad := strings.Repeat(" ", n)
	var out bytes.Buffer
	for l := range strings.SplitAfterSeq(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			out.WriteString(pad)
		}
		out.WriteString(l)
	}
	return out.Bytes()
}

// initValidate loads the profile alone, as popfetch will load it; its problems come from the flags
// or answers (exit 64).
func initValidate(text []byte) error {
	f, err := os.CreateTemp("", "popfetch-init-*.yaml")
	if err != nil {
		return withCode(exitIOErr, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return withCode(exitIOErr, err)
	}
	if _, err := config.Load(f.Name()); err != nil {
		return withCode(exitUsage, fmt.Errorf("the new profile would not load: %s", strings.ReplaceAll(err.Error(), f.Name(), "profile")))
	}
	return nil
}

// initWrite adds the account to the configuration file at path (through a symlink, to its target),
// or creates the file. The new content is written to a temporary file beside it, loaded with
// config.Load and checked (the new account as written, every other account unchanged), then renamed
// over the file and the directory synced. created reports a new file.
func initWrite(path string, old *config.Config, p initProfile) (created bool, err error) {
	real := path
	if r, err := filepath.EvalSymlinks(path); err == nil {
		real = r
	}
	before, err := os.ReadFile(real)
	created = errors.Is(err, fs.ErrNotExist)
	if err != nil && !created {
		return false, withCode(exitIOErr, err)
	}
	mode := fs.FileMode(0o600)
	if fi, err := os.Stat(real); err == nil {
		mode = fi.Mode().Perm() &^ 0o022 // the user's choice for an existing file, but writable by no one else
	}
	var versions []func() ([]byte, error)
	if created || old == nil {
		versions = append(versions, func() ([]byte, error) {
			doc, err := p.document()
			if err != nil {
				return nil, err
			}
			head := "# popfetch configuration: see the README's \"Configuration\" section; `popfetch config check` validates it.\n"
			if len(bytes.TrimSpace(before)) > 0 { // only comments: keep them
				head = string(before)
				if !strings.HasSuffix(head, "\n") {
					head += "\n"
				}
			}
			return append([]byte(head), doc...), nil
		})
	} else {
		versions = append(versions,
			func() ([]byte, error) { return initInsertText(before, p) },
			func() ([]byte, error) { return initInsertNode(before, p.name, p.accountNode()) })
	}
	dir := filepath.Dir(real)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, withCode(exitIOErr, err)
	}
	// The new file is created exclusively beside the target and renamed over it: no link is followed
	// but the user's own. A directory where another user could plant or swap files is refused.
	for _, d := range []string{filepath.Dir(path), dir} {
		if err := fsutil.CheckDir(d, "configuration directory"); err != nil {
			return false, withCode(exitConfig, err)
		}
	}
	var firstErr error
	for _, version := range versions {
		text, err := version()
		if err == nil {
			err = initTryWrite(real, dir, mode, text, before, created, old, p)
		}
		if err == nil {
			return created, nil
		}
		var ce *codedError
		if errors.As(err, &ce) && ce.code != exitSoftware {
			return false, err // I/O: no point in another way
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return false, withCode(exitSoftware, fmt.Errorf("could not add the account to %s without breaking it (%v); nothing was written: add it by hand (popfetch init --dry-run prints it)", path, firstErr))
}

// initTryWrite writes text to a temporary file, checks it and renames it over real.
func initTryWrite(real, dir string, mode fs.FileMode, text, before []byte, created bool, old *config.Config, p initProfile) error {
	f, err := os.CreateTemp(dir, "."+filepath.Base(real)+".init-*")
	if err != nil {
		return withCode(exitIOErr, err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return withCode(exitIOErr, err)
	}
	_, err = f.Write(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return withCode(exitIOErr, err)
	}
	cfg, err := config.Load(tmp)
	if err != nil {
		return withCode(exitSoftware, errors.New(strings.ReplaceAll(err.Error(), tmp, real)))
	}
	if err := initVerify(cfg, old, p); err != nil {
		return withCode(exitSoftware, err)
	}
	// Another writer since we read it (an editor, a second init)? Then keep theirs.
	now, err := os.ReadFile(real)
	if (created && !errors.Is(err, fs.ErrNotExist)) || (!created && (err != nil || !bytes.Equal(now, before))) {
		return withCode(exitTempFail, fmt.Errorf("%s changed while popfetch init ran; nothing written: run it again", real))
	}
	if err := os.Rename(tmp, real); err != nil {
		return withCode(exitIOErr, err)
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// initVerify checks the loaded result: the new account as written, the others as they were.
func initVerify(cfg *config.Config, old *config.Config, p initProfile) error {
	a := cfg.Account(p.name)
	if a == nil || a.Host != p.host || a.Port != p.port || a.TLS != p.tls || a.User != p.user {
		return fmt.Errorf("the account %q does not read back as written", p.name)
	}
	if old == nil {
		return nil
	}
	for _, oa := range old.Accounts {
		if oa.Name == p.name {
			continue
		}
		if na := cfg.Account(oa.Name); na == nil || !reflect.DeepEqual(viewOf(na), viewOf(oa)) {
			return fmt.Errorf("the account %q would change", oa.Name)
		}
	}
	if len(cfg.Accounts) != len(old.Accounts)+1 && old.Account(p.name) == nil {
		return errors.New("unexpected accounts")
	}
	return nil
}

// initInsertText adds the account block (name at column 0) to the block mapping under accounts:,
// as text, so that everything else of the file stays byte for byte: after the last account, or in
// place of the account of the same name (--force). It fails for layouts it does not handle (flow
// style), which initInsertNode then handles.
func initInsertText(old []byte, p initProfile) ([]byte, error) {
	name := p.name
	var doc yaml.Node
	if err := yaml.Unmarshal(old, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("not a YAML document")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode || root.Style&yaml.FlowStyle != 0 {
		return nil, errors.New("the top level is not a block mapping")
	}
	ai := -1
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "accounts" {
			ai = i
		}
	}
	if ai < 0 {
		return nil, errors.New("no accounts:")
	}
	accts := root.Content[ai+1]
	if accts.Kind != yaml.MappingNode || accts.Style&yaml.FlowStyle != 0 || len(accts.Content) == 0 {
		return nil, errors.New("accounts: is not a block mapping")
	}
	indent := accts.Content[0].Column - 1
	if indent < 1 {
		return nil, errors.New("accounts are not indented")
	}
	// Indent the new account's keys as the first block-style account does.
	inner := 2
	for k := 1; k < len(accts.Content); k += 2 {
		if v := accts.Content[k]; v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 {
			if n := v.Content[0].Column - 1 - indent; n >= 2 && n <= 8 {
				inner = n
			}
			break
		}
	}
	block, err := p.block(inner)
	if err != nil {
		return nil, err
	}
	lines := strings.SplitAfter(string(old), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	nl := "\n"
	if strings.Contains(string(old), "\r\n") {
		nl = "\r\n"
	}
	if n := len(lines); n > 0 && !strings.HasSuffix(lines[n-1], "\n") {
		lines[n-1] += nl
	}
	// The end of the accounts: block: the next top-level key, less the comments and blank lines
	// before it (they belong to that key).
	end := len(lines)
	if ai+2 < len(root.Content) {
		end = initBackOver(lines, root.Content[ai+2].Line-1, 0)
	}
	text := string(initIndent(block, indent))
	if nl != "\n" {
		text = strings.ReplaceAll(text, "\n", nl)
	}
	start, stop := end, end
	for k := 0; k+1 < len(accts.Content); k += 2 {
		if accts.Content[k].Value != name {
			continue
		}
		start = accts.Content[k].Line - 1
		if k+2 < len(accts.Content) {
			stop = initBackOver(lines, accts.Content[k+2].Line-1, indent)
		}
		if start >= stop || accts.Content[k].Column-1 != indent {
			return nil, errors.New("unexpected layout of the account")
		}
	}
	if start > len(lines) || stop > len(lines) {
		return nil, errors.New("unexpected layout")
	}
	out := strings.Join(lines[:start], "") + text + strings.Join(lines[stop:], "")
	return []byte(out), nil
}

// initBackOver moves line index i up over blank lines and comment lines indented by at most maxIndent.
func initBackOver(lines []string, i, maxIndent int) int {
	for i > 0 {
		l := strings.TrimRight(lines[i-1], "\r\n")
		t := strings.TrimLeft(l, " ")
		if t != "" && !(strings.HasPrefix(t, "#") && len(l)-len(t) <= maxIndent) {
			break
		}
		i--
	}
	return i
}

// initInsertNode adds the account with yaml.v3 node editing: comments are kept, but the file is
// re-indented as yaml.v3 writes it. Used when initInsertText cannot handle the layout.
func initInsertNode(old []byte, name string, acct *yaml.Node) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(old, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("not a YAML document")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, errors.New("the top level is not a mapping")
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "accounts" {
			continue
		}
		accts := root.Content[i+1]
		if accts.Kind != yaml.MappingNode {
			return nil, errors.New("accounts: is not a mapping")
		}
		indent := 2
		if len(accts.Content) > 0 && accts.Style&yaml.FlowStyle == 0 && accts.Content[0].Column > 1 {
			indent = accts.Content[0].Column - 1
		}
		// A flow mapping ({a: ..., b: ...}) becomes a block one: one account per line is easier to
		// read than everything on one line. The accounts themselves keep their style.
		root.Style &^= yaml.FlowStyle
		if accts.Style&yaml.FlowStyle != 0 {
			accts.Style &^= yaml.FlowStyle
			if key := root.Content[i]; key.LineComment == "" { // a block mapping shows none of its own
				key.LineComment, accts.LineComment = accts.LineComment, ""
			}
		}
		for k := 0; k+1 < len(accts.Content); k += 2 {
			if accts.Content[k].Value == name {
				accts.Content[k+1] = acct
				return initEncode(&doc, indent)
			}
		}
		accts.Content = append(accts.Content, initScalar("!!str", name), acct)
		return initEncode(&doc, indent)
	}
	return nil, errors.New("no accounts:")
}
