//go:build unix

package main

// Hardening, network and secrets (issue 12 points 4 and 8, issue 17 points 1, 6 and 7): secrets kept
// from children's environments, the SMTP destination's certificate checks, OAuth2 endpoints that
// redirect, discovery that cannot become a connection flood, and resource exhaustion that backs off.

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/popfetch/popfetch/config/oauth2test"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/internal/discover"
)

// TestRelHardeningSecretEnv (issue 12.4): neither the MDA nor password_command inherits a variable
// that holds a secret of the profile (password_env, oauth2.client_secret_env, of any account).
func TestRelHardeningSecretEnv(t *testing.T) {
	relTrack(t)
	const clientSecretEnv, clientSecret = "REL_CLIENT_SECRET", "Cs-41b9e0-CLIENT-SECRET-kk"
	seeded := relMessages("env", 2)
	srv, ca := relServer(t, pop3test.Options{Messages: relToServer(seeded)})
	dir := t.TempDir()
	dumps := filepath.Join(dir, "dumps")
	if err := os.Mkdir(dumps, 0o700); err != nil {
		t.Fatal(err)
	}
	// Each child writes its whole environment (NUL-separated, as /proc shows it) to a file.
	mda := filepath.Join(dir, "mda.sh")
	pw := filepath.Join(dir, "password.sh")
	for path, script := range map[string]string{
		mda: fmt.Sprintf("#!/bin/sh\ncat /proc/$$/environ > '%s/mda.'$$\ncat > /dev/null\n", dumps),
		pw:  fmt.Sprintf("#!/bin/sh\ncat /proc/$$/environ > '%s/password-command.'$$\necho '%s'\n", dumps, relPassword),
	} {
		if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	deliver := fmt.Sprintf("{mda: [%q]}", mda)
	setup := relNewProfile(t, dir)
	setup.addAt("fromenv", srv.Port(), "ca_file: "+ca, "keep: true", "deliver: "+deliver)
	setup.addAt("fromcommand", srv.Port(), "ca_file: "+ca, "keep: true", "deliver: "+deliver, "password_env: -", fmt.Sprintf("password_command: [%q]", pw))
	// Never synced here: its client secret's variable must be kept from the others' children too.
	setup.addAt("oauth", srv.Port(), "ca_file: "+ca, "auth: xoauth2", "deliver: "+deliver, "password_env: -",
		"oauth2: {provider: custom, client_id: x, token_url: \"https://auth.example.com/token\", auth_url: \"https://auth.example.com/auth\", client_secret_env: "+clientSecretEnv+"}")
	setup.env = append(setup.env, clientSecretEnv+"="+clientSecret)
	r := setup.run("sync", "fromenv", "fromcommand")
	if r.code != 0 {
		t.Fatalf("sync: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	ents, err := os.ReadDir(dumps)
	if err != nil {
		t.Fatal(err)
	}
	var mdas, commands int
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dumps, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		env := "\x00" + string(b)
		for _, bad := range []string{relPassword, clientSecret, "\x00" + relPasswordEnv + "=", "\x00" + clientSecretEnv + "="} {
			if strings.Contains(env, bad) {
				t.Errorf("%s: the child's environment holds %q", e.Name(), strings.Trim(bad, "\x00"))
			}
		}
		if !strings.Contains(env, "\x00POPFETCH_ACCOUNT=") || !strings.Contains(env, "\x00PATH=") {
			t.Errorf("%s: the child's environment lacks POPFETCH_ACCOUNT or PATH: %q", e.Name(), b)
		}
		if strings.HasPrefix(e.Name(), "mda.") {
			mdas++
		} else {
			commands++
		}
	}
	if mdas != 2*len(seeded) || commands != 1 {
		t.Fatalf("%d MDA runs and %d password_command runs, want %d and 1", mdas, commands, 2*len(seeded))
	}
	relRecord("hardening", "Secrets kept from children (password_env, client_secret_env) — issue 12.4",
		"the MDA and password_command run with popfetch's environment minus every password_env and client_secret_env variable of the file; they still get PATH and POPFETCH_ACCOUNT",
		r.code, 0, 0)
}

// TestRelHardeningOAuthRedirect (issue 17.1): a token endpoint that answers a refresh with a 307 to
// another address (here 127.0.0.2, standing for an attacker's host) gets nothing from popfetch: the
// second listener receives no request, no token is stored, no POP3 login happens; exit 77 with one
// line naming the endpoint. The same for the device authorization endpoint of `oauth2 login --device`.
func TestRelHardeningOAuthRedirect(t *testing.T) {
	relTrack(t)
	auth := oauth2test.NewServer(t, nil)
	pop := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Token: "test-access-token", Messages: oauthMessages("r", 2)})
	s := oauthNewSetup(t, auth, pop, "xoauth2")
	if r := s.login(); r.code != 0 {
		t.Fatalf("login: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	s.expire()
	tokenFile := filepath.Join(s.stateDir, "work.oauth2")
	before, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	logins := len(pop.Received())

	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2: %v", err)
	}
	var stolen atomic.Int32
	thief := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"test-access-token","token_type":"Bearer","expires_in":3600,"refresh_token":"stolen-refresh"}`)
	})}}
	thief.Start()
	defer thief.Close()
	auth.SetRedirect(thief.URL+"/steal", http.StatusTemporaryRedirect)

	r := s.run("sync")
	after, _ := os.ReadFile(tokenFile)
	line, lineErr := relOneLine(r.stderr, "work")
	switch {
	case stolen.Load() != 0:
		t.Errorf("the redirect target received %d requests", stolen.Load())
	case r.code != exitNoPerm:
		t.Errorf("sync: exit %d, want %d; stderr:\n%s", r.code, exitNoPerm, r.stderr)
	case lineErr != nil:
		t.Errorf("sync: %v", lineErr)
	case !strings.Contains(line, auth.TokenURL()+" answered HTTP 307, a redirect to \""+thief.URL+"/steal\"") ||
		!strings.Contains(line, "does not follow redirects"):
		t.Errorf("sync: the message does not name the endpoint and the redirect: %s", line)
	case !bytes.Equal(before, after):
		t.Errorf("the token file changed:\n%s\n->\n%s", before, after)
	case relCountCommands(pop, logins, "AUTH")+relCountCommands(pop, logins, "USER") != 0:
		t.Errorf("popfetch logged in to the POP3 server: %q", pop.Received()[logins:])
	}
	if auth.Grants("refresh_token") == 0 {
		t.Errorf("the token endpoint saw no refresh request")
	}

	// The device flow's first request goes to the device authorization endpoint.
	d := s.run("oauth2", "login", "--device", "--timeout", "30s", "work")
	if stolen.Load() != 0 || d.code != exitNoPerm || !strings.Contains(d.stderr, auth.DeviceAuthURL()+" answered HTTP 307") {
		t.Errorf("login --device: exit %d, %d requests at the redirect target; stderr:\n%s", d.code, stolen.Load(), d.stderr)
	}
	relRecord("hardening", "OAuth2 token endpoint redirects (307) a refresh to another host — issue 17.1",
		"no redirect followed (nothing reaches the other host), no token stored, no POP3 login; one line naming the endpoint and the redirect target",
		r.code, 0, 0)
}

// relSMTP is an SMTP server with STARTTLS that keeps what it accepts and whether it came over TLS.
type relSMTP struct {
	mu   sync.Mutex
	got  [][]byte
	tls  []bool
	Addr string
}

func (s *relSMTP) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &relSMTPSession{s: s, tls: isTLS}, nil
}

type relSMTPSession struct {
	s   *relSMTP
	tls bool
}

func (s *relSMTPSession) Reset()                               {}
func (s *relSMTPSession) Logout() error                        { return nil }
func (s *relSMTPSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *relSMTPSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *relSMTPSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.s.mu.Lock()
	defer s.s.mu.Unlock()
	s.s.got = append(s.s.got, bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")))
	s.s.tls = append(s.s.tls, s.tls)
	return nil
}

func (s *relSMTP) read() (map[string]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, plain := map[string]int{}, 0
	for i, b := range s.got {
		out[string(relStripReceived(b))]++
		if !s.tls[i] {
			plain++
		}
	}
	return out, plain
}

// relStartSMTP starts an SMTP server on 127.0.0.1 offering STARTTLS with cert.
func relStartSMTP(t *testing.T, cert tls.Certificate) *relSMTP {
	t.Helper()
	backend := &relSMTP{}
	s := smtp.NewServer(backend)
	s.Domain = "localhost"
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend.Addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return backend
}

// TestRelHardeningSMTPTLS (issue 12.8): `deliver: smtp` verifies the STARTTLS certificate unless the
// address is loopback or the profile says tls: opportunistic. A server with a certificate from an
// unknown CA gets nothing with tls: verify (exit 69, every message still on the POP3 server); the same
// server on its loopback address by default, and with ca_file naming its CA, gets every message over
// TLS.
func TestRelHardeningSMTPTLS(t *testing.T) {
	relTrack(t)
	ca, err := pop3test.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	// A host name that is not "localhost" is not loopback to the policy, whatever it resolves to: here
	// the machine's own name, when it resolves to a loopback address (as in most containers).
	byName := ""
	if h, err := os.Hostname(); err == nil && h != "localhost" {
		if ips, err := net.LookupIP(h); err == nil && len(ips) > 0 && ips[0].Equal(net.IPv4(127, 0, 0, 1)) {
			byName = h
		}
	}
	for _, c := range []struct {
		name, keys string
		code       int
		did        string
		host       string
	}{
		{"unknown CA, tls: verify", ", tls: verify", exitUnavailable,
			"refused before MAIL FROM: nothing delivered, every message left on the POP3 server", ""},
		{"unknown CA, address by host name (not loopback to the policy), no tls key", "", exitUnavailable,
			"verified by default, refused before MAIL FROM: nothing delivered, every message left on the POP3 server", byName},
		{"unknown CA, loopback address, no tls key", "", 0,
			"opportunistic STARTTLS (the default to a loopback address): delivered over TLS, unverified", ""},
		{"tls: verify with ca_file naming the server's CA", ", tls: verify, ca_file: " + caFile, 0,
			"verified STARTTLS: delivered", ""},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			if c.host == "" && strings.Contains(c.name, "host name") {
				t.Skip("the machine's host name does not resolve to 127.0.0.1")
			}
			seeded := relMessages("smtp", 3)
			srv, popCA := relServer(t, pop3test.Options{Messages: relToServer(seeded)})
			mta := relStartSMTP(t, cert)
			addr := mta.Addr
			if c.host != "" {
				_, port, _ := net.SplitHostPort(addr)
				addr = net.JoinHostPort(c.host, port)
			}
			setup := relNewProfile(t, t.TempDir())
			setup.addAt("acct", srv.Port(), "ca_file: "+popCA, fmt.Sprintf("deliver: {smtp: {address: %q, recipient: alice@localhost%s}}", addr, c.keys))
			r := setup.run("sync")
			got, plain := mta.read()
			tally := relCount(seeded, got, relServerData(srv))
			if r.code != c.code {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, c.code, r.stderr)
			}
			if !tally.ok() || plain != 0 {
				t.Errorf("%v; %d message(s) in plaintext", tally, plain)
			}
			did := c.did
			if c.code != 0 {
				line, err := relOneLine(r.stderr, "acct")
				if err != nil {
					t.Error(err)
				} else if !strings.Contains(line, "STARTTLS") || !strings.Contains(line, "certificate") {
					t.Errorf("the error does not say STARTTLS and certificate: %s", line)
				}
				if len(got) != 0 || tally.onServer != len(seeded) {
					t.Errorf("want nothing delivered and everything on the server: %v", tally)
				}
				t.Log(line)
				did += ": `" + strings.TrimPrefix(line, "popfetch: ") + "`"
			} else if tally.delivered != len(seeded) {
				t.Errorf("want every message delivered: %v", tally)
			}
			relRecord("hardening", "SMTP destination, STARTTLS certificate from an unknown CA: "+c.name+" — issue 12.8",
				did, r.code, tally.lost, tally.duplicated)
		})
	}
}

// relDNSFlood is an authoritative DNS server on 127.0.0.1, UDP and TCP on one port, answering from
// records; a UDP answer too large is truncated (TC) so that the resolver asks again over TCP. A name
// it does not hold is NXDOMAIN.
func relDNSFlood(t *testing.T, rrs []dns.RR) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative, m.Compress = true, true
		if len(r.Question) == 1 {
			q, known := r.Question[0], false
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
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			size := dns.MinMsgSize
			if o := r.IsEdns0(); o != nil {
				size = int(o.UDPSize())
			}
			m.Truncate(size)
		}
		_ = w.WriteMsg(m)
	})
	var pc net.PacketConn
	var ln net.Listener
	for range 20 { // a UDP port whose TCP twin is free
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if ln == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
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
	}
	return pc.LocalAddr().String()
}

// relConnCounter counts the connections its listeners accept, and the most open at once. It closes
// each connection itself after hold, and counts it closed before closing it: a probe can only end
// (and another start) after that, so the peak it sees is never above the number of probes popfetch
// really had in flight.
type relConnCounter struct {
	mu                sync.Mutex
	open, peak, total int
	hold              time.Duration
}

func (c *relConnCounter) listen(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.open++
			c.total++
			c.peak = max(c.peak, c.open)
			c.mu.Unlock()
			time.AfterFunc(c.hold, func() {
				c.mu.Lock()
				c.open--
				c.mu.Unlock()
				conn.Close()
			})
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func (c *relConnCounter) counts() (total, peak int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total, c.peak
}

// TestRelHardeningDiscoveryFlood (issue 17.6): `popfetch init` against a domain whose _pop3s._tcp and
// _pop3._tcp SRV answers hold 2,900 records each (one host, 2,900 ports, each a listener here: before,
// init opened one connection per record, all at once), plus
// the usual names: at most discover.MaxSRVTargets targets per SRV name are probed, at most discover.MaxProbes
// at once, and init says how many records it ignored.
func TestRelHardeningDiscoveryFlood(t *testing.T) {
	relTrack(t)
	const domain, records = "flood.test.", 2900
	counter := &relConnCounter{hold: 100 * time.Millisecond}
	var rrs []dns.RR
	hdr := func(name string, typ uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: 60}
	}
	for i := range records {
		port := uint16(counter.listen(t))
		for _, svc := range []string{"_pop3s._tcp.", "_pop3._tcp."} {
			rrs = append(rrs, &dns.SRV{Hdr: hdr(svc+domain, dns.TypeSRV), Priority: 10, Weight: uint16(i % 7), Port: port, Target: "x."})
		}
	}
	// The target's name is short so that 2,900 records fit in one DNS message (RFC 2782 forbids
	// compressing it).
	for _, h := range []string{"x.", "pop." + domain, "pop3." + domain, "mail." + domain} {
		rrs = append(rrs, &dns.A{Hdr: hdr(h, dns.TypeA), A: net.IPv4(127, 0, 0, 1)})
	}
	dnsAddr := relDNSFlood(t, rrs)
	usual := counter.listen(t)
	env := []string{"HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + t.TempDir()}
	r, err := runBinary(runOpts{env: env, timeout: relRunTimeout}, "init", "--test-ports", fmt.Sprintf("995=%d,110=%d", usual, usual), "--email", "mallory@flood.test", "--dns-server", dnsAddr, "--timeout", "10s", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	total, peak := counter.counts()
	// Candidates: discover.MaxSRVTargets per SRV name (implicit TLS for _pop3s, STLS for _pop3), and the
	// three usual names in both modes.
	maxConns := 2*discover.MaxSRVTargets + 2*len(discover.UsualNames)
	t.Logf("exit %d, %d connections, at most %d at once; stderr:\n%s", r.code, total, peak, r.stderr)
	if total > maxConns || peak > discover.MaxProbes {
		t.Errorf("%d connections (want at most %d), %d at once (want at most %d)", total, maxConns, peak, discover.MaxProbes)
	}
	if total <= discover.MaxProbes {
		t.Errorf("only %d connections: the test does not exercise the limit of probes in flight", total)
	}
	for _, svc := range []string{"_pop3s._tcp.", "_pop3._tcp."} {
		want := fmt.Sprintf("SRV %s%s: %d more record(s) ignored", svc, strings.TrimSuffix(domain, "."), records-discover.MaxSRVTargets)
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if n := strings.Count(r.stderr, "\n"); n > 60 {
		t.Errorf("stderr has %d lines", n)
	}
	if r.code != exitUsage { // nothing worked: every server closed the connection
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	relRecord("hardening", "`popfetch init`: SRV answers of 2,900 records each (one host, 2,900 ports) — issue 17.6",
		fmt.Sprintf("%d connections, at most %d at once (before: one per record, all at once); a note says how many records were ignored", total, peak),
		r.code, 0, 0)
}

// relPrlimit is the wrapper that runs popfetch with at most n open files, or skips the test.
func relPrlimit(t *testing.T, n int) []string {
	t.Helper()
	p, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	return []string{p, fmt.Sprintf("--nofile=%d:%d", n, n), "--"}
}

// relManyAccounts starts n servers with 2 messages each and writes a configuration with an account
// for each.
//
// Every server holds its connections before the TLS handshake until open is called (pop3test's
// Gate): the sessions of a run stay connected, each holding its descriptors, however fast the
// machine is, so that a run with --jobs 40 meets the file limit for certain.
func relManyAccounts(t *testing.T, n int, kv ...string) (setup *profile, servers []*pop3test.Server, seeded [][]relMessage, open func()) {
	t.Helper()
	gate := make(chan struct{})
	open = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open)
	setup = relNewProfile(t, t.TempDir())
	for i := range n {
		msgs := relMessages(fmt.Sprintf("fd%02d", i), 2)
		srv, ca := relServer(t, pop3test.Options{Messages: relToServer(msgs), Gate: gate})
		setup.addAt(fmt.Sprintf("acct%02d", i), srv.Port(), append([]string{"ca_file: " + ca}, kv...)...)
		servers = append(servers, srv)
		seeded = append(seeded, msgs)
	}
	return setup, servers, seeded, open
}

// relStartWrapped starts `WRAPPER popfetch ARGS…` with its stderr collected as it comes, and kills
// it when the test ends.
func relStartWrapped(t *testing.T, env, wrapper []string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(wrapper[0], append(wrapper[1:], append([]string{popfetchBin}, args...)...)...)
	cmd.Env = env
	return startLogged(t, cmd)
}

// TestRelHardeningFileLimit (issue 17.7): 40 accounts at once (--jobs 40) with 64 file descriptors.
// "Too many open files" wherever it strikes (state file, lock, dial, maildir, CA file) is temporary:
// exit 75, never 74 or 70; nothing is lost or delivered twice, and a run with enough descriptors then
// fetches the rest.
func TestRelHardeningFileLimit(t *testing.T) {
	relTrack(t)
	wrapper := relPrlimit(t, 64)
	const n = 40
	// One host (127.0.0.1): max_connections lets all 40 run at once.
	setup, servers, seeded, open := relManyAccounts(t, n, "max_connections: 40")
	run := relStartWrapped(t, setup.env, wrapper, "--config", setup.path, "sync", "--jobs", fmt.Sprint(n))
	// The servers hold every session: the accounts that got their descriptors keep them until an
	// account has run out.
	run.waitLog(t, "too many open files")
	open()
	select {
	case <-run.exited:
	case <-time.After(relRunTimeout):
		t.Fatalf("sync did not exit within %v", relRunTimeout)
	}
	r := result{code: run.cmd.ProcessState.ExitCode(), stderr: run.stderr.String()}
	failed := 0
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if line == "" {
			continue
		}
		failed++
		if !strings.Contains(line, "too many open files") {
			t.Errorf("an error that is not the file limit: %s", line)
		}
	}
	t.Logf("under 64 descriptors: exit %d, %d of %d accounts failed; first lines:\n%.2000s", r.code, failed, n, r.stderr)
	if failed == 0 {
		t.Fatalf("no account ran out of descriptors (exit %d): the test shows nothing", r.code)
	}
	first := r.code
	if first != exitTempFail {
		t.Errorf("exit %d with accounts out of file descriptors, want %d", first, exitTempFail)
	}
	// Then with the normal limit: everything arrives, exactly once.
	r = setup.run("sync", "--jobs", "4")
	if r.code != 0 {
		t.Errorf("second run: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	var lost, dup int
	for i, srv := range servers {
		tally := relCount(seeded[i], relReadMaildir(t, relMaildir(setup.dir, fmt.Sprintf("acct%02d", i))), relServerData(srv))
		lost, dup = lost+tally.lost, dup+tally.duplicated
		if !tally.ok() || tally.delivered != len(seeded[i]) {
			t.Errorf("acct%02d: %v", i, tally)
		}
	}
	relRecord("hardening", "40 accounts at once (`sync --jobs 40`) with 64 file descriptors (`prlimit --nofile=64`) — issue 17.7",
		fmt.Sprintf("%d of %d accounts stopped with \"too many open files\" (state file, lock, dial or maildir), each a temporary failure; the next run fetched the rest", failed, n),
		fmt.Sprintf("%d, then %d", first, r.code), lost, dup)
}

// TestRelHardeningDaemonFileLimit (issue 17.7): `popfetch daemon --jobs 40` with 64 file
// descriptors. The polls that run out of descriptors are temporary failures (backoff, not an
// error retried at every interval), the daemon halves the polls it runs at once and says so, and
// nothing is lost or delivered twice.
func TestRelHardeningDaemonFileLimit(t *testing.T) {
	relTrack(t)
	wrapper := relPrlimit(t, 64)
	const n = 40
	setup, servers, seeded, open := relManyAccounts(t, n, "interval: 1h", "max_connections: 40")
	p := relStartWrapped(t, setup.env, wrapper, "--config", setup.path, "daemon", "--jobs", fmt.Sprint(n))
	// The first polls are spread over the interval: SIGUSR1 makes every account due at once. The
	// servers hold the sessions until a poll has run out of descriptors.
	p.waitLog(t, "popfetch: daemon started")
	p.signal(t, syscall.SIGUSR1)
	lowered := p.waitLog(t, "ran out of file descriptors or memory: polling at most 20 account(s) at once from now on (--jobs 40)")
	open()
	p.waitLog(t, "(temporary failure 1 in a row: backing off)")
	// Every account has polled once when the log has a line for each.
	daemonWaitFor(t, "a log line for every account", func() bool {
		log := p.stderr.String()
		for i := range n {
			if !strings.Contains(log, fmt.Sprintf("Z acct%02d: ", i)) {
				return false
			}
		}
		return true
	})
	code, _ := p.stop(t)
	log := p.stderr.String()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, ": error: ") && (!strings.Contains(line, "too many open files") || !strings.Contains(line, "backing off")) {
			t.Errorf("an error line that is not a temporary failure from the file limit: %s", line)
		}
	}
	if code != 0 {
		t.Errorf("daemon: exit %d after SIGTERM", code)
	}
	r := setup.run("sync")
	if r.code != 0 {
		t.Errorf("sync after the daemon: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	var lost, dup int
	for i, srv := range servers {
		tally := relCount(seeded[i], relReadMaildir(t, relMaildir(setup.dir, fmt.Sprintf("acct%02d", i))), relServerData(srv))
		lost, dup = lost+tally.lost, dup+tally.duplicated
		if !tally.ok() || tally.delivered != len(seeded[i]) {
			t.Errorf("acct%02d: %v", i, tally)
		}
	}
	_, lowered, _ = strings.Cut(lowered, "Z ")
	relRecord("hardening", "`popfetch daemon --jobs 40`, 40 accounts, 64 file descriptors — issue 17.7",
		"polls out of descriptors are temporary (backoff); the daemon halves its concurrency and logs `"+lowered+"`; a sync afterwards fetched the rest",
		fmt.Sprintf("%d (SIGTERM), then %d", code, r.code), lost, dup)
}
