//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/internal/status"
	"github.com/popfetch/popfetch/store"
)

// `popfetch status` and `status --check` (issue 15 item 2) and the daemon's metrics (item 3), against
// the real binary and pop3test on loopback.

// statusJSON runs `popfetch status --json [args]` and decodes it.
func statusJSON(t *testing.T, p *profile, args ...string) (status.View, result) {
	t.Helper()
	r := p.run(append([]string{"status", "--json"}, args...)...)
	var v status.View
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("status --json: exit %d, %v\nstdout: %s\nstderr: %s", r.code, err, r.stdout, r.stderr)
	}
	return v, r
}

func statusOf(t *testing.T, v status.View, name string) status.Account {
	t.Helper()
	for _, a := range v.Accounts {
		if a.Account == name {
			return a
		}
	}
	t.Fatalf("no account %q in the status: %+v", name, v)
	return status.Account{}
}

func exitOf(a status.Account) int {
	if a.LastExitCode == nil {
		return -1
	}
	return *a.LastExitCode
}

// TestStatusAfterSyncs: status and status --check after no sync, a successful one (keep mode: the
// messages kept on the server), one whose password is refused (permanent: --check fails), a
// temporary failure (tolerated until --max-age) and a deferred one (LOGIN-DELAY).
func TestStatusAfterSyncs(t *testing.T) {
	t.Parallel()
	msgs := numbered(3)
	srv := newServer(t, msgs, &pop3test.Options{TLS: pop3test.ImplicitTLS, Faults: []pop3test.Fault{
		// The second session is refused at the greeting with [SYS/TEMP]: exit 75.
		{Command: "GREETING", After: 1, Count: 1, Action: pop3test.Reply, Reply: "-ERR [SYS/TEMP] try again later"}}})
	p := newProfile(t)
	p.add("work", srv, "keep: true")
	delay := newServer(t, numbered(1), &pop3test.Options{TLS: pop3test.ImplicitTLS, LoginDelay: "900"})
	p.add("slow", delay)

	// Never synced: the check fails and says so.
	r := p.run("status", "--check", "work")
	if r.code != 1 || !strings.Contains(r.stdout, "work: UNHEALTHY: never synced") {
		t.Fatalf("status --check before any sync: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	v, _ := statusJSON(t, p)
	if a := statusOf(t, v, "work"); a.LastResult != "never" || v.Daemon.Running {
		t.Errorf("before any sync: %+v, daemon %+v", a, v.Daemon)
	}

	before := time.Now()
	expectCode(t, p.run("sync", "work"), 0)
	v, r = statusJSON(t, p, "--check", "work")
	a := statusOf(t, v, "work")
	if r.code != 0 || a.LastResult != "ok" || exitOf(a) != 0 || a.LastFetched != 3 || a.Fetched24h != 3 || a.FetchedTotal != 3 ||
		a.KeptOnServer == nil || *a.KeptOnServer != 3 || a.ConsecutiveFailures != 0 || a.LastSuccess.Before(before.Add(-time.Second)) ||
		a.Healthy == nil || !*a.Healthy {
		t.Fatalf("after a successful sync: exit %d, %+v", r.code, a)
	}
	if a.BytesTotal <= 0 {
		t.Errorf("bytes_total %d after fetching 3 messages", a.BytesTotal)
	}
	r = p.run("status", "--check", "work")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "work: OK: last success ") {
		t.Errorf("status --check after a successful sync: exit %d, %q", r.code, r.stdout)
	}
	r = p.run("status")
	if r.code != 0 || !regexp.MustCompile(`(?m)^work +ok, \S+ ago +\S+ ago +0 +- +3 +3 +3 +-`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "daemon: not running") || !regexp.MustCompile(`(?m)^slow +never +never`).MatchString(r.stdout) {
		t.Errorf("status table:\n%s(stderr %q)", r.stdout, r.stderr)
	}
	lastSuccess := a.LastSuccess

	// Temporary: [SYS/TEMP] at the greeting. Tolerated until --max-age.
	expectCode(t, p.run("sync", "work"), 75)
	v, r = statusJSON(t, p, "--check", "work")
	a = statusOf(t, v, "work")
	if r.code != 0 || a.LastResult != "temporary" || exitOf(a) != 75 || a.ConsecutiveFailures != 1 || !a.LastSuccess.Equal(lastSuccess) ||
		a.LastError == "" || a.FetchedTotal != 3 {
		t.Errorf("after a temporary failure: exit %d, %+v", r.code, a)
	}
	r = p.run("status", "--check", "--max-age", "1ns", "work")
	if r.code != 1 || !strings.Contains(r.stdout, "work: UNHEALTHY: last success ") || !strings.Contains(r.stdout, "was temporary (exit 75)") {
		t.Errorf("status --check --max-age 1ns after a temporary failure: exit %d, %q", r.code, r.stdout)
	}

	// Permanent: the password is refused.
	p.blocks = p.blocks[:0]
	p.add("work", srv, "keep: true", "password: wrong")
	p.add("slow", delay)
	expectCode(t, p.run("sync", "work"), 77)
	v, r = statusJSON(t, p, "--check", "work")
	a = statusOf(t, v, "work")
	if r.code != 1 || a.LastResult != "failed" || exitOf(a) != 77 || a.ConsecutiveFailures != 2 || !a.LastSuccess.Equal(lastSuccess) ||
		a.Healthy == nil || *a.Healthy || !strings.Contains(a.Problem, "failed with exit 77") {
		t.Errorf("after a refused password: exit %d, %+v", r.code, a)
	}
	r = p.run("status", "--check")
	if r.code != 1 || !strings.Contains(r.stdout, "work: UNHEALTHY: the last run") || !strings.Contains(r.stdout, "slow: UNHEALTHY: never synced") {
		t.Errorf("status --check with a refused password: exit %d, %q", r.code, r.stdout)
	}
	r = p.run("status")
	if r.code != 0 || !strings.Contains(r.stdout, "work: last error: ") {
		t.Errorf("status table after a failure:\n%s", r.stdout)
	}

	// Deferred: the server's LOGIN-DELAY (900 s, in CAPA) is not over at the second sync.
	expectCode(t, p.run("sync", "slow"), 0)
	expectCode(t, p.run("sync", "slow"), 0)
	if n := delay.Sessions(); n != 1 {
		t.Fatalf("the deferred sync logged in: %d sessions", n)
	}
	v, r = statusJSON(t, p, "--check", "slow")
	a = statusOf(t, v, "slow")
	if r.code != 0 || a.LastResult != "deferred" || a.ConsecutiveFailures != 0 || a.LastSuccess.IsZero() || a.FetchedTotal != 1 ||
		a.LoginDelayUntil.Before(time.Now().Add(800*time.Second)) || a.LoginDelayUntil.After(time.Now().Add(901*time.Second)) ||
		a.KeptOnServer != nil {
		t.Errorf("after a deferred sync: exit %d, %+v", r.code, a)
	}
	r = p.run("status", "slow")
	if !regexp.MustCompile(`(?m)^slow +deferred, .* until \d\d:\d\d:\d\d$`).MatchString(r.stdout) {
		t.Errorf("status table after a deferred sync:\n%s", r.stdout)
	}

	// Usage errors.
	if r := p.run("status", "--max-age", "1h"); r.code != 64 {
		t.Errorf("--max-age without --check: exit %d", r.code)
	}
	if r := p.run("status", "nope"); r.code != 64 || !strings.Contains(r.stderr, `no account "nope"`) {
		t.Errorf("status of an unknown account: exit %d, %q", r.code, r.stderr)
	}
}

// TestStatusWithDaemon: with a daemon running, status shows its pid and each account's next poll;
// once it stops, status says it is not running.
func TestStatusWithDaemon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := daemonServer(t, pop3test.Options{}, daemonMessage("one"), daemonMessage("two"))
	work := daemonAccountFor(t, "work", srv, "1h")
	cfg := daemonWriteConfig(t, dir, work)
	d := daemonStart(t, cfg, "daemon")
	daemonWaitDelivered(t, work, 2)
	p := newProfileIn(t, dir, nil, time.Minute) // runs as newProfile's do
	p.path = cfg
	daemonWaitFor(t, "the daemon's timetable after the first poll", func() bool {
		ds, _ := store.ReadDaemonStatus(p.stateDir)
		return ds != nil && !ds.Accounts["work"].Polling && !ds.Accounts["work"].NextPoll.IsZero()
	})
	v, r := statusJSON(t, p, "--check")
	a := statusOf(t, v, "work")
	in := time.Until(a.NextPoll)
	if r.code != 0 || !v.Daemon.Running || v.Daemon.PID != d.cmd.Process.Pid || a.LastResult != "ok" || a.LastFetched != 2 ||
		in < 50*time.Minute || in > 67*time.Minute || a.Polling {
		t.Errorf("status with the daemon running: exit %d, daemon %+v, %+v (next poll in %v)", r.code, v.Daemon, a, in)
	}
	r = p.run("status")
	if !regexp.MustCompile(`(?m)^work +ok, .* in (5\d|6\d|1h\d*)m`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, fmt.Sprintf("daemon: running (pid %d)", d.cmd.Process.Pid)) {
		t.Errorf("status table with the daemon running:\n%s", r.stdout)
	}
	if code, _ := d.stop(t); code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
	v, _ = statusJSON(t, p)
	if v.Daemon.Running || !statusOf(t, v, "work").NextPoll.IsZero() {
		t.Errorf("status after the daemon stopped: %+v", v)
	}
}

// scrape fetches /metrics and returns each sample by its series as the text format prints it
// (`name{label="value",…}`, labels sorted).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d, %v", url, resp.StatusCode, err)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", l)
		}
		out[l[:i]] = v
	}
	return out
}

// TestDaemonMetrics: after real polls (one that fetches, one refused, one under LOGIN-DELAY), the
// metrics say so with the names, labels and values a Prometheus user expects; /healthz answers; an
// address other than loopback is refused.
func TestDaemonMetrics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	work := daemonAccountFor(t, "work", daemonServer(t, pop3test.Options{}, daemonMessage("one"), daemonMessage("two")), "1h")
	bad := daemonAccountFor(t, "bad", daemonServer(t, pop3test.Options{Password: "other"}, daemonMessage("x")), "1h")
	slow := daemonAccountFor(t, "slow", daemonServer(t, pop3test.Options{LoginDelay: "900"}, daemonMessage("y")), "1h")
	cfg := daemonWriteConfig(t, dir, work, bad, slow)

	for _, addr := range []string{"0.0.0.0:9782", ":9782", "192.0.2.1:9782", "nohost"} {
		r := popfetch(t, "", nil, "--config", cfg, "daemon", "--metrics", addr)
		if r.code != 64 || !strings.Contains(r.stderr, "--metrics") {
			t.Errorf("daemon --metrics %s: exit %d, %q", addr, r.code, r.stderr)
		}
	}

	start := time.Now()
	d := daemonStart(t, cfg, "daemon", "--metrics", "127.0.0.1:0")
	m := regexp.MustCompile(`serving metrics on http://(127\.0\.0\.1:\d+)/metrics`).FindStringSubmatch(d.waitLog(t, "serving metrics on"))
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", d.stderr.String())
	}
	base := "http://" + m[1]
	daemonWaitDelivered(t, work, 2)
	daemonWaitDelivered(t, slow, 1)
	var s map[string]float64
	daemonWaitFor(t, "three polls in the metrics", func() bool {
		s = scrape(t, base+"/metrics")
		return s[`popfetch_polls_total{account="work",exit_code="0",outcome="ok"}`] == 1 &&
			s[`popfetch_polls_total{account="bad",exit_code="77",outcome="failed"}`] == 1 &&
			s[`popfetch_polls_total{account="slow",exit_code="0",outcome="ok"}`] == 1
	})
	st, err := store.ReadStatus(filepath.Join(dir, "state"), "work")
	if err != nil || st == nil {
		t.Fatalf("work's status: %v", err)
	}
	now := float64(time.Now().UnixNano()) / 1e9
	want := map[string]float64{
		`popfetch_messages_fetched_total{account="work"}`:              2,
		`popfetch_messages_fetched_total{account="bad"}`:               0,
		`popfetch_bytes_fetched_total{account="work"}`:                 float64(st.BytesTotal),
		`popfetch_poll_duration_seconds_count{account="work"}`:         1,
		`popfetch_poll_duration_seconds_count{account="bad"}`:          1,
		`popfetch_consecutive_failures{account="bad"}`:                 1,
		`popfetch_consecutive_failures{account="work"}`:                0,
		`popfetch_login_delay_until_timestamp_seconds{account="work"}`: 0,
		`popfetch_polls_in_flight`:                                     0,
	}
	for k, v := range want {
		if got, ok := s[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if st.BytesTotal <= 0 {
		t.Errorf("work's bytes %d", st.BytesTotal)
	}
	if v := s[`popfetch_last_success_timestamp_seconds{account="work"}`]; v < float64(start.Unix()) || v > now {
		t.Errorf("work's last success %v, not between %d and %v", v, start.Unix(), now)
	}
	if _, ok := s[`popfetch_last_success_timestamp_seconds{account="bad"}`]; ok {
		t.Errorf("bad never succeeded, yet has a last success time")
	}
	if v := s[`popfetch_next_poll_timestamp_seconds{account="work"}`]; v < now+50*60 || v > now+67*60 {
		t.Errorf("work's next poll %v, not about an hour after %v", v, now)
	}
	if v := s[`popfetch_login_delay_until_timestamp_seconds{account="slow"}`]; v < now+800 || v > now+901 {
		t.Errorf("slow's LOGIN-DELAY until %v, not about 900 s after %v", v, now)
	}
	polls := 0.0
	for k, v := range s {
		if strings.HasPrefix(k, "popfetch_polls_total{") {
			polls += v
		}
	}
	if v := s[`popfetch_poll_lag_seconds_count`]; v != polls || v < 3 {
		t.Errorf("popfetch_poll_lag_seconds_count %v, want one per poll (%v)", v, polls)
	}
	if v := s[`popfetch_poll_lag_seconds_bucket{le="+Inf"}`]; v != polls {
		t.Errorf("popfetch_poll_lag_seconds +Inf bucket %v, want %v", v, polls)
	}
	if v := s[`popfetch_poll_duration_seconds_bucket{account="work",le="+Inf"}`]; v != 1 {
		t.Errorf("work's duration histogram +Inf bucket %v", v)
	}
	if v := s[`process_start_time_seconds`]; v < float64(start.Unix()) || v > now+1 {
		t.Errorf("process_start_time_seconds %v", v)
	}

	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}
	if code, _ := d.stop(t); code != 0 {
		t.Errorf("daemon exit %d", code)
	}
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Errorf("the metrics are still served after the daemon stopped")
	}
	_ = os.Remove
}
