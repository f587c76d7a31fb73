package main

import (
	"strings"
	"testing"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// TestRelHardeningAPOPInClear: over tls: none, APOP's MD5 digest of a challenge the server chose can
// be cracked offline (CVE-2007-1558); without allow_plaintext_auth popfetch sends neither APOP nor
// CRAM-MD5 (exit 78, the fix named), and it ignores an APOP timestamp that is not an RFC 1939 msg-id.
func TestRelHardeningAPOPInClear(t *testing.T) {
	relTrack(t)
	t.Parallel()
	s := newServer(t, numbered(2), &pop3test.Options{TLS: pop3test.Plain, NoUSER: true, SASL: []string{"CRAM-MD5"}})
	p := newProfile(t)
	p.add("acct", s, "tls: none", "ca_file: -")
	r := p.run("sync")
	expectCode(t, r, 78)
	for _, l := range s.Received() {
		if strings.HasPrefix(l, "APOP") || strings.HasPrefix(l, "AUTH") {
			t.Fatalf("the server received %q over a connection without TLS", l)
		}
	}
	if !strings.Contains(r.stderr, "allow_plaintext_auth") {
		t.Fatalf("stderr %q does not name allow_plaintext_auth", r.stderr)
	}
	relRecord("hardening", "tls: none, auth auto, the server offers only APOP and CRAM-MD5 (issue 12.3)",
		"sent no APOP and no AUTH; said `"+strings.TrimSpace(r.stderr)+"`", r.code, 2-len(s.Messages()), 0)

	// A greeting whose "timestamp" is not a msg-id (here with an escape sequence) is not used for APOP,
	// even where APOP is allowed.
	bad := newServer(t, numbered(1), &pop3test.Options{TLS: pop3test.ImplicitTLS, NoAPOP: true, SASL: []string{},
		NoUSER: true, Faults: []pop3test.Fault{{Command: "GREETING", Action: pop3test.Reply, Reply: "+OK hi <x\x1b[2J@y>"}}})
	p2 := newProfile(t)
	p2.add("acct", bad, "auth: apop")
	r = p2.run("sync")
	if r.code == 0 {
		t.Fatalf("APOP with a malformed timestamp succeeded")
	}
	for _, l := range bad.Received() {
		if strings.HasPrefix(l, "APOP") {
			t.Fatalf("the server received %q for a malformed timestamp", l)
		}
	}
	relRecord("hardening", "an APOP timestamp that is not an RFC 1939 msg-id (`<x ESC[2J@y>`), auth: apop (issue 12.3)",
		"sent no APOP: `"+strings.TrimSpace(r.stderr)+"`", r.code, 1-len(bad.Messages()), 0)
}
