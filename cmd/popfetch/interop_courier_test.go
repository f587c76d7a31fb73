package main

// Interoperability with the real Courier POP3 server (Debian 12's courier-pop, unpacked by
// .ci/courier and run by fetch/pop3/pop3test/courier in private namespaces): the server that
// taught us not to pipeline across the login, and to send UTF8.

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test/courier"
)

// courierMessages are hardMessages plus one whose header is UTF-8, which Courier wraps in a
// "Cannot display Unicode content" notice unless the client sent UTF8.
func courierMessages() [][]byte {
	var out [][]byte
	for _, m := range hardMessages() {
		out = append(out, m.Data)
	}
	return append(out, []byte("From: J\xc3\xbcrgen <j@example.org>\nTo: alice@example.org\n"+
		"Subject: caf\xc3\xa9 \xe2\x82\xac\nContent-Type: text/plain; charset=utf-8\n\nna\xc3\xafve\n"))
}

// addCourier adds account name for Courier server s to p (implicit TLS unless kv says otherwise)
// and returns its maildir.
func addCourier(t *testing.T, p *profile, name string, s *courier.Server, kv ...string) string {
	t.Helper()
	addr := s.POP3SAddr
	if slices.Contains(kv, "tls: starttls") {
		addr = s.POP3Addr
	}
	_, portText, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portText)
	return p.addAt(name, port, append([]string{"ca_file: " + p.caFile(s.CAPEM)}, kv...)...)
}

// TestInteropCourierReal: against the real Courier, every mechanism it offers (and auto, also over
// STLS), in delete and keep mode, fetches every message byte for byte, the one with a UTF-8 header
// included (popfetch sends UTF8, so Courier does not rewrite it); delete mode empties the server,
// keep mode leaves it as it was, and a second run fetches nothing more.
func TestInteropCourierReal(t *testing.T) {
	t.Parallel()
	type variant struct{ mode, auth, tls string }
	var variants []variant
	for _, mode := range []string{"delete", "keep"} {
		for _, auth := range []string{"auto", "user", "plain", "login", "cram-md5"} {
			variants = append(variants, variant{mode, auth, "implicit"})
		}
		variants = append(variants, variant{mode, "auto", "starttls"})
	}
	for _, v := range variants {
		t.Run(v.mode+"/"+v.auth+"/"+v.tls, func(t *testing.T) {
			t.Parallel()
			s := courier.Start(t, nil)
			msgs := courierMessages()
			s.Seed(t, "alice", msgs...)
			p := newProfile(t)
			md := addCourier(t, p, "work", s, "auth: "+v.auth, "tls: "+v.tls, "timeout: 5s",
				"keep: "+strconv.FormatBool(v.mode == "keep"))
			p.write()
			expectCode(t, p.run("sync"), 0)
			want := make([]string, len(msgs))
			for i, m := range msgs {
				want[i] = string(m)
			}
			slices.Sort(want)
			sameMessages(t, "maildir", maildirFiles(t, md), want)

			left := s.Mailbox(t, "alice")
			if v.mode == "delete" && len(left) != 0 {
				t.Errorf("the server still holds %d message(s)", len(left))
			}
			if v.mode == "keep" && len(left) != len(msgs) {
				t.Errorf("keep mode: the server holds %d message(s), want %d", len(left), len(msgs))
			}
			expectCode(t, p.run("sync"), 0)
			if n := len(maildirFiles(t, md)); n != len(msgs) {
				t.Errorf("after a second run the maildir holds %d messages, want %d", n, len(msgs))
			}
		})
	}
}

// TestInteropCourierWrongPassword: Courier refuses a wrong password (after 5 seconds); popfetch
// exits 77 with one line, and the messages stay on the server.
func TestInteropCourierWrongPassword(t *testing.T) {
	t.Parallel()
	s := courier.Start(t, nil)
	s.Seed(t, "alice", courierMessages()[:2]...)
	p := newProfile(t)
	addCourier(t, p, "work", s, "password: wrong", "auth: user", "timeout: 20s")
	p.write()
	r := p.run("sync")
	expectCode(t, r, 77)
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("stderr %q: want one line", r.stderr)
	}
	if n := len(s.Mailbox(t, "alice")); n != 2 {
		t.Errorf("the server holds %d messages, want 2", n)
	}
}

// TestInteropCourierPipelinedLoginLost documents why popfetch sends nothing behind a login command
// (and why pop3test has LoginHandoff): a LIST pipelined behind PASS, or behind AUTH PLAIN, gets no
// reply from the real Courier within 3 seconds, because its login process read it and exec'd pop3d
// without it; the same LIST sent after the login's reply is answered. pop3test's LoginHandoff
// switch must behave the same.
func TestInteropCourierPipelinedLoginLost(t *testing.T) {
	t.Parallel()
	type target struct {
		addr string
		pool *x509.CertPool
	}
	servers := map[string]func(t *testing.T) target{
		"courier": func(t *testing.T) target {
			s := courier.Start(t, nil)
			s.Seed(t, "alice", courierMessages()[:1]...)
			return target{s.POP3SAddr, s.CAPool}
		},
		"pop3test LoginHandoff": func(t *testing.T) target {
			s := newServer(t, numbered(1), &pop3test.Options{TLS: pop3test.ImplicitTLS, LoginHandoff: true})
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(s.CACertPEM())
			return target{"127.0.0.1:" + strconv.Itoa(s.Port()), pool}
		},
	}
	plain := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")) + "\r\n"
	cases := []struct {
		name, before, login string
		pipelined           bool
	}{
		{"PASS then LIST, pipelined", "USER alice\r\n", "PASS secret\r\n", true},
		{"AUTH PLAIN then LIST, pipelined", "", plain, true},
		{"PASS, reply, then LIST", "USER alice\r\n", "PASS secret\r\n", false},
	}
	for _, server := range []string{"courier", "pop3test LoginHandoff"} {
		for _, tc := range cases {
			t.Run(server+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				srv := servers[server](t)
				c, err := tls.Dial("tcp", srv.addr, &tls.Config{RootCAs: srv.pool, ServerName: "localhost"})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				r := bufio.NewReader(c)
				write := func(s string) {
					t.Helper()
					if _, err := c.Write([]byte(s)); err != nil { // one write: the commands arrive together
						t.Fatal(err)
					}
				}
				expectOK := func(what string) {
					t.Helper()
					if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
						t.Fatalf("%s: %q, %v", what, l, err)
					}
				}
				expectOK("greeting")
				if tc.before != "" {
					write(tc.before)
					expectOK("USER")
				}
				if tc.pipelined {
					write(tc.login + "LIST\r\n")
				} else {
					write(tc.login)
				}
				expectOK("login")
				if !tc.pipelined {
					write("LIST\r\n")
				}
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				l, err := r.ReadString('\n')
				var ne net.Error
				timedOut := errors.As(err, &ne) && ne.Timeout()
				switch {
				case tc.pipelined && !timedOut:
					t.Errorf("LIST pipelined behind the login: got %q, %v; want no reply within 3 s", l, err)
				case !tc.pipelined && (err != nil || !strings.HasPrefix(l, "+OK")):
					t.Errorf("LIST after the login's reply: got %q, %v; want +OK", l, err)
				}
			})
		}
	}
}
