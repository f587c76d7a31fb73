package main

// Hardening, issue 12 point 1 and issue 17 point 8: server- and message-derived text never reaches the
// terminal raw. Each test runs the real binary against a server (or MDA, or authorization server) that
// puts terminal escapes in what popfetch shows — `ESC ] 0 ; … BEL` (set the window title) and `ESC [ 2 J`
// (clear the screen), and CSI as a C1 control both as UTF-8 U+009B and as a raw 0x9b byte — and asserts
// that no ESC, BEL, 0x9b byte, C1 character or bare CR leaves the process on stdout or stderr, and that
// the text is still shown (escaped by internal/termsafe).

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/internal/daemon"
)

// relEscOSC and relEscCSI are the escape payloads: set the window title, clear the screen.
const (
	relEscOSC = "\x1b]0;pwned\x07"
	relEscCSI = "\x1b[2J"
	// relEscPayload is both, as a hostile server sends them.
	relEscPayload = relEscOSC + relEscCSI
	// relEscShown is how popfetch shows relEscPayload.
	relEscShown = `\x1b]0;pwned\x07\x1b[2J`
)

// relEscCheck returns what is wrong with out as terminal output, or "".
func relEscCheck(out string) string {
	for i := 0; i < len(out); {
		c := out[i]
		switch {
		case c == 0x1b:
			return fmt.Sprintf("ESC at byte %d", i)
		case c == 0x07:
			return fmt.Sprintf("BEL at byte %d", i)
		case c == 0x9b:
			return fmt.Sprintf("a 0x9b byte at byte %d", i)
		case c == '\r' && (i+1 == len(out) || out[i+1] != '\n'):
			return fmt.Sprintf("a bare CR at byte %d", i)
		}
		r, size := utf8.DecodeRuneInString(out[i:])
		if r == utf8.RuneError && size == 1 && c >= 0x80 && c <= 0x9f {
			return fmt.Sprintf("a raw C1 byte 0x%02x at byte %d", c, i)
		}
		if r >= 0x80 && r <= 0x9f {
			return fmt.Sprintf("C1 control U+%04X at byte %d", r, i)
		}
		i += size
	}
	return ""
}

// relEscAssert fails the test if either stream of r carries a terminal control, or if stream (stdout or
// stderr) does not show every one of want.
func relEscAssert(t *testing.T, what string, r result, stream string, want ...string) {
	t.Helper()
	for name, out := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
		if bad := relEscCheck(out); bad != "" {
			t.Errorf("%s: %s carries %s:\n%q", what, name, bad, out)
		}
	}
	out := map[string]string{"stdout": r.stdout, "stderr": r.stderr}[stream]
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: %s does not show %q (escaped):\n%s", what, stream, w, out)
		}
	}
}

// relEscCert returns a self-signed certificate (its own CA) with the escape payload in its subject,
// issuer and DNS names, its PEM and its fingerprint. ips are added as IP SANs.
func relEscCert(t *testing.T, ips ...string) (tls.Certificate, []byte, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		// A UTF8String may carry anything: ESC, BEL and C1.
		Subject:               pkix.Name{CommonName: "cn" + relEscPayload + "\u009b2J", Organization: []string{"org" + relEscCSI}},
		DNSNames:              []string{"san" + relEscPayload + ".test", "second.test"}, // IA5String: ASCII
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pop3.FormatFingerprint(sha256.Sum256(der))
}

// TestRelHardeningEscapeHostMismatch: a certificate whose names hold terminal escapes, for a host it
// does not match (anyone on the path can present one, before login): every command's error line shows
// the names escaped, exit 69.
func TestRelHardeningEscapeHostMismatch(t *testing.T) {
	relTrack(t)
	t.Parallel()
	cert, certPEM, _ := relEscCert(t)
	msgs := relMessages("esc-host", 1)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Password: relPassword, Certificate: &cert,
		Messages: relToServer(msgs)})
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// A host name, not an address: Go's x509.HostnameError then lists the certificate's DNS names.
	setup := relNewProfile(t, dir)
	setup.addAt("work", s.Port(), "host: localhost", "ca_file: "+ca)
	for _, args := range [][]string{{"sync"}, {"check"}, {"list", "work"}, {"cat", "work", "1"}, {"serverinfo", "work"}} {
		r := setup.run(args...)
		if r.code != exitUnavailable {
			t.Errorf("%s: exit %d, want %d; stderr:\n%s", args[0], r.code, exitUnavailable, r.stderr)
		}
		relEscAssert(t, args[0], r, "stderr", "san"+relEscShown+".test")
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("the server holds %d message(s), want 1", n)
	}
	relRecord("hardening", "Certificate names with terminal escapes, host mismatch (issue 12.1)",
		"the error line of sync, check, list, cat and serverinfo shows the names escaped (`\\x1b]0;…\\x07\\x1b[2J`); no ESC/BEL/C1/bare CR leaves the process",
		exitUnavailable, 0, 0)
}

// TestRelHardeningEscapeServerinfo: serverinfo prints the greeting, the CAPA lines and the
// certificate's subject, issuer and names escaped; --json stays valid JSON without raw controls.
func TestRelHardeningEscapeServerinfo(t *testing.T) {
	relTrack(t)
	t.Parallel()
	cert, _, fp := relEscCert(t, "127.0.0.1")
	greeting := "+OK hi" + relEscPayload + " \u009b2J \x9b2J ready <1.2@host>"
	capa := "+OK\r\nUIDL\r\nUSER\r\nX-EVIL " + relEscPayload + " \u009b2J \x9b2J\r\n.\r\n"
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Password: relPassword, Certificate: &cert,
		Faults: []pop3test.Fault{{Command: "GREETING", Action: pop3test.Reply, Reply: greeting},
			{Command: "CAPA", Action: pop3test.ReplyRaw, Reply: capa}}})
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("work", s.Port(), "tls_fingerprint: "+fp)
	r := setup.run("serverinfo", "work")
	if r.code != 0 {
		t.Fatalf("serverinfo: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	relEscAssert(t, "serverinfo", r, "stdout",
		"Greeting:     hi"+relEscShown+` \u009b2J \x9b2J ready`, // greeting
		"X-EVIL "+relEscShown+` \u009b2J \x9b2J`,                // CAPA
		`\x1b[2J\u009b2J,O=org\x1b[2J`,                          // subject and issuer (self-signed)
		"san"+relEscShown+".test")                               // DNS names
	r = setup.run("--json", "serverinfo", "work")
	if r.code != 0 {
		t.Fatalf("serverinfo --json: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	relEscAssert(t, "serverinfo --json", r, "stdout")
	var info struct {
		Greeting     string              `json:"greeting"`
		Capabilities map[string][]string `json:"capabilities"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("serverinfo --json is not JSON: %v\n%s", err, r.stdout)
	}
	// JSON carries the values themselves (escaped as JSON): a program gets what the server sent, with
	// invalid UTF-8 replaced by U+FFFD.
	if want := "hi" + relEscPayload + " \u009b2J \ufffd2J ready <1.2@host>"; info.Greeting != want {
		t.Errorf("--json greeting = %q, want %q", info.Greeting, want)
	}
	relRecord("hardening", "Greeting, CAPA and certificate names with terminal escapes: `serverinfo` (issue 12.1)",
		"printed escaped (`\\x1b`, `\\u009b`, `\\x9b`); `--json` is valid JSON carrying the values, controls as `\\u` escapes",
		0, 0, 0)
}

// TestRelHardeningEscapeMDAOutput: an MDA that fails and echoes the message (whose Subject holds the
// escapes) on stderr: the error line quotes its output escaped, exit 74, the message stays on the server.
func TestRelHardeningEscapeMDAOutput(t *testing.T) {
	relTrack(t)
	t.Parallel()
	data := "Subject: hello" + relEscPayload + " \u009b2J \x9b2J\r\nFrom: a@example.org\r\n\r\nbody\r\n"
	s, ca := relServer(t, pop3test.Options{Messages: []pop3test.Message{{UID: "esc-mda-1", Data: []byte(data)}}})
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("work", s.Port(), "ca_file: "+ca, `deliver: {mda: "cat >&2; exit 1"}`)
	r := setup.run("sync")
	if r.code != exitIOErr {
		t.Fatalf("sync: exit %d, want %d; stderr:\n%s", r.code, exitIOErr, r.stderr)
	}
	relEscAssert(t, "sync", r, "stderr", "Subject: hello"+relEscShown+` \u009b2J \x9b2J`)
	lost := 0
	if len(s.Messages()) != 1 {
		lost = 1
		t.Errorf("the server holds %d message(s), want 1", len(s.Messages()))
	}
	relRecord("hardening", "MDA output (echoing a Subject with terminal escapes) in the error line (issue 12.1)",
		"the MDA's output tail is shown escaped; the message stays on the server", exitIOErr, lost, 0)
}

// TestRelHardeningEscapeTraceAuthLogin: --trace of an AUTH LOGIN whose server challenge holds the
// escapes: the trace line shows it escaped.
func TestRelHardeningEscapeTraceAuthLogin(t *testing.T) {
	relTrack(t)
	t.Parallel()
	s, ca := relServer(t, pop3test.Options{SASL: []string{"LOGIN"}, Messages: relToServer(relMessages("esc-trace", 1)),
		Faults: []pop3test.Fault{{Command: "AUTH", Action: pop3test.ReplyRaw,
			Reply: "+ " + relEscPayload + " \u009b2J \x9b2J\r\n"}}})
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("work", s.Port(), "ca_file: "+ca, "auth: login")
	r := setup.run("--trace", "sync")
	if r.code == 0 {
		t.Errorf("sync: exit 0 after a garbage challenge; stderr:\n%s", r.stderr)
	}
	relEscAssert(t, "--trace sync", r, "stderr", "work: S: + "+relEscShown+` \u009b2J \x9b2J`)
	lost := 0
	if len(s.Messages()) != 1 {
		lost = 1
		t.Errorf("the server holds %d message(s), want 1", len(s.Messages()))
	}
	relRecord("hardening", "AUTH LOGIN challenge with terminal escapes under `--trace` (issue 12.1)",
		"the trace line `S: + …` shows the challenge escaped; the login fails as a protocol error", r.code, lost, 0)
}

// TestRelHardeningEscapeListUIDL: UIDLs with C1 controls (raw 0x9b, UTF-8 U+009B) are outside RFC
// 1939's 0x21–0x7E but unambiguous: popfetch accepts them (refusing would leave the mail unfetchable),
// `list` and `sync --dry-run` show them escaped, `list --json` carries them with \u escapes, `cat`
// finds a message by the escaped form `list` showed, and keep mode works with them.
func TestRelHardeningEscapeListUIDL(t *testing.T) {
	relTrack(t)
	t.Parallel()
	// (A UIDL with a C0 control such as ESC is refused by the parser: exit 76, the error escaped.)
	rawUID, utfUID := "raw\x9b2J", "utf8\u009b2J"
	msgs := []pop3test.Message{{UID: rawUID, Data: []byte("Subject: one\r\n\r\nfirst\r\n")},
		{UID: utfUID, Data: []byte("Subject: two\r\n\r\nsecond\r\n")}}
	s, ca := relServer(t, pop3test.Options{Messages: msgs})
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("work", s.Port(), "ca_file: "+ca, "keep: true")
	shownRaw, shownUTF := `raw\x9b2J`, `utf8\u009b2J`

	r := setup.run("list", "work")
	if r.code != 0 {
		t.Fatalf("list: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	relEscAssert(t, "list", r, "stdout", shownRaw, shownUTF)

	r = setup.run("--json", "list", "work")
	if r.code != 0 {
		t.Fatalf("list --json: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	relEscAssert(t, "list --json", r, "stdout")
	var rows []struct {
		UID string `json:"uidl"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 2 || rows[1].UID != utfUID {
		t.Errorf("list --json: %v, rows %q; want the UIDL %q back\n%s", err, rows, utfUID, r.stdout)
	}

	r = setup.run("sync", "--dry-run")
	if r.code != 0 {
		t.Fatalf("sync --dry-run: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	relEscAssert(t, "sync --dry-run", r, "stdout", shownRaw, shownUTF)

	r = setup.run("cat", "work", shownUTF)
	if r.code != 0 || !strings.Contains(r.stdout, "second") {
		t.Errorf("cat work %s: exit %d, stdout %q; stderr:\n%s", shownUTF, r.code, r.stdout, r.stderr)
	}

	// Keep mode: the first sync fetches both, the second nothing; the server keeps both.
	first := setup.run("sync")
	second := setup.run("sync")
	got := relReadMaildir(t, relMaildir(setup.dir, "work"))
	if first.code != 0 || second.code != 0 || len(got) != 2 || len(s.Messages()) != 2 {
		t.Fatalf("keep mode: exits %d, %d; %d message(s) in the maildir, %d on the server; stderr:\n%s%s",
			first.code, second.code, len(got), len(s.Messages()), first.stderr, second.stderr)
	}
	dup := 0
	for _, n := range got {
		dup += n - 1
	}
	if dup != 0 {
		t.Errorf("keep mode delivered %d duplicate(s)", dup)
	}
	relRecord("hardening", "UIDLs with raw 0x9b and U+009B: `list`, `--dry-run`, `cat`, keep mode (issue 12.1)",
		"accepted (outside RFC 1939's 0x21–0x7E but unambiguous); shown escaped; `list --json` carries them as `\\u009b`; `cat` takes the escaped form; a second keep-mode sync fetches nothing",
		0, 0, dup)
}

// relEscAuthServer is an OAuth2 authorization server whose device-authorization answer and token
// error carry the escapes (config/oauth2test serves fixed, well-behaved values).
func relEscAuthServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /device", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"device_code": "dc-1",
			"user_code":        "CODE" + relEscPayload + "\u009b2J",
			"verification_uri": "http://127.0.0.1/activate" + relEscPayload + "\u009b2J",
			"expires_in":       600, "interval": 1})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		// ESC and BEL as JSON escapes, U+009B raw (a JSON string may hold it).
		w.Write([]byte(`{"error":"access_denied","error_description":"no` + "\\u001b]0;pwned\\u0007\\u001b[2J \u009b2J" + `"}`))
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// TestRelHardeningEscapeOAuth2: `oauth2 login --device` against an authorization server whose
// verification_uri, user_code and error_description hold the escapes: the prompt and the error line
// show them escaped.
func TestRelHardeningEscapeOAuth2(t *testing.T) {
	relTrack(t)
	t.Parallel()
	auth := relEscAuthServer(t)
	s, ca := relServer(t, pop3test.Options{})
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("work", s.Port(), "ca_file: "+ca, "auth: xoauth2", "password_env: -",
		fmt.Sprintf("oauth2: {provider: custom, client_id: popfetch-test, auth_url: %s/authorize, token_url: %s/token, device_auth_url: %s/device}",
			auth.URL, auth.URL, auth.URL))
	r := setup.run("oauth2", "login", "--device", "--timeout", "20s", "work")
	if r.code == 0 {
		t.Fatalf("oauth2 login: exit 0 after access_denied; stderr:\n%s", r.stderr)
	}
	relEscAssert(t, "oauth2 login --device", r, "stderr",
		"/activate"+relEscShown+`\u009b2J`, "CODE"+relEscShown+`\u009b2J`, // the prompt
		"no"+relEscShown+` \u009b2J`) // the error line
	relRecord("hardening", "OAuth2 device flow: verification_uri, user_code, error_description with terminal escapes (issue 17.8)",
		"the prompt and the error line show them escaped", r.code, 0, 0)
}

// TestRelHardeningEscapeDaemonLog: the daemon's log lines, on stderr and to syslog, are escaped and
// one line each (a server's text cannot forge a second log line).
func TestRelHardeningEscapeDaemonLog(t *testing.T) {
	relTrack(t)
	var b bytes.Buffer
	sys := &relEscSyslog{}
	for _, l := range []*daemon.Log{daemon.NewLog(&b, nil, false), daemon.NewLog(nil, sys, false)} {
		l.Errorf("work: error: pop3: -ERR %s", relEscPayload+"\u009b2J\x9b2J\r\n2026-12-07T00:00:00Z work: 9 fetched")
		l.Infof("work: %s", "\u009b2J")
		l.Write([]byte("password_command says " + relEscPayload + "\n"))
	}
	for what, out := range map[string]string{"stderr": b.String(), "syslog": strings.Join(sys.lines, "\n") + "\n"} {
		if bad := relEscCheck(out); bad != "" {
			t.Errorf("daemon log on %s carries %s:\n%q", what, bad, out)
		}
		if n := strings.Count(out, "\n"); n != 3 {
			t.Errorf("daemon log on %s: %d lines, want 3:\n%s", what, n, out)
		}
		if !strings.Contains(out, relEscShown+`\u009b2J\x9b2J\r\n2026`) {
			t.Errorf("daemon log on %s does not show the text escaped:\n%s", what, out)
		}
	}
	relRecord("hardening", "Daemon log and syslog lines quoting server text with terminal escapes (issue 12.1)",
		"escaped, one line per event (a CR/LF in server text cannot forge a log line)", "-", 0, 0)
}

// TestRelHardeningEscapeInit: `init` probing a server that advertises a SASL mechanism with the escapes
// and one whose certificate names hold them (a host mismatch): its report shows both escaped, and the
// profile it prints (whose comment quotes the capabilities) holds no control character and loads.
func TestRelHardeningEscapeInit(t *testing.T) {
	relTrack(t)
	t.Parallel()
	pki := initNewPKI(t)
	s := pki.server(t, pop3test.ImplicitTLS, pop3test.Options{SASL: []string{"PLAIN", "X" + relEscPayload + "\u009b2J"}},
		"pop3s-host.example.test")
	st := pki.server(t, pop3test.STLS, pop3test.Options{}, "san"+relEscPayload+".test")
	dnsAddr := initDNS(t,
		"_pop3s._tcp.example.test. 60 IN SRV 10 1 "+initPort(s)+" pop3s-host.example.test.",
		"_pop3._tcp.example.test. 60 IN SRV 0 1 "+initPort(st)+" stls-host.example.test.",
		"pop3s-host.example.test. 60 IN A 127.0.0.1",
		"stls-host.example.test. 60 IN A 127.0.0.1")
	res := popfetch(t, "", []string{"XDG_CONFIG_HOME=" + t.TempDir()}, "init", "--email", "alice@example.test",
		"--dns-server", dnsAddr, "--ca-file", pki.caFile, "--dry-run")
	r := result{code: res.code, stdout: res.stdout, stderr: res.stderr}
	if r.code != 0 {
		t.Fatalf("init: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	mech := `X\x1b]0;PWNED\x07\x1b[2J\u009b2J` // as the server (upper case) lists it, escaped
	relEscAssert(t, "init", r, "stderr", mech)
	relEscAssert(t, "init", r, "stdout", mech)
	if a := initLoad(t, r.stdout).Account("example"); a == nil || a.Host != "pop3s-host.example.test" {
		t.Errorf("profile:\n%s", r.stdout)
	}
	// Discovery stops probing once a safer setting works, so the server with the hostile certificate
	// names is probed on its own: its host-mismatch error is shown escaped.
	dnsAddr = initDNS(t,
		"_pop3._tcp.example.test. 60 IN SRV 0 1 "+initPort(st)+" stls-host.example.test.",
		"stls-host.example.test. 60 IN A 127.0.0.1")
	res = popfetch(t, "", []string{"XDG_CONFIG_HOME=" + t.TempDir()}, "init", "--email", "alice@example.test",
		"--dns-server", dnsAddr, "--ca-file", pki.caFile, "--dry-run")
	r = result{code: res.code, stdout: res.stdout, stderr: res.stderr}
	relEscAssert(t, "init", r, "stderr", "san"+relEscShown+".test")
	relRecord("hardening", "`init` probing servers with terminal escapes in CAPA (SASL) and certificate names (issue 12.1)",
		"its report shows them escaped; the profile's comment quotes them escaped and the file loads", 0, 0, 0)
}

// relEscSyslog records what the daemon sends to syslog.
type relEscSyslog struct{ lines []string }

func (s *relEscSyslog) Info(m string) error { s.lines = append(s.lines, m); return nil }
func (s *relEscSyslog) Err(m string) error  { s.lines = append(s.lines, m); return nil }
func (s *relEscSyslog) Close() error        { return nil }
