package pop3_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// tlsRootsHelperEnv makes the test binary a child that dials the address in it with CAFile
// $POP3_TEST_CA_FILE and prints "ok" or the error.
const tlsRootsHelperEnv = "POP3_TEST_TLS_ROOTS_ADDR"

func TestTLSRootsHelper(t *testing.T) {
	addr := os.Getenv(tlsRootsHelperEnv)
	if addr == "" {
		t.Skip("helper process for TestCAFileVerifiesWithoutSystemRoots")
	}
	c, err := pop3.Dial(context.Background(), addr, pop3.TLSImplicit, &pop3.Options{CAFile: os.Getenv("POP3_TEST_CA_FILE")})
	if err != nil {
		var terr *pop3.TLSError
		fmt.Printf("error (TLSError %v): %v\n", errors.As(err, &terr), err)
		return
	}
	c.Close()
	fmt.Println("ok")
}

// runTLSRootsChild runs TestTLSRootsHelper in a new process (the system's trust anchors are loaded
// once per process) with SSL_CERT_FILE and an empty SSL_CERT_DIR, and returns its output.
func runTLSRootsChild(t *testing.T, addr, caFile, sslCertFile string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTLSRootsHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), tlsRootsHelperEnv+"="+addr, "POP3_TEST_CA_FILE="+caFile,
		"SSL_CERT_FILE="+sslCertFile, "SSL_CERT_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	return string(out)
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ca_file adds to the system's trust anchors: a server whose certificate only the system trusts is
// still accepted, and one that neither trusts is refused with a *TLSError.
func TestCAFileStillAddsToSystemRoots(t *testing.T) {
	privateCA, err1 := pop3test.NewCA()
	publicCA, err2 := pop3test.NewCA()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	cert, err := publicCA.Issue([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	public := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Certificate: &cert})
	caFile := writeFile(t, "private-ca.pem", privateCA.PEM())
	system := writeFile(t, "system.pem", publicCA.PEM())
	other := writeFile(t, "other.pem", privateCA.PEM())

	if out := runTLSRootsChild(t, public.Addr(), caFile, system); strings.TrimSpace(lastLine(out)) != "ok" {
		t.Errorf("server trusted by the system roots, not by ca_file: want ok, got\n%s", out)
	}
	out := runTLSRootsChild(t, public.Addr(), caFile, other)
	if !strings.Contains(out, "error (TLSError true)") || !strings.Contains(out, "unknown authority") {
		t.Errorf("server trusted by neither: want a TLSError for an unknown authority, got\n%s", out)
	}
}

// The checks that replace crypto/tls's own with ca_file: name and validity still count.
func TestCAFileChecksNameAndValidity(t *testing.T) {
	ca, err := pop3test.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	expired, _ := ca.Issue([]string{"127.0.0.1", "localhost"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	wrongHost, _ := ca.Issue([]string{"pop.example.org"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	good, _ := ca.Issue([]string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	caFile := writeFile(t, "ca.pem", ca.PEM())
	for _, tt := range []struct {
		name string
		cert *pop3test.Options
		ok   bool
		want string
	}{
		{"good", &pop3test.Options{TLS: pop3test.ImplicitTLS, Certificate: &good}, true, ""},
		{"expired", &pop3test.Options{TLS: pop3test.ImplicitTLS, Certificate: &expired}, false, "expired"},
		{"wrong host", &pop3test.Options{TLS: pop3test.ImplicitTLS, Certificate: &wrongHost}, false, "127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := pop3test.NewServer(t, tt.cert)
			c, err := pop3.Dial(context.Background(), s.Addr(), pop3.TLSImplicit, &pop3.Options{CAFile: caFile})
			if tt.ok {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				c.Close()
				return
			}
			var terr *pop3.TLSError
			if !errors.As(err, &terr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a *TLSError mentioning %q", err, tt.want)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l == "ok" || strings.HasPrefix(l, "error") {
			return l
		}
	}
	return ""
}
