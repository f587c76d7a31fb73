package discover

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// servers starts an implicit-TLS, an STLS and a plain server (no STLS) on 127.0.0.1 with a
// certificate for 127.0.0.1 from a test CA; caFile holds the CA.
func servers(t *testing.T) (implicit, stls, plain *pop3test.Server, caFile string) {
	t.Helper()
	ca, err := pop3test.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	start := func(mode pop3test.TLSMode) *pop3test.Server {
		cert, err := ca.Issue([]string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return pop3test.NewServer(t, &pop3test.Options{TLS: mode, Certificate: &cert})
	}
	return start(pop3test.ImplicitTLS), start(pop3test.STLS), start(pop3test.Plain), caFile
}

// TestFindHost: Params.Host with Params.Ports standing in for 995 and 110 (which a test cannot
// listen on): every mode asked for is probed, the safest that works is Best, each probe says what
// it found.
func TestFindHost(t *testing.T) {
	t.Parallel()
	implicit, stls, plain, caFile := servers(t)
	ctx := context.Background()
	p := Params{Host: "127.0.0.1", Modes: []pop3.TLSMode{pop3.TLSImplicit, pop3.TLSStartTLS}, CAFile: caFile,
		Timeout: 10 * time.Second, Ports: map[int]int{995: implicit.Port(), 110: stls.Port()}}
	d := Find(ctx, p)
	best, ok := d.Best()
	if !ok || best.Mode != pop3.TLSImplicit || best.Port != implicit.Port() || best.Source != "--host" {
		t.Fatalf("Best = %+v, %v; want implicit TLS on port %d (results %+v)", best, ok, implicit.Port(), d.Results)
	}
	if best.TLSVersion == "" || best.Caps == nil || !best.Caps.UIDL {
		t.Errorf("the probe did not report TLS and CAPA: %+v", best)
	}
	if s := CapsSummary(best); !strings.Contains(s, "TLS 1.3") || !strings.Contains(s, "UIDL") {
		t.Errorf("CapsSummary = %q", s)
	}

	// Only STLS asked for: the STLS server.
	p.Modes = []pop3.TLSMode{pop3.TLSStartTLS}
	if best, ok := Find(ctx, p).Best(); !ok || best.Mode != pop3.TLSStartTLS || best.Port != stls.Port() {
		t.Errorf("STLS: Best = %+v, %v; want port %d", best, ok, stls.Port())
	}

	// STLS asked for from a server without it: refused, not downgraded.
	p.Ports = map[int]int{110: plain.Port()}
	d = Find(ctx, p)
	if _, ok := d.Best(); ok || len(d.Results) != 1 || !errors.Is(d.Results[0].Err, pop3.ErrSTLSUnavailable) {
		t.Fatalf("STLS from a plain server: %+v", d.Results)
	}
	if s := DescribeErr(d.Results[0].Err, p.Timeout); !strings.Contains(s, "does not offer STLS") {
		t.Errorf("DescribeErr = %q", s)
	}

	// An explicit port wins over Ports.
	p.Port, p.Modes = implicit.Port(), []pop3.TLSMode{pop3.TLSImplicit}
	if best, ok := Find(ctx, p).Best(); !ok || best.Port != implicit.Port() {
		t.Errorf("--port: %+v %v", best, ok)
	}
}

// TestFindUntrusted: a certificate from a CA the probe does not trust fails the probe, with a hint.
func TestFindUntrusted(t *testing.T) {
	t.Parallel()
	implicit, _, _, _ := servers(t)
	d := Find(context.Background(), Params{Host: "127.0.0.1", Port: implicit.Port(),
		Modes: []pop3.TLSMode{pop3.TLSImplicit}, Timeout: 10 * time.Second})
	if _, ok := d.Best(); ok {
		t.Fatal("an untrusted certificate was accepted")
	}
	if s := DescribeErr(d.Results[0].Err, time.Second); !strings.Contains(s, "--ca-file") {
		t.Errorf("DescribeErr = %q, want the --ca-file hint", s)
	}
}

func TestParsePorts(t *testing.T) {
	for in, want := range map[string]map[int]int{
		"":                {},
		"995=1995":        {995: 1995},
		"995=1,110=65535": {995: 1, 110: 65535},
		" 110=2110 ":      {110: 2110},
	} {
		got, err := ParsePorts(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"995", "25=2525", "995=0", "995=65536", "995=x", "995=1;110=2"} {
		if _, err := ParsePorts(in); err == nil {
			t.Errorf("ParsePorts(%q) accepted", in)
		}
	}
}

// TestOrderSRV checks the RFC 2782 order: priority first; within a priority, weighted random
// (weight-0 records first in the running sum); target "." dropped.
func TestOrderSRV(t *testing.T) {
	srv := func(target string, prio, weight uint16) *net.SRV {
		return &net.SRV{Target: target, Priority: prio, Weight: weight}
	}
	targets := func(rs []*net.SRV) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Target)
		}
		return out
	}
	recs := []*net.SRV{srv("c", 20, 0), srv("a", 10, 60), srv("b", 10, 40), srv(".", 5, 0), srv("z", 10, 0)}
	tests := []struct {
		picks []int // the successive results of intN
		want  []string
	}{
		// priority 10: running sums z:0 a:60 b:100. Pick 0 -> z; then a:60 b:100, pick 0 -> a; then b.
		{[]int{0, 0, 0, 0}, []string{"z", "a", "b", "c"}},
		// pick 61 -> b (first running sum >= 61); then z:0 a:60, pick 1 -> a; then z.
		{[]int{61, 1, 0, 0}, []string{"b", "a", "z", "c"}},
		// pick 100 -> b; pick 60 -> a.
		{[]int{100, 60, 0, 0}, []string{"b", "a", "z", "c"}},
	}
	for _, tt := range tests {
		var ns []int
		picks := tt.picks
		got := orderSRV(recs, func(n int) int {
			ns = append(ns, n)
			p := picks[0]
			picks = picks[1:]
			if p >= n {
				t.Fatalf("pick %d out of [0,%d)", p, n)
			}
			return p
		})
		if !reflect.DeepEqual(targets(got), tt.want) {
			t.Errorf("picks %v: order %v, want %v (n = %v)", tt.picks, targets(got), tt.want, ns)
		}
	}
	// Equal weights: every order is possible, but priorities never mix.
	for i := range 50 {
		got := targets(orderSRV(recs, func(n int) int { return (i * 7) % n }))
		if len(got) != 4 || got[3] != "c" {
			t.Fatalf("order %v", got)
		}
	}
	if got := orderSRV([]*net.SRV{srv(".", 0, 0)}, nil); len(got) != 0 {
		t.Errorf(`"." kept: %v`, got)
	}
}
