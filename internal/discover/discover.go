// Package discover finds an e-mail domain's POP3 server for `popfetch init`: the DNS SRV records of
// RFC 6186, then the usual host names, each candidate probed for POP3S (implicit TLS, RFC 8314) and
// STLS (RFC 2595), all at once, with certificates verified as a sync would verify them. It never
// logs in. The probes are bounded (limits.go): a domain's DNS decides what is connected to.
package discover

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

	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/internal/termsafe"
)

// UsualNames are the host names tried when the domain publishes no SRV record, in this order.
var UsualNames = []string{"pop", "pop3", "mail"}

// Candidate is one way to reach a POP3 server: a host, a port and how TLS is used.
type Candidate struct {
	Host   string
	Port   int
	Mode   pop3.TLSMode
	Source string // where it came from: "SRV _pop3s._tcp.example.com", "usual name", "--host"
	SRV    bool   // from an SRV record (or Params.Host): ranks before the usual names
	order  int    // position in the order of discovery (SRV order, then the usual names)
}

// Addr is host:port.
func (c Candidate) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// ModeLabel is the mode for people.
func ModeLabel(m pop3.TLSMode) string {
	switch m {
	case pop3.TLSImplicit:
		return "implicit TLS"
	case pop3.TLSStartTLS:
		return "STLS"
	}
	return "no TLS"
}

// Result is what probing one candidate found.
type Result struct {
	Candidate
	Err        error              // nil: the server greeted, TLS (if any) verified, CAPA read or absent
	Caps       *pop3.Capabilities // nil when the server has no CAPA
	TLSVersion string
}

// Params configure a discovery.
type Params struct {
	Domain   string         // the e-mail domain; "" with Host
	Host     string         // probe only this host (no DNS SRV lookup)
	Port     int            // with Host; 0 = the mode's well-known port
	Modes    []pop3.TLSMode // the modes to try, safest first
	Resolver *net.Resolver  // nil = the system's
	CAFile   string         // extra trust anchors for the probes
	Timeout  time.Duration  // per DNS lookup and per probe
	// Ports remaps the well-known ports 995 and 110, probed for the usual names (and for Host
	// without Port), to other ports: for tests, which cannot listen on 995 or 110. nil: none.
	Ports map[int]int
}

// Discovery is the outcome of a discovery: what DNS said and what each probe found.
type Discovery struct {
	Notes   []string // what the DNS lookups found, for people
	Results []Result // every probe, in the order of discovery
}

// srvLookup is the answer for one SRV name.
type srvLookup struct {
	name       string
	records    []*net.SRV // usable records in the order to try them (RFC 2782)
	notOffered bool       // the single record's target is ".": the service is decidedly not available
	err        error      // a lookup failure other than "no such record"
	dropped    int        // records over MaxSRVTargets or repeated, not probed (capRecords)
}

// Find looks the domain's servers up and probes every candidate concurrently.
func Find(ctx context.Context, p Params) *Discovery {
	d := &Discovery{}
	want := func(m pop3.TLSMode) bool { return slices.Contains(p.Modes, m) }
	var cands []Candidate
	add := func(c Candidate) {
		for _, o := range cands {
			if o.Host == c.Host && o.Port == c.Port && o.Mode == c.Mode {
				return
			}
		}
		c.order = len(cands)
		cands = append(cands, c)
	}
	wellKnown := func(m pop3.TLSMode) int {
		port := m.DefaultPort()
		if q, ok := p.Ports[port]; ok {
			return q
		}
		return port
	}

	if p.Host != "" {
		for _, m := range p.Modes {
			port := p.Port
			if port == 0 {
				port = wellKnown(m)
			}
			add(Candidate{Host: p.Host, Port: port, Mode: m, Source: "--host", SRV: true})
		}
	} else {
		// RFC 6186 §3.1: _pop3s._tcp (implicit TLS) and _pop3._tcp (STLS or plain).
		var lookups [2]srvLookup
		var wg sync.WaitGroup
		for i, svc := range []string{"pop3s", "pop3"} {
			wg.Go(func() { lookups[i] = lookupSRV(ctx, p.Resolver, p.Timeout, svc, p.Domain) })
		}
		wg.Wait()
		for i := range lookups {
			lookups[i].capRecords() // limits.go
		}
		s, plain := lookups[0], lookups[1]
		for _, l := range lookups {
			switch {
			case l.err != nil:
				d.Notes = append(d.Notes, fmt.Sprintf("SRV %s: lookup failed: %v", l.name, l.err))
			case l.notOffered:
				d.Notes = append(d.Notes, fmt.Sprintf("SRV %s: \".\" (the domain says: not offered)", l.name))
			case len(l.records) == 0:
				d.Notes = append(d.Notes, fmt.Sprintf("SRV %s: none", l.name))
			default:
				for _, r := range l.records {
					d.Notes = append(d.Notes, fmt.Sprintf("SRV %s: %s port %d (priority %d, weight %d)",
						l.name, strings.TrimSuffix(r.Target, "."), r.Port, r.Priority, r.Weight))
				}
				if l.dropped > 0 {
					d.Notes = append(d.Notes, l.droppedNote())
				}
			}
		}
		for _, r := range s.records {
			if want(pop3.TLSImplicit) {
				add(Candidate{Host: strings.TrimSuffix(r.Target, "."), Port: int(r.Port), Mode: pop3.TLSImplicit,
					Source: "SRV " + s.name, SRV: true})
			}
		}
		for _, r := range plain.records {
			for _, m := range []pop3.TLSMode{pop3.TLSStartTLS, pop3.TLSNone} {
				if want(m) {
					add(Candidate{Host: strings.TrimSuffix(r.Target, "."), Port: int(r.Port), Mode: m,
						Source: "SRV " + plain.name, SRV: true})
				}
			}
		}
		// The usual names, for the services DNS did not declare absent.
		for _, n := range UsualNames {
			host := n + "." + p.Domain
			for _, m := range p.Modes {
				if (m == pop3.TLSImplicit && s.notOffered) || (m != pop3.TLSImplicit && plain.notOffered) {
					continue
				}
				add(Candidate{Host: host, Port: wellKnown(m), Mode: m, Source: "usual name"})
			}
		}
	}

	d.Results = probeAll(ctx, cands, p)
	return d
}

// probeAll probes the candidates concurrently, at most MaxProbes at once, best-ranked first.
// As soon as the best-ranked candidate that can still work has worked, the probes still
// running are abandoned and those not started are not made (their error is ErrNotNeeded): a port
// that drops packets, or an STLS probe of a port that speaks TLS, does not hold init up.
func probeAll(ctx context.Context, cands []Candidate, p Params) []Result {
	results := make([]Result, len(cands))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type done struct {
		i int
		r Result
	}
	ch := make(chan done, len(cands))
	// ranked lists the candidates best first; finished marks those whose probe has returned.
	ranked := make([]int, len(cands))
	for i := range ranked {
		ranked[i] = i
	}
	slices.SortStableFunc(ranked, func(a, b int) int {
		return compare(Result{Candidate: cands[a]}, Result{Candidate: cands[b]})
	})
	started := 0
	startNext := func() {
		i := ranked[started]
		started++
		go func() { ch <- done{i, Probe(ctx, cands[i], p)} }()
	}
	for started < min(MaxProbes, len(cands)) {
		startNext()
	}
	finished := make([]bool, len(cands))
	decided := false
	for running := started; running > 0; running-- {
		d := <-ch
		results[d.i], finished[d.i] = d.r, true
		if decided {
			if d.r.Err != nil { // cancelled, or failed meanwhile: either way not needed
				results[d.i].Err = ErrNotNeeded
			}
			continue
		}
		for _, i := range ranked {
			if !finished[i] {
				break
			}
			if results[i].Err == nil {
				decided = true
				cancel(ErrNotNeeded)
				break
			}
		}
		if !decided && ctx.Err() == nil && started < len(cands) {
			startNext()
			running++
		}
	}
	for _, i := range ranked[started:] { // never probed
		results[i] = Result{Candidate: cands[i], Err: ErrNotNeeded}
		if !decided {
			results[i].Err = context.Cause(ctx)
		}
	}
	return results
}

// ErrNotNeeded marks a probe abandoned because a better setting already worked.
var ErrNotNeeded = errors.New("not waited for: a safer setting works")

// Best returns the safest working setting: implicit TLS before STLS before plaintext; for one mode,
// SRV records (in their order) before the usual names. ok is false when nothing worked.
func (d *Discovery) Best() (Result, bool) {
	ok := d.Working()
	if len(ok) == 0 {
		return Result{}, false
	}
	return ok[0], true
}

// Working returns the candidates that worked, best first.
func (d *Discovery) Working() []Result {
	var ok []Result
	for _, r := range d.Results {
		if r.Err == nil {
			ok = append(ok, r)
		}
	}
	slices.SortStableFunc(ok, compare)
	return ok
}

func compare(a, b Result) int {
	if a.Mode != b.Mode {
		return int(a.Mode) - int(b.Mode) // pop3.TLSImplicit < TLSStartTLS < TLSNone
	}
	if a.SRV != b.SRV {
		if a.SRV {
			return -1
		}
		return 1
	}
	return a.order - b.order
}

// lookupSRV looks up _SERVICE._tcp.DOMAIN.
func lookupSRV(ctx context.Context, res *net.Resolver, timeout time.Duration, service, domain string) srvLookup {
	l := srvLookup{name: "_" + service + "._tcp." + domain}
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
	l.records = orderSRV(recs, rand.IntN)
	return l
}

// orderSRV orders SRV records as RFC 2782 says clients try them: lowest priority first; within a
// priority, a weighted random order (records of weight 0 first in the running sum, so that they are
// rarely chosen while others remain). Records with the target "." are dropped. intN returns a
// uniform random number in [0, n).
func orderSRV(recs []*net.SRV, intN func(n int) int) []*net.SRV {
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

// Probe connects to the candidate as a sync would (certificate verified, STLS required for
// STLS), reads CAPA, and says QUIT. It never logs in.
func Probe(ctx context.Context, c Candidate, p Params) Result {
	r := Result{Candidate: c}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	opts := &pop3.Options{CAFile: p.CAFile, Timeout: p.Timeout,
		Dialer: &net.Dialer{Timeout: p.Timeout, Resolver: p.Resolver}}
	cl, err := pop3.Dial(ctx, c.Addr(), c.Mode, opts)
	if err != nil {
		r.Err = err
		return r
	}
	defer cl.Close()
	caps, err := cl.Capa(ctx)
	var perr *pop3.Error
	switch {
	case errors.As(err, &perr): // an RFC 1939-only server: no CAPA
	case err != nil:
		r.Err = err
		return r
	default:
		r.Caps = caps
	}
	if st, ok := cl.TLSConnectionState(); ok {
		r.TLSVersion = tls.VersionName(st.Version)
	}
	_ = cl.Quit(ctx)
	return r
}

// NotFound reports whether err says the host name does not exist.
func NotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// DescribeErr says in a few words why a probe failed.
func DescribeErr(err error, timeout time.Duration) string {
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

// CapsSummary lists what matters of CAPA for a profile.
func CapsSummary(r Result) string {
	var parts []string
	if r.TLSVersion != "" {
		parts = append(parts, r.TLSVersion)
	}
	if r.Caps == nil {
		return strings.Join(append(parts, "no CAPA"), ", ")
	}
	yesNo := func(ok bool, tag string) {
		if ok {
			parts = append(parts, tag)
		} else {
			parts = append(parts, "no "+tag)
		}
	}
	yesNo(r.Caps.UIDL, "UIDL")
	yesNo(r.Caps.Pipelining, "PIPELINING")
	if r.Caps.User {
		parts = append(parts, "USER")
	}
	if len(r.Caps.SASL) > 0 {
		parts = append(parts, "SASL "+strings.Join(r.Caps.SASL, " "))
	}
	return strings.Join(parts, ", ")
}

// ParsePorts parses Params.Ports written as "995=PORT,110=PORT" (either half may be left out).
func ParsePorts(s string) (map[int]int, error) {
	m := map[int]int{}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for f := range strings.SplitSeq(s, ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(f), "=")
		a, err1 := strconv.Atoi(from)
		b, err2 := strconv.Atoi(to)
		if !ok || err1 != nil || err2 != nil || (a != 995 && a != 110) || b < 1 || b > 65535 {
			return nil, fmt.Errorf("%q: want \"995=PORT,110=PORT\"", s)
		}
		m[a] = b
	}
	return m, nil
}

// Resolver returns a resolver that asks the DNS server at addr ("host" or "host:port"), or nil
// (the system's resolver) when addr is empty.
func Resolver(addr string) (*net.Resolver, error) {
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
