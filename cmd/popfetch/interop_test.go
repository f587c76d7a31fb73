package main

// Interoperability with POP3 servers other than Dovecot, through pop3test switches that behave like
// each server that taught us something (see the README's interop table): Courier's login handoff,
// GNU mailutils' APOP timestamp for users without APOP secrets, popa3d without CAPA, UTF8.

import (
	"slices"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// TestInteropCourierLoginHandoff: Courier's pop3login authenticates, then execs pop3d, and whatever
// the client pipelined behind its last login command is lost. Every mechanism (and auto), in delete
// and keep mode, must fetch everything anyway.
func TestInteropCourierLoginHandoff(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"delete", "keep"} {
		for _, mech := range []string{"auto", "user", "plain", "login", "scram-sha-256", "scram-sha-1", "cram-md5", "apop"} {
			t.Run(mode+"/"+mech, func(t *testing.T) {
				t.Parallel()
				msgs := hardMessages()
				s := newServer(t, msgs, &pop3test.Options{TLS: pop3test.ImplicitTLS, LoginHandoff: true})
				p := newProfile(t)
				md := p.add("work", s, "auth: "+mech, "timeout: 3s", "keep: "+map[string]string{"delete": "false", "keep": "true"}[mode])
				p.write()
				r := p.run("sync")
				expectCode(t, r, 0)
				sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs))
				left := len(s.Messages())
				if mode == "delete" && left != 0 {
					t.Errorf("the server still holds %d message(s)", left)
				}
				if mode == "keep" && left != len(msgs) {
					t.Errorf("keep mode: the server holds %d message(s), want %d", left, len(msgs))
				}
				// A second run fetches nothing more.
				expectCode(t, p.run("sync"), 0)
				if n := len(maildirFiles(t, md)); n != len(msgs) {
					t.Errorf("after a second run the maildir holds %d messages, want %d", n, len(msgs))
				}
			})
		}
	}
}

// TestInteropMailutilsAPOP: GNU mailutils' pop3d puts an APOP timestamp in every greeting, and
// refuses APOP for users without an APOP secret. Over a connection without TLS, auto with
// allow_plaintext_auth tries APOP, then falls back once and fetches; an explicit auth: apop exits 77
// naming the refusal.
func TestInteropMailutilsAPOP(t *testing.T) {
	t.Parallel()
	opts := func() *pop3test.Options {
		// No SASL: what mailutils offers without a SASL build is USER and APOP.
		return &pop3test.Options{TLS: pop3test.Plain, APOPNoSecret: true, SASL: []string{}}
	}
	t.Run("auto falls back", func(t *testing.T) {
		t.Parallel()
		msgs := numbered(3)
		s := newServer(t, msgs, opts())
		p := newProfile(t)
		md := p.add("work", s, "tls: none", "ca_file: -", "allow_plaintext_auth: true")
		p.write()
		r := p.run("sync")
		expectCode(t, r, 0)
		sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs))
		got := s.Received()
		apop := slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, "APOP ") })
		user := slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, "USER ") })
		if apop < 0 || user < apop {
			t.Errorf("want APOP, then USER; the server received %q", got)
		}
	})
	t.Run("explicit apop does not fall back", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, numbered(2), opts())
		p := newProfile(t)
		p.add("work", s, "tls: none", "ca_file: -", "allow_plaintext_auth: true", "auth: apop")
		p.write()
		r := p.run("sync")
		expectCode(t, r, 77)
		if !strings.Contains(r.stderr, "APOP") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("stderr %q: want one line naming APOP", r.stderr)
		}
		if slices.ContainsFunc(s.Received(), func(l string) bool { return strings.HasPrefix(l, "USER ") }) {
			t.Errorf("an explicit auth: apop fell back to USER: %q", s.Received())
		}
		if n := len(s.Messages()); n != 2 {
			t.Errorf("the server holds %d messages, want 2", n)
		}
	})
	t.Run("both refused names both", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, numbered(1), opts())
		p := newProfile(t)
		p.add("work", s, "tls: none", "ca_file: -", "allow_plaintext_auth: true", "password: wrong")
		p.write()
		r := p.run("sync")
		expectCode(t, r, 77)
		if !strings.Contains(r.stderr, "tried APOP, then USER") {
			t.Errorf("stderr %q: want the mechanisms tried", r.stderr)
		}
	})
}

// TestInteropNoAPOPInClear: APOP's digest over a connection without TLS can be cracked offline
// (CVE-2007-1558): without allow_plaintext_auth, neither auto nor auth: apop sends it (exit 78, the
// fix named), and the server receives no APOP.
func TestInteropNoAPOPInClear(t *testing.T) {
	t.Parallel()
	for _, auth := range []string{"auto", "apop", "cram-mD5"} {
		t.Run(auth, func(t *testing.T) {
			t.Parallel()
			// A server offering only APOP and CRAM-MD5.
			s := newServer(t, numbered(1), &pop3test.Options{TLS: pop3test.Plain, NoUSER: true, SASL: []string{"CRAM-MD5"}})
			p := newProfile(t)
			p.add("work", s, "tls: none", "ca_file: -", "auth: "+strings.ToLower(auth))
			p.write()
			r := p.run("sync")
			expectCode(t, r, 78)
			if !strings.Contains(r.stderr, "allow_plaintext_auth") {
				t.Errorf("stderr %q: want the fix (allow_plaintext_auth) named", r.stderr)
			}
			for _, l := range s.Received() {
				if strings.HasPrefix(l, "APOP") || strings.HasPrefix(l, "AUTH") {
					t.Errorf("the server received %q over a connection without TLS", l)
				}
			}
		})
	}
}

// TestInteropUTF8AndOneCAPA: a server that advertises UTF8 receives UTF8 after the login (RFC 6856:
// Courier otherwise rewrites messages with 8-bit headers); a server without CAPA (popa3d) receives
// CAPA once per session.
func TestInteropUTF8AndOneCAPA(t *testing.T) {
	t.Parallel()
	t.Run("utf8", func(t *testing.T) {
		t.Parallel()
		msgs := hardMessages()
		s := newServer(t, msgs, &pop3test.Options{TLS: pop3test.ImplicitTLS, UTF8: true})
		p := newProfile(t)
		md := p.add("work", s)
		p.write()
		expectCode(t, p.run("sync"), 0)
		sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs))
		got := s.Received()
		login := slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, "AUTH ") || strings.HasPrefix(l, "PASS ") })
		utf8 := slices.Index(got, "UTF8")
		list := slices.Index(got, "LIST")
		if login < 0 || utf8 < login || list < utf8 {
			t.Errorf("want the login, then UTF8, then LIST; the server received %q", got)
		}
	})
	t.Run("no utf8 advertised", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, numbered(1), nil)
		p := newProfile(t)
		p.add("work", s)
		p.write()
		expectCode(t, p.run("sync"), 0)
		if slices.Contains(s.Received(), "UTF8") {
			t.Errorf("UTF8 sent to a server that does not advertise it: %q", s.Received())
		}
	})
	t.Run("popa3d: no CAPA", func(t *testing.T) {
		t.Parallel()
		msgs := numbered(2)
		s := newServer(t, msgs, &pop3test.Options{TLS: pop3test.ImplicitTLS, NoCAPA: true})
		p := newProfile(t)
		md := p.add("work", s)
		p.write()
		expectCode(t, p.run("sync"), 0)
		sameMessages(t, "maildir", maildirFiles(t, md), contents(msgs))
		capa := 0
		for _, l := range s.Received() {
			if l == "CAPA" {
				capa++
			}
		}
		if capa != 1 {
			t.Errorf("CAPA sent %d times in one session, want 1: %q", capa, s.Received())
		}
	})
}
