package main

// End-to-end tests of OAuth2 with the real binary (issue 8, "OAuth2 that keeps working"): `popfetch
// oauth2 login` against a fake authorization server (the test is the browser), then `popfetch sync`
// against pop3test accepting only the access token that server issued: cached, refreshed when expired,
// and exit 77 with the login command once the refresh token is revoked. Tests have no keyring, so the
// refresh token lands in the state directory's 0600 file.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/config/oauth2test"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// oauthSetup is a configuration with one account "work" that logs in with OAuth2 at a fake server.
type oauthSetup struct {
	t        *testing.T
	dir      string
	path     string // the configuration file
	stateDir string
	maildir  string
	env      []string
}

func oauthNewSetup(t *testing.T, auth *oauth2test.Server, pop *pop3test.Server, authMech string) *oauthSetup {
	t.Helper()
	dir := t.TempDir()
	s := &oauthSetup{t: t, dir: dir, path: filepath.Join(dir, "config.yaml"), stateDir: filepath.Join(dir, "state"),
		maildir: filepath.Join(dir, "Maildir"),
		// No keyring (no session bus, no dbus-launch): the refresh token must go to the state directory.
		env: []string{"PATH=" + t.TempDir(), "DBUS_SESSION_BUS_ADDRESS="}}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pop.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`state_dir: %s
accounts:
  work:
    host: 127.0.0.1
    port: %d
    ca_file: %s
    user: alice
    auth: %s
    timeout: 20s
    received_header: false
    oauth2:
      provider: custom
      client_id: popfetch-test
      auth_url: %s
      token_url: %s
      device_auth_url: %s
    deliver: {maildir: %s}
`, s.stateDir, pop.Port(), ca, authMech, auth.AuthURL(), auth.TokenURL(), auth.DeviceAuthURL(), s.maildir)
	if err := os.WriteFile(s.path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *oauthSetup) run(args ...string) result {
	s.t.Helper()
	return popfetch(s.t, "", s.env, append([]string{"--config", s.path}, args...)...)
}

// login runs `popfetch oauth2 login work` and acts as the user's browser: it opens the URL the
// command prints (the fake server redirects to popfetch's listener on 127.0.0.1), or for --device the
// verification URL with the code.
func (s *oauthSetup) login(args ...string) result {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, popfetchBin, append(append([]string{"--config", s.path, "oauth2", "login", "--timeout", "30s"}, args...), "work")...)
	cmd.Env = append([]string{"HOME=" + s.dir, "XDG_RUNTIME_DIR=" + s.dir}, s.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(io.TeeReader(pipe, &stderr))
	var url string
scan:
	for sc.Scan() {
		// What the user must act on is indented: the URL, then (device flow) the code to enter.
		line := sc.Text()
		switch value := strings.TrimSpace(line); {
		case !strings.HasPrefix(line, "  ") || value == "":
		case url == "":
			url = value
		default:
			url += "?user_code=" + value
		}
		if strings.HasPrefix(line, "popfetch: waiting") {
			break scan
		}
	}
	if url == "" {
		cmd.Wait()
		t.Fatalf("login printed no URL; stderr:\n%s", stderr.String())
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("browser: GET %s: %v", url, err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("browser: %s: %s\n%s", url, resp.Status, body)
		}
	}
	io.Copy(io.Discard, io.TeeReader(pipe, &stderr))
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running popfetch: %v", err)
	}
	return resultOf(cmd, stdout.String(), stderr.String(), 0)
}

// expire moves the cached access token's expiry into the past, as time would.
func (s *oauthSetup) expire() {
	s.t.Helper()
	path := filepath.Join(s.stateDir, "work.oauth2")
	data, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		s.t.Fatal(err)
	}
	f["expiry"] = time.Now().Add(-time.Minute).Format(time.RFC3339)
	data, _ = json.Marshal(f)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		s.t.Fatal(err)
	}
}

func oauthMessages(tag string, n int) []pop3test.Message {
	msgs := make([]pop3test.Message, n)
	for i := range msgs {
		msgs[i] = pop3test.Message{UID: fmt.Sprintf("%s-%d", tag, i), Data: fmt.Appendf(nil, "Subject: %s %d\n\nbody\n", tag, i)}
	}
	return msgs
}

func oauthCountNew(t *testing.T, maildir string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(maildir, "new"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return len(ents)
}

func TestOAuthLoginSyncRefreshRevoke(t *testing.T) {
	// Microsoft's access tokens are well over 1 KB: XOAUTH2 then takes the two-step form (the initial
	// response would make the AUTH line longer than 255 octets).
	token := "eyJ0eXAiOiJKV1Qi." + strings.Repeat("OAuthAccessTokenPart", 60)
	auth := oauth2test.NewServer(t, &oauth2test.Options{AccessToken: token})
	pop := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Token: token, Messages: oauthMessages("a", 3)})
	s := oauthNewSetup(t, auth, pop, "xoauth2")
	var all strings.Builder // everything popfetch printed: no token may appear in it
	record := func(r result) result {
		all.WriteString(r.stdout + r.stderr)
		return r
	}

	// Before logging in: 77, and the command to run.
	r := record(s.run("sync"))
	if r.code != exitNoPerm || !strings.Contains(r.stderr, "popfetch oauth2 login work") {
		t.Fatalf("sync before login: exit %d, stderr:\n%s", r.code, r.stderr)
	}

	r = record(s.login())
	tokenFile := filepath.Join(s.stateDir, "work.oauth2")
	if r.code != 0 || !strings.Contains(r.stderr, "warning: account \"work\": the system keyring cannot keep the OAuth2 refresh token") ||
		!strings.Contains(r.stderr, "logged in: account \"work\" can sync now; its refresh token is in "+tokenFile+" (mode 0600)") || r.stdout != "" {
		t.Fatalf("login: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", fi, err)
	}
	if auth.Grants("authorization_code") != 1 {
		t.Errorf("authorization_code grants: %d", auth.Grants("authorization_code"))
	}

	// The access token from the login is cached: sync uses it without asking the server.
	r = record(s.run("--trace", "-v", "sync"))
	if r.code != 0 || oauthCountNew(t, s.maildir) != 3 || auth.Grants("refresh_token") != 0 {
		t.Fatalf("sync: exit %d, %d messages, %d refreshes; stderr:\n%s", r.code, oauthCountNew(t, s.maildir), auth.Grants("refresh_token"), r.stderr)
	}
	if !strings.Contains(r.stderr, "AUTH XOAUTH2") {
		t.Errorf("the trace shows no AUTH XOAUTH2:\n%s", r.stderr)
	}

	// Expired: sync refreshes (a refresh_token grant) and still works.
	pop.SetMessages(oauthMessages("b", 2))
	s.expire()
	r = record(s.run("--trace", "-v", "sync"))
	if r.code != 0 || oauthCountNew(t, s.maildir) != 5 || auth.Grants("refresh_token") != 1 {
		t.Fatalf("sync after expiry: exit %d, %d messages, %d refreshes; stderr:\n%s", r.code, oauthCountNew(t, s.maildir), auth.Grants("refresh_token"), r.stderr)
	}
	// The server rotates refresh tokens: a second refresh works only with the one stored last time.
	s.expire()
	r = record(s.run("--trace", "-v", "check"))
	if r.code != exitNoMail || auth.Grants("refresh_token") != 2 {
		t.Fatalf("check after a second expiry: exit %d, %d refreshes; stderr:\n%s", r.code, auth.Grants("refresh_token"), r.stderr)
	}

	// Revoked: 77, with the exact command to log in again.
	auth.Revoke()
	s.expire()
	r = record(s.run("--trace", "-v", "sync"))
	if r.code != exitNoPerm || !strings.Contains(r.stderr, "popfetch oauth2 login work") || !strings.Contains(r.stderr, "invalid_grant") {
		t.Fatalf("sync after revocation: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = record(s.run("--json", "sync"))
	if r.code != exitNoPerm || !strings.Contains(r.stdout, `"exit_code":77`) {
		t.Errorf("--json sync after revocation: exit %d, stdout:\n%s", r.code, r.stdout)
	}

	// Logging in again repairs it.
	r = record(s.login())
	pop.SetMessages(oauthMessages("c", 1))
	if r.code != 0 {
		t.Fatalf("second login: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if r = record(s.run("sync")); r.code != 0 || oauthCountNew(t, s.maildir) != 6 {
		t.Fatalf("sync after the second login: exit %d, stderr:\n%s", r.code, r.stderr)
	}

	for _, secret := range append(auth.RefreshTokens(), token, token[:40]) {
		if strings.Contains(all.String(), secret) {
			t.Fatalf("popfetch printed a token (%.12s…):\n%s", secret, all.String())
		}
	}
	if len(auth.RefreshTokens()) < 4 {
		t.Errorf("only %d refresh tokens issued", len(auth.RefreshTokens()))
	}
}

// TestOAuthDeviceOAuthBearer: `oauth2 login --device` (the device-code flow) and OAUTHBEARER.
func TestOAuthDeviceOAuthBearer(t *testing.T) {
	const token = "device-flow-access-token-0123456789"
	auth := oauth2test.NewServer(t, &oauth2test.Options{AccessToken: token})
	pop := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Token: token, Messages: oauthMessages("d", 2),
		SASL: []string{"OAUTHBEARER"}})
	s := oauthNewSetup(t, auth, pop, "oauthbearer")
	r := s.login("--device")
	if r.code != 0 || auth.Grants("urn:ietf:params:oauth:grant-type:device_code") == 0 || !strings.Contains(r.stderr, "enter the code") {
		t.Fatalf("login --device: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = s.run("--trace", "-v", "sync")
	if r.code != 0 || oauthCountNew(t, s.maildir) != 2 || !strings.Contains(r.stderr, "AUTH OAUTHBEARER") {
		t.Fatalf("sync: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr+r.stdout, token) {
		t.Errorf("the token appears in the output:\n%s", r.stderr)
	}
}

// TestOAuthLoginErrors: an account without oauth2: (78), an unknown account (64), no answer in time
// (75); and what `config check` shows of an oauth2: profile.
func TestOAuthLoginErrors(t *testing.T) {
	auth := oauth2test.NewServer(t, nil)
	pop := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS})
	s := oauthNewSetup(t, auth, pop, "xoauth2")
	if r := s.run("oauth2", "login", "nope"); r.code != exitUsage || !strings.Contains(r.stderr, `no account "nope"`) {
		t.Errorf("unknown account: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if r := s.run("oauth2", "login"); r.code != exitUsage {
		t.Errorf("no account: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if r := s.run("oauth2", "login", "--timeout", "100ms", "work"); r.code != exitTempFail || !strings.Contains(r.stderr, "no answer within 100ms") {
		t.Errorf("timeout: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if r := s.run("config", "check"); r.code != 0 || !strings.Contains(r.stdout, "password:             (oauth2)") ||
		!strings.Contains(r.stdout, "oauth2:               custom, client_id popfetch-test, client secret (none), token_url "+auth.TokenURL()) {
		t.Errorf("config check: exit %d, stdout:\n%s", r.code, r.stdout)
	}
	plain := writeFile(t, "plain.yaml", "accounts:\n  work:\n"+goodAccount, 0o600)
	if r := popfetch(t, "", nil, "--config", plain, "oauth2", "login", "work"); r.code != exitConfig || !strings.Contains(r.stderr, "has no oauth2: profile") {
		t.Errorf("account without oauth2: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}
