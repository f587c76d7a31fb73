package main

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// initDNS starts an authoritative DNS server on 127.0.0.1 (UDP) that answers from records, given in
// zone-file syntax; a name it does not hold is NXDOMAIN. It returns its address for --dns-server.
func initDNS(t *testing.T, records ...string) string {
	t.Helper()
	var rrs []dns.RR
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		rrs = append(rrs, rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Authoritative, m.RecursionAvailable = true, true
			if len(r.Question) == 1 {
				q := r.Question[0]
				known := false
				for _, rr := range rrs {
					if strings.EqualFold(rr.Header().Name, q.Name) {
						known = true
						if rr.Header().Rrtype == q.Qtype {
							m.Answer = append(m.Answer, rr)
						}
					}
				}
				if !known {
					m.Rcode = dns.RcodeNameError
				}
			}
			_ = w.WriteMsg(m)
		})}
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("DNS server: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return pc.LocalAddr().String()
}

// initPKI is a test CA whose certificate for hosts the servers present; caFile holds it (PEM).
type initPKI struct {
	ca     *pop3test.CA
	caFile string
}

func initNewPKI(t *testing.T) initPKI {
	t.Helper()
	ca, err := pop3test.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return initPKI{ca: ca, caFile: writeFile(t, "ca.pem", string(ca.PEM()), 0o600)}
}

// server starts a pop3test server whose certificate names hosts.
func (p initPKI) server(t *testing.T, mode pop3test.TLSMode, opts pop3test.Options, hosts ...string) *pop3test.Server {
	t.Helper()
	now := time.Now()
	cert, err := p.ca.Issue(hosts, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	opts.TLS, opts.Certificate = mode, &cert
	return pop3test.NewServer(t, &opts)
}

// initLoad loads YAML text as a configuration file.
func initLoad(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Load(writeFile(t, "config.yaml", text, 0o600))
	if err != nil {
		t.Fatalf("config.Load: %v\n%s", err, text)
	}
	return cfg
}

func initPort(s *pop3test.Server) string { return strconv.Itoa(s.Port()) }

// TestInitSRVImplicit: _pop3s._tcp points at an implicit-TLS server (and _pop3._tcp at an STLS one):
// init proposes implicit TLS on the SRV target and port; --dry-run prints a profile that loads and
// writes nothing.
func TestInitSRVImplicit(t *testing.T) {
	t.Parallel()
	pki := initNewPKI(t)
	s := pki.server(t, pop3test.ImplicitTLS, pop3test.Options{}, "pop3s-host.example.test")
	st := pki.server(t, pop3test.STLS, pop3test.Options{}, "stls-host.example.test")
	dnsAddr := initDNS(t,
		"_pop3s._tcp.example.test. 60 IN SRV 10 1 "+initPort(s)+" pop3s-host.example.test.",
		"_pop3._tcp.example.test. 60 IN SRV 0 1 "+initPort(st)+" stls-host.example.test.",
		"pop3s-host.example.test. 60 IN A 127.0.0.1",
		"stls-host.example.test. 60 IN A 127.0.0.1")
	xdg := t.TempDir()
	r := popfetch(t, "", []string{"XDG_CONFIG_HOME=" + xdg}, "init", "--email", "alice@example.test",
		"--dns-server", dnsAddr, "--ca-file", pki.caFile, "--dry-run")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	a := initLoad(t, r.stdout).Account("example")
	if a == nil || a.Host != "pop3s-host.example.test" || a.Port != s.Port() || a.TLS != config.TLSImplicit ||
		a.User != "alice@example.test" || a.CAFile != pki.caFile || a.Password.Kind != config.SourceKeyring {
		t.Errorf("profile:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	for _, want := range []string{"SRV _pop3s._tcp.example.test: pop3s-host.example.test port " + initPort(s),
		"stls-host.example.test:" + initPort(st), "UIDL, PIPELINING", "dry run: nothing written"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(xdg); len(entries) != 0 {
		t.Errorf("--dry-run wrote %v", entries)
	}
}

// TestInitSRVStartTLS: only _pop3._tcp (and _pop3s._tcp is "."): a starttls profile, written to a new
// file 0600 in a new directory 0700, that `popfetch config check` accepts.
func TestInitSRVStartTLS(t *testing.T) {
	t.Parallel()
	pki := initNewPKI(t)
	st := pki.server(t, pop3test.STLS, pop3test.Options{SASL: []string{"PLAIN"}}, "mx.example.test")
	dnsAddr := initDNS(t,
		"_pop3s._tcp.example.test. 60 IN SRV 0 0 0 .",
		"_pop3._tcp.example.test. 60 IN SRV 0 1 "+initPort(st)+" mx.example.test.",
		"mx.example.test. 60 IN A 127.0.0.1")
	xdg := t.TempDir()
	r := popfetch(t, "", []string{"XDG_CONFIG_HOME=" + xdg}, "init", "--email", "bob@example.test",
		"--dns-server", dnsAddr, "--ca-file", pki.caFile, "--account", "work", "--maildir", "/var/mail/bob")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	path := filepath.Join(xdg, "popfetch", "config.yaml")
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, mode %v, want %v", p, err, fi.Mode().Perm(), want)
		}
	}
	data, _ := os.ReadFile(path)
	a := initLoad(t, string(data)).Account("work")
	if a == nil || a.Host != "mx.example.test" || a.Port != st.Port() || a.TLS != config.TLSStartTLS ||
		a.Deliver.Path != "/var/mail/bob" {
		t.Errorf("profile:\n%s", data)
	}
	for _, want := range []string{`"." (the domain says: not offered)`, "SASL PLAIN", "popfetch password set work",
		"popfetch sync --dry-run"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, r.stderr)
		}
	}
	if c := popfetch(t, "", []string{"XDG_CONFIG_HOME=" + xdg}, "config", "check"); c.code != 0 ||
		!strings.Contains(c.stdout, "tls:                  starttls") {
		t.Errorf("config check: exit %d\n%s%s", c.code, c.stdout, c.stderr)
	}
}

// TestInitUsualNames: no SRV record; pop.DOMAIN answers on "995" and "110" (remapped for the test):
// implicit TLS wins over STLS.
func TestInitUsualNames(t *testing.T) {
	t.Parallel()
	pki := initNewPKI(t)
	s := pki.server(t, pop3test.ImplicitTLS, pop3test.Options{NoPipelining: true}, "pop.example.test")
	st := pki.server(t, pop3test.STLS, pop3test.Options{}, "pop.example.test")
	dnsAddr := initDNS(t, "pop.example.test. 60 IN A 127.0.0.1")
	r := popfetch(t, "", nil, "init", "--test-ports", "995="+initPort(s)+",110="+initPort(st),
		"--email", "carol@example.test", "--dns-server", dnsAddr, "--ca-file", pki.caFile, "--dry-run")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	a := initLoad(t, r.stdout).Account("example")
	if a == nil || a.Host != "pop.example.test" || a.Port != s.Port() || a.TLS != config.TLSImplicit {
		t.Errorf("profile:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	for _, want := range []string{"SRV _pop3s._tcp.example.test: none", "no PIPELINING", "pop.example.test:" + initPort(st)} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, r.stderr)
		}
	}
}

// TestInitStrippedSTLS: the only server named by DNS does not offer STLS (as after a STARTTLS
// stripping attack): it is not proposed, and without a terminal init exits 64.
func TestInitStrippedSTLS(t *testing.T) {
	t.Parallel()
	pki := initNewPKI(t)
	st := pki.server(t, pop3test.STLS, pop3test.Options{NoSTLS: true}, "mx.example.test")
	dnsAddr := initDNS(t,
		"_pop3._tcp.example.test. 60 IN SRV 0 1 "+initPort(st)+" mx.example.test.",
		"mx.example.test. 60 IN A 127.0.0.1")
	xdg := t.TempDir()
	r := popfetch(t, "", []string{"XDG_CONFIG_HOME=" + xdg}, "init", "--email", "bob@example.test",
		"--dns-server", dnsAddr, "--ca-file", pki.caFile)
	t.Logf("stderr:\n%s", r.stderr)
	if r.code != exitUsage || r.stdout != "" {
		t.Fatalf("exit %d, want 64; stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"failed  mx.example.test:" + initPort(st) + "  STLS", "does not offer STLS",
		"found no working POP3 server for example.test", "--host HOST", "--tls implicit|starttls"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(xdg); len(entries) != 0 {
		t.Errorf("wrote %v", entries)
	}
}

// TestInitPlainOnlyWhenAsked: a server without TLS is proposed only with --tls none.
func TestInitPlainOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.Plain})
	dnsAddr := initDNS(t,
		"_pop3._tcp.example.test. 60 IN SRV 0 1 "+initPort(s)+" plain.example.test.",
		"plain.example.test. 60 IN A 127.0.0.1")
	args := []string{"init", "--email", "frank@example.test", "--dns-server", dnsAddr, "--password-env", "FRANK_PW", "--dry-run"}
	if r := popfetch(t, "", nil, args...); r.code != exitUsage || !strings.Contains(r.stderr, "does not offer STLS") {
		t.Errorf("without --tls none: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r := popfetch(t, "", nil, append(args, "--tls", "none")...)
	if r.code != 0 {
		t.Fatalf("--tls none: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	a := initLoad(t, r.stdout).Account("example")
	if a == nil || a.Host != "plain.example.test" || a.Port != s.Port() || a.TLS != config.TLSNone ||
		a.Password.Kind != config.SourceEnv || a.Password.Env != "FRANK_PW" || !strings.Contains(r.stderr, "tls: none sends everything in clear") {
		t.Errorf("profile:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}

// TestInitNothingFound: nothing in DNS and no terminal: exit 64 naming the flags; a missing --email
// too. A certificate from an unknown CA is not trusted.
func TestInitNothingFound(t *testing.T) {
	t.Parallel()
	dnsAddr := initDNS(t)
	r := popfetch(t, "", nil, "init", "--email", "dave@example.test", "--dns-server", dnsAddr)
	if r.code != exitUsage || !strings.Contains(r.stderr, "--host HOST and --tls implicit|starttls") ||
		!strings.Contains(r.stderr, "no such host: pop.example.test, pop3.example.test, mail.example.test") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = popfetch(t, "", nil, "init")
	if r.code != exitUsage || !strings.Contains(r.stderr, "missing --email ADDRESS") {
		t.Errorf("no --email: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	for _, args := range [][]string{{"--email", "nobody"}, {"--email", "a@b.test", "--tls", "tls"},
		{"--email", "a@b.test", "--port", "99"}, {"--email", "a@b.test", "--auth", "magic"},
		{"--email", "a@b.test", "--password-env", "A", "--password-command", "pass x"}} {
		if r := popfetch(t, "", nil, append([]string{"init"}, args...)...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want 64; stderr:\n%s", args, r.code, r.stderr)
		}
	}

	// A server whose certificate comes from a CA the probe does not trust: refused.
	s := initNewPKI(t).server(t, pop3test.ImplicitTLS, pop3test.Options{}, "pop.example.test")
	dnsAddr = initDNS(t, "pop.example.test. 60 IN A 127.0.0.1")
	r = popfetch(t, "", nil, "init", "--test-ports", "995="+initPort(s), "--email", "erin@example.test",
		"--dns-server", dnsAddr, "--tls", "implicit")
	t.Logf("stderr:\n%s", r.stderr)
	if r.code != exitUsage || !strings.Contains(r.stderr, "unknown authority") || !strings.Contains(r.stderr, "--ca-file") {
		t.Errorf("untrusted certificate: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestInitExtend adds accounts to an existing file: its accounts and comments stay, `config check`
// passes; an existing account name is refused unless --force. A flow-style file is extended too.
func TestInitExtend(t *testing.T) {
	t.Parallel()
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS})
	ca := writeFile(t, "ca.pem", string(s.CACertPEM()), 0o600)
	const before = `# My mail.
state_dir: /tmp/popfetch-state   # where the state goes

accounts:
    # the office
    work:
        host: pop.example.com     # the office server
        user: alice
        deliver: {maildir: /var/mail/alice}
    home:
        host: pop.example.net
        user: alice
        password_env: HOME_PW
        deliver:
            mbox: /var/mail/home

# Everyone keeps mail.
defaults:
    keep: true
`
	path := writeFile(t, "config.yaml", before, 0o600)
	args := []string{"--config", path, "init", "--email", "alice@example.org", "--host", "127.0.0.1",
		"--port", initPort(s), "--ca-file", ca, "--password-command", "pass show mail/org"}
	r := popfetch(t, "", nil, args...)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	data, _ := os.ReadFile(path)
	after := string(data)
	t.Logf("stderr:\n%s\nfile:\n%s", r.stderr, after)
	// Every line of the file is still there, in order; the new account sits under accounts:.
	rest := after
	for _, l := range strings.SplitAfter(before, "\n") {
		i := strings.Index(rest, l)
		if i < 0 {
			t.Fatalf("line %q lost or moved:\n%s", l, after)
		}
		rest = rest[i+len(l):]
	}
	if !strings.Contains(after, "            mbox: /var/mail/home\n    example:\n") {
		t.Errorf("new account not after the last one:\n%s", after)
	}
	cfg := initLoad(t, after)
	if !reflect.DeepEqual(cfg.Names(), []string{"example", "home", "work"}) || !cfg.Account("example").Keep ||
		cfg.Account("example").Password.Kind != config.SourceCommand {
		t.Errorf("accounts %v:\n%s", cfg.Names(), after)
	}
	if c := popfetch(t, "", nil, "--config", path, "config", "check"); c.code != 0 || !strings.Contains(c.stdout, "OK, 3 accounts") {
		t.Errorf("config check: exit %d\n%s%s", c.code, c.stdout, c.stderr)
	}
	if !strings.Contains(r.stderr, "popfetch --config "+path+" sync --dry-run") {
		t.Errorf("next steps do not name the file:\n%s", r.stderr)
	}

	// The same name again: refused, the file untouched; --force replaces the account.
	for _, name := range []string{"work", "example"} {
		r = popfetch(t, "", nil, append(args, "--account", name)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, `account "`+name+`" already exists in `+path) ||
			!strings.Contains(r.stderr, "--force") {
			t.Errorf("%s again: exit %d, stderr:\n%s", name, r.code, r.stderr)
		}
	}
	if data, _ := os.ReadFile(path); string(data) != after {
		t.Errorf("a refused init changed the file:\n%s", data)
	}
	r = popfetch(t, "", nil, append(args, "--account", "work", "--force", "--user", "alice2")...)
	data, _ = os.ReadFile(path)
	t.Logf("after --force:\n%s", data)
	cfg = initLoad(t, string(data))
	if r.code != 0 || len(cfg.Accounts) != 3 || cfg.Account("work").Host != "127.0.0.1" || cfg.Account("work").User != "alice2" ||
		!strings.Contains(string(data), "# the office\n") || !strings.Contains(string(data), "# Everyone keeps mail.") ||
		strings.Contains(string(data), "the office server") {
		t.Errorf("--force: exit %d, stderr:\n%s\nfile:\n%s", r.code, r.stderr, data)
	}

	// A flow-style file: extended through yaml.v3 node editing.
	flow := writeFile(t, "flow.yaml", "accounts: {work: {host: pop.example.com, user: alice, deliver: {maildir: /m}}}  # one line\n", 0o640)
	r = popfetch(t, "", nil, "--config", flow, "init", "--email", "alice@example.org", "--host", "127.0.0.1",
		"--port", initPort(s), "--ca-file", ca)
	data, _ = os.ReadFile(flow)
	t.Logf("flow style:\n%s", data)
	if cfg := initLoad(t, string(data)); r.code != 0 || len(cfg.Accounts) != 2 || !strings.Contains(string(data), "# one line") {
		t.Errorf("flow style: exit %d, stderr:\n%s\nfile:\n%s", r.code, r.stderr, data)
	}
	if fi, _ := os.Stat(flow); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode of an extended file changed to %v", fi.Mode().Perm())
	}
}
