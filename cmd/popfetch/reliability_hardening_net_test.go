package main

// Hardening, network and secrets (issue 12 points 4 and 8, issue 17 points 1, 6 and 7): secrets kept
// from children's environments, the SMTP destination's certificate checks, OAuth2 endpoints that
// redirect, discovery that cannot become a connection flood, and resource exhaustion that backs off.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
