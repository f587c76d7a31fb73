package main

// Hardening, network and secrets (issue 12 points 4 and 8, issue 17 points 1, 6 and 7): secrets kept
// from children's environments, the SMTP destination's certificate checks, OAuth2 endpoints that
// redirect, discovery that cannot become a connection flood, and resource exhaustion that backs off.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/popfetch/popfetch/config/oauth2test"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
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
	setup := relWriteConfigIn(t, dir,
		relProfile{Name: "fromenv", Port: srv.Port(), CAFile: ca, Keep: true, Deliver: deliver},
		relProfile{Name: "fromcommand", Port: srv.Port(), CAFile: ca, Keep: true, Deliver: deliver,
			Password: fmt.Sprintf("password_command: [%q]", pw)},
		// Never synced here: its client secret's variable must be kept from the others' children too.
		relProfile{Name: "oauth", Port: srv.Port(), CAFile: ca, Auth: "xoauth2", Deliver: deliver,
			Password: "oauth2: {provider: custom, client_id: x, token_url: \"https://auth.example.com/token\", auth_url: \"https://auth.example.com/auth\", client_secret_env: " + clientSecretEnv + "}"})
	r := setup.run(t, []string{clientSecretEnv + "=" + clientSecret}, "sync", "fromenv", "fromcommand")
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
