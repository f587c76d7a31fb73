package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/store"
)

// `popfetch daemon --metrics ADDR` serves the Prometheus text format on /metrics and a health answer
// on /healthz. The names follow the Prometheus conventions (namespace popfetch, base units, _total for
// counters, _timestamp_seconds for times); every per-account series has the label account.

// pollBuckets are the buckets of popfetch_poll_duration_seconds: from a poll that finds nothing new
// on a near server to one that fetches a large mailbox.
var pollBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// daemonMetrics is the daemon's daemonObserver for Prometheus. Its methods run on the daemon's loop
// goroutine; the collectors are safe for the HTTP server's goroutines to read.
type daemonMetrics struct {
	dir string // the state directory, for the accounts' status files

	reg         *prometheus.Registry
	messages    *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	polls       *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
	nextPoll    *prometheus.GaugeVec
	loginDelay  *prometheus.GaugeVec
	failures    *prometheus.GaugeVec
	inFlight    prometheus.Gauge

	known    map[string]bool
	srv      *http.Server
	stopping atomic.Bool
	served   chan struct{} // closed when the server's Serve returns
}

// checkMetricsAddr refuses an address that is not HOST:PORT, and one that is not loopback (127.0.0.0/8,
// ::1, localhost) unless allowRemote: the metrics say which accounts exist and when they fail, which
// is nobody else's business by default (Prometheus exporters bind every interface; we do not).
func checkMetricsAddr(addr string, allowRemote bool) error {
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

// newDaemonMetrics listens on addr (checked by checkMetricsAddr) and serves the metrics until stopped.
func newDaemonMetrics(addr, dir string, log *daemonLog) (*daemonMetrics, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, withCode(exitTempFail, fmt.Errorf("--metrics: %v", err))
	}
	m := &daemonMetrics{dir: dir, reg: prometheus.NewRegistry(), known: map[string]bool{}, served: make(chan struct{})}
	acct := []string{"account"}
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "popfetch", Name: "messages_fetched_total",
		Help: "Messages fetched and delivered."}, acct)
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "popfetch", Name: "bytes_fetched_total",
		Help: "Octets of the messages fetched and delivered."}, acct)
	m.polls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "popfetch", Name: "polls_total",
		Help: "Polls that ended, by outcome (ok, deferred, temporary, failed, interrupted, busy) and exit code."},
		[]string{"account", "outcome", "exit_code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "popfetch", Name: "poll_duration_seconds",
		Help: "How long polls took.", Buckets: pollBuckets}, acct)
	m.lastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "popfetch", Name: "last_success_timestamp_seconds",
		Help: "When the account was last synced successfully (Unix time; absent if never)."}, acct)
	m.nextPoll = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "popfetch", Name: "next_poll_timestamp_seconds",
		Help: "When the account is polled next (Unix time; absent while a poll runs)."}, acct)
	m.loginDelay = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "popfetch", Name: "login_delay_until_timestamp_seconds",
		Help: "The server's LOGIN-DELAY: no login before this Unix time (0 if none)."}, acct)
	m.failures = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "popfetch", Name: "consecutive_failures",
		Help: "Polls that failed (temporarily or not) since the last success."}, acct)
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "popfetch", Name: "polls_in_flight",
		Help: "Polls running now."})
	m.reg.MustRegister(m.messages, m.bytes, m.polls, m.duration, m.lastSuccess, m.nextPoll, m.loginDelay, m.failures,
		m.inFlight, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if m.stopping.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "stopping")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	log.infof("popfetch: serving metrics on http://%s/metrics and /healthz", ln.Addr())
	go func() {
		defer close(m.served)
		_ = m.srv.Serve(ln) // http.ErrServerClosed once stopped
	}()
	return m, nil
}

// fromStatus sets the gauges that the account's status file knows (the poll just wrote it, or an
// earlier run did).
func (m *daemonMetrics) fromStatus(name string) {
	st, err := store.ReadStatus(m.dir, name)
	if err != nil || st == nil {
		return
	}
	if !st.LastSuccess.IsZero() {
		m.lastSuccess.WithLabelValues(name).Set(float64(st.LastSuccess.Unix()))
	}
	until := 0.0
	if st.LoginDelayUntil.After(time.Now()) {
		until = float64(st.LoginDelayUntil.Unix())
	}
	m.loginDelay.WithLabelValues(name).Set(until)
	m.failures.WithLabelValues(name).Set(float64(st.ConsecutiveFailures))
}

func (m *daemonMetrics) accounts(accts []*config.Account) {
	now := map[string]bool{}
	for _, a := range accts {
		now[a.Name] = true
		if m.known[a.Name] {
			continue
		}
		// Counters start at 0, so that rate() sees the first poll.
		m.messages.WithLabelValues(a.Name)
		m.bytes.WithLabelValues(a.Name)
		m.duration.WithLabelValues(a.Name)
		m.loginDelay.WithLabelValues(a.Name)
		m.failures.WithLabelValues(a.Name)
		m.fromStatus(a.Name)
		m.nextPoll.WithLabelValues(a.Name).Set(float64(time.Now().Unix())) // due now
	}
	for name := range m.known {
		if !now[name] {
			l := prometheus.Labels{"account": name}
			for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{m.messages, m.bytes, m.polls,
				m.duration, m.lastSuccess, m.nextPoll, m.loginDelay, m.failures} {
				v.DeletePartialMatch(l)
			}
		}
	}
	m.known = now
}

func (m *daemonMetrics) pollStarted(account string) {
	m.inFlight.Inc()
	m.nextPoll.DeleteLabelValues(account)
}

func (m *daemonMetrics) pollEnded(p polled, next time.Time) {
	m.inFlight.Dec()
	if !m.known[p.name] {
		return // removed from the configuration meanwhile
	}
	outcome, code := runResult(p.res, p.err, false)
	if errors.Is(p.err, store.ErrLocked) {
		outcome = "busy" // a `popfetch sync` by hand held the account: not the account's fault
	}
	m.polls.WithLabelValues(p.name, outcome, strconv.Itoa(code)).Inc()
	m.messages.WithLabelValues(p.name).Add(float64(p.res.Retrieved))
	m.bytes.WithLabelValues(p.name).Add(float64(p.res.Bytes))
	m.duration.WithLabelValues(p.name).Observe(p.took.Seconds())
	if !next.IsZero() {
		m.nextPoll.WithLabelValues(p.name).Set(float64(next.Unix()))
	}
	m.fromStatus(p.name)
}

func (m *daemonMetrics) stopped() {
	m.stopping.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = m.srv.Shutdown(ctx)
	<-m.served
}
