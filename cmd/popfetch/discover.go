package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/internal/termsafe"
)

// This file is the server discovery of `popfetch init`: the DNS SRV records of RFC 6186, then the
// usual host names, each candidate probed for POP3S (implicit TLS, RFC 8314) and STLS (RFC 2595), all
// at once, with certificates verified as a sync would verify them.

// initTestPortsEnv names the environment variable that remaps the well-known ports 995 and 110 that
// init probes for the usual host names (and for --host without --port), as "995=PORT,110=PORT".
// It exists for tests only (a test cannot listen on 995 or 110); users have no reason to set it.
const initTestPortsEnv = "POPFETCH_INIT_TEST_PORTS"

// initUsualNames are the host names tried when the domain publishes no SRV record, in this order.
var initUsualNames = []string{"pop", "pop3", "mail"}

// initCandidate is one way to reach a POP3 server: a host, a port and how TLS is used.
type initCandidate struct {
	host   string
	port   int
	mode   pop3.TLSMode
	source string // where it came from: "SRV _pop3s._tcp.example.com", "usual name", "--host"
	srv    bool   // from an SRV record (or --host): ranks before the usual names
	order  int    // position in the order of discovery (SRV order, then the usual names)
}

func (c initCandidate) addr() string { return net.JoinHostPort(c.host, strconv.Itoa(c.port)) }

// initModeName is the mode as the profile's tls: key spells it.
func initModeName(m pop3.TLSMode) string {
	switch m {
	case pop3.TLSImplicit:
		return config.TLSImplicit
	case pop3.TLSStartTLS:
		return config.TLSStartTLS
	}
	return config.TLSNone
}

// initModeLabel is the mode for people.
func initModeLabel(m pop3.TLSMode) string {
	switch m {
	case pop3.TLSImplicit:
		return "implicit TLS"
	case pop3.TLSStartTLS:
		return "STLS"
	}
	return "no TLS"
}

// initProbeResult is what probing one candidate found.
type initProbeResult struct {
	initCandidate
	err        error              // nil: the server greeted, TLS (if any) verified, CAPA read or absent
	caps       *pop3.Capabilities // nil when the server has no CAPA
	tlsVersion string
}

// initDiscoverParams configure a discovery.
type initDiscoverParams struct {
	domain   string         // the e-mail domain; "" with --host
	host     string         // --host: probe only this host
	port     int            // --port (with --host); 0 = the mode's port
	modes    []pop3.TLSMode // the modes to try, safest first
	resolver *net.Resolver  // nil = the system's
	caFile   string         // extra trust anchors for the probes
	timeout  time.Duration  // per DNS lookup and per probe
	ports    map[int]int    // initTestPortsEnv: well-known port -> port to probe
}

// initDiscovery is the outcome of a discovery: what DNS said and what each probe found.
type initDiscovery struct {
	notes   []string          // what the DNS lookups found, for people
	results []initProbeResult // every probe, in the order of discovery
}

// initSRVLookup is the answer for one SRV name.
type initSRVLookup struct {
	name       string
	records    []*net.SRV // usable records in the order to try them (RFC 2782)
	notOffered bool       // the single record's target is ".": the service is decidedly not available
	err        error      // a lookup failure other than "no such record"
	dropped    int        // records over initMaxSRVTargets or repeated, not probed (capRecords)
}

// initDiscover looks the domain's servers up and probes every candidate concurrently.
func initDiscover(ctx context.Context, p initDiscoverParams) *initDiscovery {
	d := &initDiscovery{}
	want := func(m pop3.TLSMode) bool { return slices.Contains(p.modes, m) }
	var cands []initCandidate
	add := func(c initCandidate) {
		for _, o := range cands {
			if o.host == c.host && o.port == c.port && o.mode == c.mode {
				return
			}
		}
		c.order = len(cands)
		cands = append(cands, c)
	}
	wellKnown := func(m pop3.TLSMode) int {
		port := m.DefaultPort()
		if q, ok := p.ports[port]; ok {
			return q
		}
		return port
	}

	if p.host != "" {
		for _, m := range p.modes {
			port := p.port
			if port == 0 {
				port = wellKnown(m)
			}
			add(initCandidate{host: p.host, port: port, mode: m, source: "--host", srv: true})
		}
	} else {
		// RFC 6186 §3.1: _pop3s._tcp (implicit TLS) and _pop3._tcp (STLS or plain).
		var lookups [2]initSRVLookup
		var wg sync.WaitGroup
		for i, svc := range []string{"pop3s", "pop3"} {
			wg.Go(func() { lookups[i] = initLookupSRV(ctx, p.resolver, p.timeout, svc, p.domain) })
		}
		wg.Wait()
		for i := range lookups {
			lookups[i].capRecords() // discover_limits.go
		}
		s, plain := lookups[0], lookups[1]
		for _, l := range lookups {
			switch {
			case l.err != nil:
				d.notes = append(d.notes, fmt.Sprintf("SRV %s: lookup failed: %v", l.name, l.err))
			case l.notOffered:
				d.notes = append(d.notes, fmt.Sprintf("SRV %s: \".\" (the domain says: not offered)", l.name))
			case len(l.records) == 0:
				d.notes = append(d.notes, fmt.Sprintf("SRV %s: none", l.name))
			default:
				for _, r := range l.records {
					d.notes = append(d.notes, fmt.Sprintf("SRV %s: %s port %d (priority %d, weight %d)",
						l.name, strings.TrimSuffix(r.Target, "."), r.Port, r.Priority, r.Weight))
				}
				if l.dropped > 0 {
					d.notes = append(d.notes, l.droppedNote())
				}
			}
		}
		for _, r := range s.records {
			if want(pop3.TLSImplicit) {
				add(initCandidate{host: strings.TrimSuffix(r.Target, "."), port: int(r.Port), mode: pop3.TLSImplicit,
					source: "SRV " + s.name, srv: true})
			}
		}
		for _, r := range plain.records {
			for _, m := range []pop3.TLSMode{pop3.TLSStartTLS, pop3.TLSNone} {
				if want(m) {
					add(initCandidate{host: strings.TrimSuffix(r.Target, "."), port: int(r.Port), mode: m,
						source: "SRV " + plain.name, srv: true})
				}
			}
		}
		// The usual names, for the services DNS did not declare absent.
		for _, n := range initUsualNames {
			host := n + "." + p.domain
			for _, m := range p.modes {
				if (m == pop3.TLSImplicit && s.notOffered) || (m != pop3.TLSImplicit && plain.notOffered) {
					continue
				}
				add(initCandidate{host: host, port: wellKnown(m), mode: m, source: "usual name"})
			}
		}
	}

	d.results = initProbeAll(ctx, cands, p)
	return d
}

// initProbeAll probes the candidates concurrently, at most initMaxProbes at once, best-ranked first
// (issue 17.6). As soon as the best-ranked candidate that can still work has worked, the probes still
// running are abandoned and those not started are not made (their error is errInitNotNeeded): a port
// that drops packets, or an STLS probe of a port that speaks TLS, does not hold init up.
func initProbeAll(ctx context.Context, cands []initCandidate, p initDiscoverParams) []initProbeResult {
	results := make([]initProbeResult, len(cands))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type done struct {
		i int
		r initProbeResult
	}
	ch := make(chan done, len(cands))
	// ranked lists the candidates best first; finished marks those whose probe has returned.
	ranked := make([]int, len(cands))
	for i := range ranked {
		ranked[i] = i
	}
	slices.SortStableFunc(ranked, func(a, b int) int {
		return initCompare(initProbeResult{initCandidate: cands[a]}, initProbeResult{initCandidate: cands[b]})
	})
	started := 0
	startNext := func() {
		i := ranked[started]
		started++
		go func() { ch <- done{i, initProbe(ctx, cands[i], p)} }()
	}
	for started < min(initMaxProbes, len(cands)) {
		startNext()
	}
	finished := make([]bool, len(cands))
	decided := false
	for running := started; running > 0; running-- {
		d := <-ch
		results[d.i], finished[d.i] = d.r, true
		if decided {
			if d.r.err != nil { // cancelled, or failed meanwhile: either way not needed
				results[d.i].err = errInitNotNeeded
			}
			continue
		}
		for _, i := range ranked {
			if !finished[i] {
				break
			}
			if results[i].err == nil {
				decided = true
				cancel(errInitNotNeeded)
				break
			}
		}
		if !decided && ctx.Err() == nil && started < len(cands) {
			startNext()
			running++
		}
	}
	for _, i := range ranked[started:] { // never probed
		results[i] = initProbeResult{initCandidate: cands[i], err: errInitNotNeeded}
		if !decided {
			results[i].err = context.Cause(ctx)
		}
	}
	return results
}

// errInitNotNeeded marks a probe abandoned because a better setting already worked.
var errInitNotNeeded = errors.New("not waited for: a safer setting works")

// best returns the safest working setting: implicit TLS before STLS before plaintext; for one mode,
// SRV records (in their order) before the usual names. ok is false when nothing worked.
func (d *initDiscovery) best() (initProbeResult, bool) {
	ok := d.working()
	if len(ok) == 0 {
		return initProbeResult{}, false
	}
	return ok[0], true
}

// working returns the candidates that worked, best first.
func (d *initDiscovery) working() []initProbeResult {
	var ok []initProbeResult
	for _, r := range d.results {
		if r.err == nil {
			ok = append(ok, r)
		}
	}
	slices.SortStableFunc(ok, initCompare)
	return ok
}

func initCompare(a, b initProbeResult) int {
	if a.mode != b.mode {
		return int(a.mode) - int(b.mode) // pop3.TLSImplicit < TLSStartTLS < TLSNone
	}
	if a.srv != b.srv {
		if a.srv {
			return -1
		}
		return 1
	}
	return a.order - b.order
}

// initLookupSRV looks up _SERVICE._tcp.DOMAIN.
func initLookupSRV(ctx context.Context, res *net.Resolver, timeout time.Duration, service, domain string) initSRVLookup {
	l := initSRVLookup{name: "_" + service + "._tcp." + domain}
	if res == nil {
		res = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The name is made absolute so that no search domain of resolv.conf is appended.
	_, recs, err := res.LookupSRV(ctx, "", "", l.name+".")
	var dnsErr *net.DNSError
	if err != nil && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		l.err = err
		if dnsErr != nil {
			l.err = errors.New(dnsErr.Err)
		}
		return l
	}
	// RFC 2782: a single record whose target is "." means the service is decidedly not available.
	if len(recs) == 1 && (recs[0].Target == "." || recs[0].Target == "") {
		l.notOffered = true
		return l
	}
	l.records = initOrderSRV(recs, rand.IntN)
	return l
}

// initOrderSRV orders SRV records as RFC 2782 says clients try them: lowest priority first; within a
// priority, a weighted random order (records of weight 0 first in the running sum, so that they are
// rarely chosen while others remain). Records with the target "." are dropped. intN returns a
// uniform random number in [0, n).
func initOrderSRV(recs []*net.SRV, intN func(n int) int) []*net.SRV {
	var usable []*net.SRV
	for _, r := range recs {
		if r != nil && r.Target != "." && r.Target != "" {
			usable = append(usable, r)
		}
	}
	slices.SortStableFunc(usable, func(a, b *net.SRV) int {
		if a.Priority != b.Priority {
			return int(a.Priority) - int(b.Priority)
		}
		// Weight 0 first within the priority (RFC 2782, "Usage rules").
		return min(int(a.Weight), 1) - min(int(b.Weight), 1)
	})
	out := make([]*net.SRV, 0, len(usable))
	for i := 0; i < len(usable); {
		j := i
		for j < len(usable) && usable[j].Priority == usable[i].Priority {
			j++
		}
		group := slices.Clone(usable[i:j])
		for len(group) > 0 {
			sum := 0
			for _, r := range group {
				sum += int(r.Weight)
			}
			// A uniform number in [0, sum]; the first record whose running sum reaches it is next.
			pick := intN(sum + 1)
			run, k := 0, 0
			for k = range group {
				run += int(group[k].Weight)
				if run >= pick {
					break
				}
			}
			out = append(out, group[k])
			group = slices.Delete(group, k, k+1)
		}
		i = j
	}
	return out
}

// initProbe connects to the candidate as a sync would (certificate verified, STLS required for
// STLS), reads CAPA, and says QUIT. It never logs in.
func initProbe(ctx context.Context, c initCandidate, p initDiscoverParams) initProbeResult {
	r := initProbeResult{initCandidate: c}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	opts := &pop3.Options{CAFile: p.caFile, Timeout: p.timeout,
		Dialer: &net.Dialer{Timeout: p.timeout, Resolver: p.resolver}}
	cl, err := pop3.Dial(ctx, c.addr(), c.mode, opts)
	if err != nil {
		r.err = err
		return r
	}
	defer cl.Close()
	caps, err := cl.Capa(ctx)
	var perr *pop3.Error
	switch {
	case errors.As(err, &perr): // an RFC 1939-only server: no CAPA
	case err != nil:
		r.err = err
		return r
	default:
		r.caps = caps
	}
	if st, ok := cl.TLSConnectionState(); ok {
		r.tlsVersion = tls.VersionName(st.Version)
	}
	_ = cl.Quit(ctx)
	return r
}

// initNotFound reports whether err says the host name does not exist.
func initNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// initDescribeErr says in a few words why a probe failed.
func initDescribeErr(err error, timeout time.Duration) string {
	var (
		tlsErr *pop3.TLSError
		dnsErr *net.DNSError
		perr   *pop3.Error
	)
	switch {
	case errors.Is(err, pop3.ErrSTLSUnavailable):
		return "the server does not offer STLS (or it was stripped on the way): not usable with tls: starttls"
	case errors.As(err, &tlsErr):
		msg := "TLS failed: " + termsafe.String(tlsErr.Err.Error()) // it can quote the certificate
		var unknown x509.UnknownAuthorityError
		if errors.As(err, &unknown) {
			msg += " (a private CA? pass --ca-file FILE)"
		}
		return msg
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such host"
	case errors.As(err, &dnsErr):
		return "DNS: " + dnsErr.Err
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("no answer within %v", timeout)
	case errors.As(err, &perr):
		return "the server said: " + perr.Error()
	}
	return err.Error()
}

// initCapsSummary lists what matters of CAPA for a profile.
func initCapsSummary(r initProbeResult) string {
	var parts []string
	if r.tlsVersion != "" {
		parts = append(parts, r.tlsVersion)
	}
	if r.caps == nil {
		return strings.Join(append(parts, "no CAPA"), ", ")
	}
	yesNo := func(ok bool, tag string) {
		if ok {
			parts = append(parts, tag)
		} else {
			parts = append(parts, "no "+tag)
		}
	}
	yesNo(r.caps.UIDL, "UIDL")
	yesNo(r.caps.Pipelining, "PIPELINING")
	if r.caps.User {
		parts = append(parts, "USER")
	}
	if len(r.caps.SASL) > 0 {
		parts = append(parts, "SASL "+strings.Join(r.caps.SASL, " "))
	}
	return strings.Join(parts, ", ")
}

// initParsePorts parses initTestPortsEnv: "995=PORT,110=PORT".
func initParsePorts(s string) (map[int]int, error) {
	m := map[int]int{}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for f := range strings.SplitSeq(s, ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(f), "=")
		a, err1 := strconv.Atoi(from)
		b, err2 := strconv.Atoi(to)
		if !ok || err1 != nil || err2 != nil || (a != 995 && a != 110) || b < 1 || b > 65535 {
			return nil, fmt.Errorf("%s=%q: want \"995=PORT,110=PORT\"", initTestPortsEnv, s)
		}
		m[a] = b
	}
	return m, nil
}

// initResolver returns a resolver that asks the DNS server at addr ("host" or "host:port"), or nil
// (the system's resolver) when addr is empty.
func initResolver(addr string) (*net.Resolver, error) {
	if addr == "" {
		return nil, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "53")
	}
	host, _, _ := net.SplitHostPort(addr)
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("--dns-server %q: want an IP address, optionally with :PORT", addr)
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}, nil
}
