package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/store"
)

// `popfetch daemon --metrics ADDR` serves the Prometheus text exposition format (version 0.0.4) on
// /metrics and a health answer on /healthz. The names follow the Prometheus conventions (namespace
// popfetch, base units, _total for counters, _timestamp_seconds for times); every per-account series
// has the label account.
//
// Why not github.com/prometheus/client_golang (v1.25.0, what exporters use): linked in, it made the
// binary 2.6 MB larger (12.4 -> 15.0 MB stripped) and every run's peak RSS about 3 MiB larger
// (`popfetch version` 10.7 -> 13.8 MiB; a sync of 20 x 5 MB 17.9 -> 20.5 MiB), daemon or not, with
// --metrics or not: package initialisation of protobuf and procfs. The text format of a dozen
// families is a page of code (docs/BENCHMARKS.md has the figures).

// pollBuckets are the upper bounds of popfetch_poll_duration_seconds' buckets: from a poll that finds
// nothing new on a near server to one that fetches a large mailbox.
var pollBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// lagBuckets are the upper bounds of popfetch_poll_lag_seconds' buckets: from a poll that started on
// time to one an hour late (every job busy, a host at its max_connections, a machine that slept).
var lagBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}

// accountMetrics are one account's series.
type accountMetrics struct {
	messages, bytes float64
	polls           map[pollKey]float64
	dur             histogram // popfetch_poll_duration_seconds
	lastSuccess     float64   // Unix seconds; 0: never (the series is left out)
	nextPoll        float64   // Unix seconds; 0: none known (polling, stopping)
	loginDelay      float64   // Unix seconds; 0: none
	failures        float64
}

type pollKey struct{ outcome, code string }

// daemonMetrics is the daemon's daemonObserver for Prometheus. Its observer methods run on the
// daemon's loop goroutine, the HTTP handlers on the server's: mu guards what both touch.
type daemonMetrics struct {
	dir   string // the state directory, for the accounts' status files
	start time.Time

	mu       sync.Mutex
	accts    map[string]*accountMetrics
	inFlight int
	stopping bool
	lag      histogram // popfetch_poll_lag_seconds, every account

	srv    *http.Server
	served chan struct{} // closed when the server's Serve returns
}

// ListenError says the metrics address could not be listened on (in use, not an address of this
// host): trying again later may work.
type ListenError struct{ Err error }

func (e *ListenError) Error() string { return "--metrics: " + e.Err.Error() }
func (e *ListenError) Unwrap() error { return e.Err }

// CheckMetricsAddr refuses an address that is not HOST:PORT, and one that is not loopback (127.0.0.0/8,
// ::1, localhost) unless allowRemote: the metrics say which accounts exist and when they fail, which
// is nobody else's business by default (Prometheus exporters bind every interface; we do not).
func CheckMetricsAddr(addr string, allowRemote bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Errorf("--metrics %q: want HOST:PORT, e.g. 127.0.0.1:9782", addr)
	}
	if allowRemote || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	if host == "" {
		host = "every interface"
	}
	return fmt.Errorf("--metrics %s listens on %s, not on loopback: anyone who can reach it would see the accounts and their failures; use 127.0.0.1:PORT, or add --metrics-allow-remote if that is what you want", addr, host)
}

// newDaemonMetrics listens on addr (checked by CheckMetricsAddr) and serves the metrics until stopped.
func newDaemonMetrics(addr, dir string, log *Log) (*daemonMetrics, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ListenError{Err: err}
	}
	m := &daemonMetrics{dir: dir, start: time.Now(), accts: map[string]*accountMetrics{}, served: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		m.write(&b)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(b.Bytes())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		m.mu.Lock()
		stopping := m.stopping
		m.mu.Unlock()
		if stopping {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "stopping")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	log.Infof("popfetch: serving metrics on http://%s/metrics and /healthz", ln.Addr())
	go func() {
		defer close(m.served)
		_ = m.srv.Serve(ln) // http.ErrServerClosed once stopped
	}()
	return m, nil
}

// fromStatus sets the gauges that the account's status file knows (the poll just wrote it, or an
// earlier run did). The caller holds mu.
func (m *daemonMetrics) fromStatus(name string, a *accountMetrics) {
	st, err := store.ReadStatus(m.dir, name)
	if err != nil || st == nil {
		return
	}
	if !st.LastSuccess.IsZero() {
		a.lastSuccess = unixFloat(st.LastSuccess)
	}
	a.loginDelay = 0
	if st.LoginDelayUntil.After(time.Now()) {
		a.loginDelay = float64(st.LoginDelayUntil.Unix())
	}
	a.failures = float64(st.ConsecutiveFailures)
}

func unixFloat(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func (m *daemonMetrics) accounts(accts []*config.Account) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := map[string]*accountMetrics{}
	for _, a := range accts {
		am := m.accts[a.Name]
		if am == nil {
			am = &accountMetrics{polls: map[pollKey]float64{},
				nextPoll: float64(time.Now().Unix())} // due now
			m.fromStatus(a.Name, am)
		}
		now[a.Name] = am
	}
	m.accts = now // accounts removed from the configuration lose their series
}

func (m *daemonMetrics) pollStarted(account string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inFlight++
	if a := m.accts[account]; a != nil {
		a.nextPoll = 0
	}
}

func (m *daemonMetrics) pollEnded(p polled, next time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inFlight--
	m.lag.observe(p.lag.Seconds(), lagBuckets)
	a := m.accts[p.name]
	if a == nil {
		return // removed from the configuration meanwhile
	}
	outcome, code := p.result, p.code
	if errors.Is(p.err, store.ErrLocked) {
		outcome = "busy" // a `popfetch sync` by hand held the account: not the account's fault
	}
	a.polls[pollKey{outcome, strconv.Itoa(code)}]++
	a.messages += float64(p.res.Retrieved)
	a.bytes += float64(p.res.Bytes)
	s := p.took.Seconds()
	a.dur.observe(s, pollBuckets)
	a.nextPoll = 0
	if !next.IsZero() {
		a.nextPoll = float64(next.Unix())
	}
	m.fromStatus(p.name, a)
}

func (m *daemonMetrics) stopped() {
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = m.srv.Shutdown(ctx)
	<-m.served
}

// write writes every family in the text format, accounts sorted.
func (m *daemonMetrics) write(b *bytes.Buffer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.accts))
	for n := range m.accts {
		names = append(names, n)
	}
	slices.Sort(names)
	family := func(name, typ, help string) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	perAccount := func(name, typ, help string, v func(a *accountMetrics) (float64, bool)) {
		family(name, typ, help)
		for _, n := range names {
			if x, ok := v(m.accts[n]); ok {
				fmt.Fprintf(b, "%s{account=%s} %s\n", name, labelValue(n), fmtFloat(x))
			}
		}
	}
	perAccount("popfetch_messages_fetched_total", "counter", "Messages fetched and delivered.",
		func(a *accountMetrics) (float64, bool) { return a.messages, true })
	perAccount("popfetch_bytes_fetched_total", "counter", "Octets of the messages fetched and delivered.",
		func(a *accountMetrics) (float64, bool) { return a.bytes, true })
	family("popfetch_polls_total", "counter", "Polls that ended, by outcome (ok, deferred, temporary, failed, interrupted, busy) and exit code.")
	for _, n := range names {
		a := m.accts[n]
		keys := make([]pollKey, 0, len(a.polls))
		for k := range a.polls {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(x, y pollKey) int { return strings.Compare(x.outcome+" "+x.code, y.outcome+" "+y.code) })
		for _, k := range keys {
			fmt.Fprintf(b, "popfetch_polls_total{account=%s,exit_code=%s,outcome=%s} %s\n", labelValue(n), labelValue(k.code),
				labelValue(k.outcome), fmtFloat(a.polls[k]))
		}
	}
	family("popfetch_poll_duration_seconds", "histogram", "How long polls took.")
	for _, n := range names {
		m.accts[n].dur.write(b, "popfetch_poll_duration_seconds", "account="+labelValue(n), pollBuckets)
	}
	perAccount("popfetch_last_success_timestamp_seconds", "gauge", "When the account was last synced successfully (Unix time; absent if never).",
		func(a *accountMetrics) (float64, bool) { return a.lastSuccess, a.lastSuccess != 0 })
	perAccount("popfetch_next_poll_timestamp_seconds", "gauge", "When the account is polled next (Unix time; absent while a poll runs).",
		func(a *accountMetrics) (float64, bool) { return a.nextPoll, a.nextPoll != 0 })
	perAccount("popfetch_login_delay_until_timestamp_seconds", "gauge", "The server's LOGIN-DELAY: no login before this Unix time (0 if none).",
		func(a *accountMetrics) (float64, bool) { return a.loginDelay, true })
	perAccount("popfetch_consecutive_failures", "gauge", "Polls that failed (temporarily or not) since the last success.",
		func(a *accountMetrics) (float64, bool) { return a.failures, true })
	family("popfetch_poll_lag_seconds", "histogram", "How late polls started after they were due.")
	m.lag.write(b, "popfetch_poll_lag_seconds", "", lagBuckets)
	family("popfetch_polls_in_flight", "gauge", "Polls running now.")
	fmt.Fprintf(b, "popfetch_polls_in_flight %d\n", m.inFlight)
	family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.")
	fmt.Fprintf(b, "process_start_time_seconds %s\n", fmtFloat(unixFloat(m.start)))
}

// labelValue quotes a label value as the text format wants: backslash, double quote and line feed
// escaped.
func labelValue(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// fmtFloat formats a sample value: integers without an exponent, others as Go's shortest form.
func fmtFloat(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// histogram is one histogram's counts; buckets[i] counts the observations in (bounds[i-1], bounds[i]]
// (cumulated when written).
type histogram struct {
	count   uint64
	sum     float64
	buckets []uint64
}

// write writes the histogram's samples: name_bucket (cumulative, le last), name_sum and name_count,
// with labels ("k=\"v\"", or "") on each.
func (h *histogram) write(b *bytes.Buffer, name, labels string, bounds []float64) {
	sep := ""
	if labels != "" {
		sep = ","
	}
	var cum uint64
	for i, le := range bounds {
		if i < len(h.buckets) {
			cum += h.buckets[i]
		}
		fmt.Fprintf(b, "%s_bucket{%s%sle=\"%s\"} %d\n", name, labels, sep, fmtFloat(le), cum)
	}
	fmt.Fprintf(b, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, h.count)
	braced := ""
	if labels != "" {
		braced = "{" + labels + "}"
	}
	fmt.Fprintf(b, "%s_sum%s %s\n", name, braced, fmtFloat(h.sum))
	fmt.Fprintf(b, "%s_count%s %d\n", name, braced, h.count)
}

func (h *histogram) observe(v float64, bounds []float64) {
	if h.buckets == nil {
		h.buckets = make([]uint64, len(bounds))
	}
	h.count++
	h.sum += v
	for i, le := range bounds {
		if v <= le {
			h.buckets[i]++
			return
		}
	}
}
