//go:build linux

// Command bench measures popfetch side by side with mpop and fetchmail against a private Dovecot.
//
//	go run ./bench [-runs N] [-scenario a,b,...] [-big] [-huge] [-imap] [-out FILE]
//	go run ./bench -scenario many [-many-accounts 1000,10000] [-many-interval 5m] [-out FILE]
//
// It starts a private Dovecot POP3S on 127.0.0.1 (package dovecot), seeds its mailboxes with
// deterministic messages, and puts a latency-injecting proxy in front of it. Each fetcher that is
// installed (popfetch is built from this module) then runs with equivalent settings: implicit TLS
// verified against the test CA, maildir delivery into a fresh maildir of its own, delete or keep
// mode. Each run is verified (every message delivered once and intact; the server empty after a
// delete run and unchanged after a keep run); a run that fails verification is reported as
// FAILED and not timed. The mailbox is seeded again before every run.
//
// Reported per fetcher: the median over the runs of wall time, CPU time (user+system of the process
// and the children it waited for, from wait4) and peak RSS (the largest of those processes), the
// round trips counted at the proxy, and the ratio of each median to popfetch's in the same
// invocation. The i-* scenarios (-imap, or -scenario i) measure popfetch appending to Dovecot's IMAP
// (deliver: imap:) beside popfetch into a maildir, with the round trips of both legs (bench/imap.go).
// See docs/BENCHMARKS.md.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test/dovecot"
)

// A scenario is a mailbox (or several), a network and a mode.
type scenario struct {
	id, title  string
	rtt        time.Duration
	keep       bool
	nothingNew bool // time a second keep run that finds nothing new (the first one seeds the state)
	accounts   int
	optional   string // the flag that enables it, "" when it runs by default
	imap       bool   // popfetch into Dovecot IMAP, compared with popfetch into a maildir (bench/imap.go)
	gen        func(sc string, acct int) [][]byte
}

func smalls(n, size int) func(string, int) [][]byte {
	return func(sc string, acct int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = smallMessage(sc, acct, i, size)
		}
		return out
	}
}

func bigs(n, size int) func(string, int) [][]byte {
	return func(sc string, acct int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = bigMessage(sc, acct, i, size)
		}
		return out
	}
}

const ms = time.Millisecond

var scenarios = []*scenario{
	{id: "a-0ms-delete", title: "1,000 × 4 KB, 0 ms RTT, delete", accounts: 1, gen: smalls(1000, 4096)},
	{id: "a-0ms-keep", title: "1,000 × 4 KB, 0 ms RTT, keep", keep: true, accounts: 1, gen: smalls(1000, 4096)},
	{id: "a-50ms-delete", title: "1,000 × 4 KB, 50 ms RTT, delete", rtt: 50 * ms, accounts: 1, gen: smalls(1000, 4096)},
	{id: "a-50ms-keep", title: "1,000 × 4 KB, 50 ms RTT, keep", rtt: 50 * ms, keep: true, accounts: 1, gen: smalls(1000, 4096)},
	{id: "b-nothing-new", title: "nothing new (1,000 on the server, keep), 50 ms RTT", rtt: 50 * ms, keep: true, nothingNew: true, accounts: 1, gen: smalls(1000, 4096)},
	{id: "c-20x5MB", title: "20 × 5 MB, 0 ms RTT, delete", accounts: 1, gen: bigs(20, 5<<20)},
	{id: "c-1x200MB", title: "1 × 200 MB, 0 ms RTT, delete", accounts: 1, optional: "big", gen: bigs(1, 200<<20)},
	{id: "d-20-accounts", title: "20 accounts × 50 × 4 KB, 50 ms RTT, delete", rtt: 50 * ms, accounts: 20, gen: smalls(50, 4096)},
	{id: "i-0ms-delete", title: "1,000 × 4 KB, POP3S → IMAP, 0 ms RTT on both legs, delete", accounts: 1, imap: true, optional: "imap", gen: smalls(1000, 4096)},
	{id: "i-50ms-delete", title: "1,000 × 4 KB, POP3S → IMAP, 50 ms RTT on both legs, delete", rtt: 50 * ms, accounts: 1, imap: true, optional: "imap", gen: smalls(1000, 4096)},
	{id: "i-20x5MB", title: "20 × 5 MB, POP3S → IMAP, 0 ms RTT, delete", accounts: 1, imap: true, optional: "imap", gen: bigs(20, 5<<20)},
	{id: "e-100k-nothing-new", title: "nothing new (100,000 on the server, keep), 0 ms RTT", keep: true, nothingNew: true, accounts: 1, optional: "huge", gen: smalls(100000, 1024)},
}

const password = "bench-secret"

// keepWork is set when -keep-failed keeps a failed run's files.
var keepWork bool

type result struct {
	f    *fetcher
	runs []measure
}

type options struct {
	runs       int
	slow       time.Duration
	timeout    time.Duration
	bandwidth  int64
	popfetch   string
	out        string
	only       map[string]bool
	big, huge  bool
	imap       bool
	keepFailed bool
	traceDir   string
	fetchers   map[string]bool
}

func main() {
	var o options
	var only, fetcherList string
	flag.IntVar(&o.runs, "runs", 3, "measured runs per fetcher and scenario (the median is reported)")
	flag.StringVar(&only, "scenario", "", "comma-separated scenario ids or prefixes (a, b, c, d, e, or e.g. a-50ms-keep); default all enabled")
	flag.BoolVar(&o.big, "big", false, "also run c-1x200MB (1 × 200 MB)")
	flag.BoolVar(&o.huge, "huge", false, "also run e-100k-nothing-new (100,000 messages on the server)")
	flag.BoolVar(&o.imap, "imap", false, "also run the i-* scenarios: popfetch into Dovecot IMAP beside popfetch into a maildir (or -scenario i)")
	flag.DurationVar(&o.slow, "slow", 30*time.Second, "a fetcher whose run takes longer than this is measured only once in that scenario")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "kill a fetcher run after this long (reported as FAILED)")
	flag.Int64Var(&o.bandwidth, "bandwidth", 0, "cap each direction of each connection at this many bytes/s at the proxy (0: no cap)")
	flag.StringVar(&fetcherList, "fetchers", "popfetch,mpop,fetchmail", "comma-separated fetchers to run, of popfetch, mpop, fetchmail (popfetch is the reference of the ratios)")
	flag.StringVar(&popfetchAuth, "popfetch-auth", "", "set popfetch's `auth` key (e.g. plain); default: its own choice (auto)")
	flag.StringVar(&o.popfetch, "popfetch", "", "popfetch binary to measure (default: built from ./cmd/popfetch)")
	flag.BoolVar(&o.keepFailed, "keep-failed", false, "keep the files of a failed run (printed) for inspection")
	flag.StringVar(&o.traceDir, "trace", "", "run popfetch with --trace and write its dialogue to `DIR`/SCENARIO-RUN.trace (the timings then include tracing)")
	flag.StringVar(&o.out, "out", "", "also write the report (Markdown) to this file")
	var mo manyOptions
	var manyCounts string
	flag.StringVar(&manyCounts, "many-accounts", "1000,10000", "-scenario many: account counts to run")
	flag.DurationVar(&mo.interval, "many-interval", 5*time.Minute, "-scenario many: the interval for 10,000 accounts (fewer accounts get a proportionally shorter one: the same polls per second)")
	flag.DurationVar(&mo.rtt, "many-rtt", 50*time.Millisecond, "-scenario many: round-trip time at the proxy")
	flag.IntVar(&mo.maxConns, "many-max-connections", 64, "-scenario many: max_connections (every account is on one host)")
	flag.DurationVar(&mo.trickle, "many-trickle", time.Second, "-scenario many: one new message this often, to a random account")
	flag.StringVar(&mo.logDir, "many-log", "", "-scenario many: keep the daemon's log (-v) in `DIR`/daemon-N.log")
	flag.Parse()
	if o.runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		os.Exit(2)
	}
	o.fetchers = map[string]bool{}
	for _, f := range strings.Split(fetcherList, ",") {
		o.fetchers[strings.TrimSpace(f)] = true
	}
	if only != "" {
		o.only = map[string]bool{}
		for _, s := range strings.Split(only, ",") {
			o.only[strings.TrimSpace(s)] = true
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if only == "many" {
		if mo.counts, err = parseManyCounts(manyCounts); err == nil {
			err = runMany(ctx, o, mo)
		}
	} else {
		err = run(ctx, o)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// selected reports whether sc runs: chosen by -scenario (an id or a prefix of ids) or by default,
// and, for an optional scenario, enabled by its flag or named by its full id.
func (o options) selected(sc *scenario) bool {
	named := false
	if o.only != nil {
		match := false
		for k := range o.only {
			if strings.HasPrefix(sc.id, k) {
				match = true
			}
		}
		if !match {
			return false
		}
		named = o.only[sc.id]
	}
	switch sc.optional {
	case "big":
		return o.big || named
	case "huge":
		return o.huge || named
	case "imap":
		return o.imap || named || o.only != nil
	}
	return true
}

func run(ctx context.Context, o options) error {
	work, err := os.MkdirTemp("", "popfetch-bench")
	if err != nil {
		return err
	}
	defer func() {
		if !keepWork {
			os.RemoveAll(work)
		}
	}()
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}

	// The fetchers.
	var active []*fetcher
	for _, f := range fetchers {
		if !o.fetchers[f.name] {
			continue
		}
		switch f.name {
		case "popfetch":
			f.bin = o.popfetch
			if f.bin != "" {
				// Relative to here, not to the run's directory where it is started.
				if f.bin, err = filepath.Abs(f.bin); err != nil {
					return err
				}
			} else {
				f.bin = filepath.Join(work, "popfetch")
				// Built as .ci/release builds what users install: static, without urfave/cli's
				// markdown renderer, stripped (so that the RSS and CPU measured are those of the shipped binary).
				logf("building popfetch (as .ci/release does)")
				b := exec.Command("go", "build", "-trimpath", "-tags", "urfave_cli_no_docs", "-ldflags", "-s -w", "-o", f.bin, "./cmd/popfetch")
				b.Env = append(os.Environ(), "CGO_ENABLED=0")
				b.Stdout, b.Stderr = os.Stderr, os.Stderr
				if err := b.Run(); err != nil {
					return fmt.Errorf("go build ./cmd/popfetch (run from the repository root): %v", err)
				}
			}
			f.version = "the binary given with -popfetch"
			if o.popfetch == "" {
				f.version = gitVersion()
			}
		case "mpop":
			f.bin, _ = exec.LookPath("mpop")
			if f.bin != "" {
				f.version = version(f.bin, "--version")
			}
		case "fetchmail":
			f.bin, _ = exec.LookPath("fetchmail")
			if _, err := exec.LookPath("safecat"); err != nil {
				logf("fetchmail: safecat is not installed; skipping fetchmail")
				f.bin = ""
			}
			if f.bin != "" {
				f.version = version(f.bin, "--version")
			}
		}
		if f.bin == "" {
			logf("%s is not installed; skipping it", f.name)
			continue
		}
		active = append(active, f)
	}

	var chosen []*scenario
	var users []dovecot.User
	withIMAP := false
	for _, sc := range scenarios {
		if !o.selected(sc) {
			continue
		}
		chosen = append(chosen, sc)
		if sc.imap && !withIMAP {
			withIMAP = true
			users = append(users, dovecot.User{Name: imapUser, Password: password})
		}
		for a := range sc.accounts {
			users = append(users, dovecot.User{Name: userName(sc, a), Password: password})
		}
	}
	if len(chosen) == 0 {
		return fmt.Errorf("no scenario selected")
	}

	logf("starting Dovecot")
	srv, err := dovecot.StartServer(&dovecot.Options{Users: users, IMAP: withIMAP})
	if err != nil {
		return err
	}
	defer srv.Close()
	caFile := filepath.Join(work, "ca.pem")
	if err := os.WriteFile(caFile, srv.CAPEM, 0o644); err != nil {
		return err
	}

	rep := &report{o: o, fetchers: active}
	for _, sc := range chosen {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if sc.imap {
			if len(active) == 0 || active[0].name != "popfetch" {
				return fmt.Errorf("%s: needs popfetch among -fetchers", sc.id)
			}
			res, err := runIMAPScenario(ctx, o, sc, srv, active[0], work, caFile)
			if err != nil {
				return fmt.Errorf("%s: %v", sc.id, err)
			}
			rep.b.WriteString(imapTable(sc, res))
			fmt.Print(imapTable(sc, res))
			continue
		}
		res, err := runScenario(ctx, o, sc, srv, active, work, caFile)
		if err != nil {
			return fmt.Errorf("%s: %v", sc.id, err)
		}
		rep.add(sc, res)
		fmt.Print(rep.table(sc, res))
	}
	text := rep.markdown()
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(text), 0o644); err != nil {
			return err
		}
	}
	fmt.Println()
	fmt.Print(text)
	return nil
}

func userName(sc *scenario, acct int) string {
	return fmt.Sprintf("%s-%02d", strings.ToLower(strings.ReplaceAll(sc.id, "-", "")), acct)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// mailbox is one account's seeded messages.
type mailbox struct {
	user  string
	msgs  [][]byte
	byID  map[string][]byte
	count int
}

// reseed empties the accounts' mailboxes, delivers the messages again and opens each mailbox once
// (directly, not through the proxy), so that Dovecot has indexed it before a fetcher comes: a real
// server has seen its messages arrive.
func reseed(ctx context.Context, srv *dovecot.Server, boxes []*mailbox) error {
	for _, b := range boxes {
		if err := srv.Empty(b.user); err != nil {
			return err
		}
		if err := srv.Deliver(b.user, b.msgs...); err != nil {
			return err
		}
		c, err := pop3.Dial(ctx, srv.POP3SAddr, pop3.TLSImplicit, &pop3.Options{RootCAs: srv.CAPool, Timeout: 10 * time.Minute})
		if err != nil {
			return err
		}
		if err := c.Auth(ctx, pop3.Credentials{Username: b.user, Secret: password}); err != nil {
			c.Close()
			return err
		}
		l, err := c.Listing(ctx)
		if err != nil {
			c.Close()
			return err
		}
		if err := c.Quit(ctx); err != nil {
			return err
		}
		if len(l) != len(b.msgs) {
			return fmt.Errorf("seeded %d messages, the server lists %d", len(b.msgs), len(l))
		}
	}
	return nil
}

func newJob(work, name string, sc *scenario, boxes []*mailbox, port int, caFile string) (*job, error) {
	dir, err := os.MkdirTemp(work, name+"-")
	if err != nil {
		return nil, err
	}
	j := &job{dir: dir, host: "127.0.0.1", port: port, caFile: caFile, keep: sc.keep, jobs: max(sc.accounts, 1)}
	for i, b := range boxes {
		md := filepath.Join(dir, fmt.Sprintf("Maildir%02d", i))
		for _, sub := range []string{"new", "cur", "tmp"} {
			if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
				return nil, err
			}
		}
		j.accounts = append(j.accounts, account{name: fmt.Sprintf("acct%02d", i), user: b.user, pass: password, maildir: md})
	}
	return j, nil
}

// verify checks a run: full compares every delivered message, otherwise only their number is
// checked (a nothing-new run must deliver nothing).
func verify(srv *dovecot.Server, j *job, boxes []*mailbox, keep, full bool) error {
	for i, b := range boxes {
		md := j.accounts[i].maildir
		if full {
			if err := verifyMaildir(md, b.byID); err != nil {
				return err
			}
		} else {
			n := 0
			for _, sub := range []string{"new", "cur"} {
				ents, err := os.ReadDir(filepath.Join(md, sub))
				if err != nil {
					return err
				}
				n += len(ents)
			}
			if n != len(b.msgs) {
				return fmt.Errorf("maildir %s: %d messages after a run with nothing new, want %d", md, n, len(b.msgs))
			}
		}
		got, err := srv.Messages(b.user)
		if err != nil {
			return err
		}
		if err := verifyServer(got, b.msgs, keep); err != nil {
			return err
		}
	}
	return nil
}

func runScenario(ctx context.Context, o options, sc *scenario, srv *dovecot.Server, active []*fetcher, work, caFile string) ([]*result, error) {
	logf("%s: %s: generating messages", sc.id, sc.title)
	var boxes []*mailbox
	for a := range sc.accounts {
		b := &mailbox{user: userName(sc, a), msgs: sc.gen(sc.id, a), byID: map[string][]byte{}}
		for _, m := range b.msgs {
			b.byID[idOf(m)] = m
		}
		if len(b.byID) != len(b.msgs) {
			return nil, fmt.Errorf("generator: duplicate Message-IDs")
		}
		boxes = append(boxes, b)
	}
	px, err := newProxy(srv.POP3SAddr, sc.rtt, o.bandwidth)
	if err != nil {
		return nil, err
	}
	defer px.Close()

	results := make([]*result, len(active))
	for i, f := range active {
		results[i] = &result{f: f}
	}
	slow := map[*fetcher]bool{}

	once := func(r *result, j *job, full bool) measure {
		args, env, err := r.f.configure(r.f.bin, j)
		if err != nil {
			return measure{err: err}
		}
		var trace io.Writer
		if o.traceDir != "" && r.f.name == "popfetch" {
			args = append([]string{"--trace"}, args...)
			tf, err := os.Create(filepath.Join(o.traceDir, fmt.Sprintf("%s-%d.trace", sc.id, len(r.runs)+1)))
			if err != nil {
				return measure{err: err}
			}
			defer tf.Close()
			trace = tf
		}
		px.Reset()
		m := execute(ctx, r.f, args, env, j.dir, o.timeout, trace)
		m.stats = px.Reset()
		if m.err == nil {
			m.err = verify(srv, j, boxes, sc.keep, full)
		}
		return m
	}
	record := func(r *result, m measure, run int) {
		r.runs = append(r.runs, m)
		status := "ok"
		if m.err != nil {
			status = "FAILED: " + m.err.Error()
		}
		logf("%s: %s run %d: wall %v cpu %v rss %d KB, %d conns, %d round trips: %s", sc.id, r.f.name, run+1,
			m.wall.Round(ms), m.cpu.Round(ms), m.rssKB, m.stats.Conns, m.stats.RoundTrips, status)
		if m.wall > o.slow {
			slow[r.f] = true
		}
	}

	if sc.nothingNew {
		logf("%s: seeding the server", sc.id)
		if err := reseed(ctx, srv, boxes); err != nil {
			return nil, err
		}
		// The first runs are not measured: no latency, so that fetchmail seeds its state in
		// seconds rather than minutes.
		px.SetRTT(0)
		jobs := make([]*job, len(results))
		for i, r := range results {
			j, err := newJob(work, r.f.name, sc, boxes, px.Port(), caFile)
			if err != nil {
				return nil, err
			}
			jobs[i] = j
			m := once(r, j, true)
			logf("%s: %s first run (seeds its state, not reported): wall %v: %v", sc.id, r.f.name, m.wall.Round(ms), errString(m.err))
			if m.err != nil {
				r.runs = append(r.runs, m)
				jobs[i] = nil
			}
		}
		px.SetRTT(sc.rtt)
		for run := range o.runs {
			for k := range results {
				i := (k + run) % len(results)
				r := results[i]
				if jobs[i] == nil || slow[r.f] || ctx.Err() != nil {
					continue
				}
				record(r, once(r, jobs[i], false), run)
			}
		}
		for _, j := range jobs {
			if j != nil {
				os.RemoveAll(j.dir)
			}
		}
		return results, ctx.Err()
	}

	for run := range o.runs {
		for k := range results {
			r := results[(k+run)%len(results)]
			if slow[r.f] || ctx.Err() != nil {
				continue
			}
			if err := reseed(ctx, srv, boxes); err != nil {
				return nil, err
			}
			j, err := newJob(work, r.f.name, sc, boxes, px.Port(), caFile)
			if err != nil {
				return nil, err
			}
			m := once(r, j, true)
			record(r, m, run)
			if m.err != nil && o.keepFailed {
				keepWork = true
				logf("kept %s", j.dir)
			} else {
				os.RemoveAll(j.dir)
			}
		}
	}
	return results, ctx.Err()
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return "FAILED: " + err.Error()
}

// summary is the medians of one fetcher's successful runs.
type summary struct {
	ok, failed  int
	wall, cpu   time.Duration
	rssKB       int64
	roundTrips  int
	conns       int
	firstFailed error
}

// median returns the middle value (the lower middle for an even count, so that it is a value that
// was measured).
func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func summarize(r *result) summary {
	var s summary
	var walls, cpus []time.Duration
	var rss []int64
	var rts, conns []int
	for _, m := range r.runs {
		if m.err != nil {
			s.failed++
			if s.firstFailed == nil {
				s.firstFailed = m.err
			}
			continue
		}
		s.ok++
		walls = append(walls, m.wall)
		cpus = append(cpus, m.cpu)
		rss = append(rss, m.rssKB)
		rts = append(rts, m.stats.RoundTrips)
		conns = append(conns, m.stats.Conns)
	}
	if s.ok > 0 {
		s.wall, s.cpu, s.rssKB, s.roundTrips, s.conns = median(walls), median(cpus), median(rss), median(rts), median(conns)
	}
	return s
}

type report struct {
	o        options
	fetchers []*fetcher
	b        strings.Builder
}

func (r *report) add(sc *scenario, res []*result) { r.b.WriteString(r.table(sc, res)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func (r *report) table(sc *scenario, res []*result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### %s: %s\n\n", sc.id, sc.title)
	b.WriteString("| fetcher | runs | wall (median) | CPU user+sys | peak RSS | round trips | wall ÷ popfetch | CPU ÷ popfetch | RSS ÷ popfetch |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	var base summary
	for _, x := range res {
		if x.f.name == "popfetch" {
			base = summarize(x)
		}
	}
	var failures []string
	for _, x := range res {
		s := summarize(x)
		runs := fmt.Sprint(s.ok)
		if s.failed > 0 {
			runs = fmt.Sprintf("%d ok, %d FAILED", s.ok, s.failed)
			failures = append(failures, fmt.Sprintf("- %s FAILED: %s", x.f.name, oneLine(s.firstFailed.Error())))
		}
		if s.ok == 0 {
			fmt.Fprintf(&b, "| %s | %s | FAILED | | | | | | |\n", x.f.name, runs)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %.3f s | %.3f s | %.1f MiB | %d | %s | %s | %s |\n", x.f.name, runs,
			s.wall.Seconds(), s.cpu.Seconds(), float64(s.rssKB)/1024, s.roundTrips,
			ratio(s.wall.Seconds(), base.wall.Seconds()), ratio(s.cpu.Seconds(), base.cpu.Seconds()),
			ratio(float64(s.rssKB), float64(base.rssKB)))
	}
	if len(failures) > 0 {
		b.WriteString("\n" + strings.Join(failures, "\n") + "\n")
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString("## Results\n\n")
	fmt.Fprintf(&b, "Generated by `go run ./bench %s` on %s.\n\n", strings.Join(os.Args[1:], " "), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString(machine())
	b.WriteString("\nFetchers:\n\n")
	for _, f := range r.fetchers {
		fmt.Fprintf(&b, "- %s: `%s` (%s)\n", f.name, f.version, f.bin)
	}
	b.WriteString("- Dovecot: `" + version("dovecot", "--version") + "`\n")
	b.WriteString(r.b.String())
	return b.String()
}

// gitVersion names the popfetch being measured: the commit, and whether the tree has changes.
func gitVersion() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "popfetch (unknown commit)"
	}
	return "popfetch " + strings.TrimSpace(string(out))
}

// machine describes where the figures were measured.
func machine() string {
	var b strings.Builder
	model := ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, model, _ = strings.Cut(l, ":")
				model = strings.TrimSpace(model)
				break
			}
		}
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	fs, _ := exec.Command("df", "-T", os.TempDir()).Output()
	fsLine := ""
	if lines := strings.Split(strings.TrimSpace(string(fs)), "\n"); len(lines) > 1 {
		f := strings.Fields(lines[len(lines)-1])
		if len(f) > 1 {
			fsLine = f[1] + " on " + f[0]
		}
	}
	fmt.Fprintf(&b, "Machine: %d CPUs, %s, Linux %s, %s (%s), %s.\n", runtime.NumCPU(), model,
		strings.TrimSpace(string(kernel)), fsLine, os.TempDir(), runtime.Version())
	return b.String()
}
