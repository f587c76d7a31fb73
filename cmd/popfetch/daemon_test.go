//go:build unix

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// These tests run the real binary as `popfetch daemon` against pop3test servers on loopback, and
// synchronise on what can be observed from outside: the log on stderr, the maildirs, the servers'
// sessions. None sleeps to synchronise.

// daemonDeadline bounds every wait of these tests.
const daemonDeadline = 15 * time.Second

// daemonLogLine is the shape of every line the daemon logs on stderr: a UTC time, then who it is about.
var daemonLogLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ [A-Za-z0-9._-]+: `)

// syncBuffer is a bytes.Buffer safe for a child's output and the test reading it at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// daemonProc is a running `popfetch daemon`, killed when the test ends.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr syncBuffer
	exited chan struct{}
}

// daemonEnv is a minimal environment for the child, like the popfetch helper's.
func daemonEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "XDG_RUNTIME_DIR=" + home, "DBUS_SESSION_BUS_ADDRESS="}
}

// daemonStart starts `popfetch --config cfg ARGS…` (ARGS including the daemon command) and waits until it says it has started
// (and so handles SIGHUP and SIGUSR1).
func daemonStart(t *testing.T, cfg string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(popfetchBin, append([]string{"--config", cfg}, args...)...)
	cmd.Env = daemonEnv(t)
	p := startLogged(t, cmd)
	p.waitLog(t, "popfetch: daemon started")
	return p
}

// startLogged starts cmd with its stderr collected as it comes (waitLog), and kills it when the
// test ends; the log is shown when the test fails or with -v.
func startLogged(t *testing.T, cmd *exec.Cmd) *daemonProc {
	t.Helper()
	p := &daemonProc{cmd: cmd, exited: make(chan struct{})}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() || testing.Verbose() {
			t.Logf("popfetch's stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *daemonProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitLog waits until the log has a line containing s, and returns that line.
func (p *daemonProc) waitLog(t *testing.T, s string) string {
	t.Helper()
	var line string
	daemonWaitFor(t, fmt.Sprintf("a log line containing %q", s), func() bool {
		for _, l := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(l, s) {
				line = l
				return true
			}
		}
		return false
	})
	return line
}

// stop sends SIGTERM and returns the exit status and how long the exit took.
func (p *daemonProc) stop(t *testing.T) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(daemonDeadline):
		t.Fatalf("the daemon did not exit within %v of SIGTERM", daemonDeadline)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

// daemonWaitFor polls cond until it holds, failing the test after daemonDeadline.
func daemonWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(daemonDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", daemonDeadline, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// daemonAcct is one account of a test configuration.
type daemonAcct struct {
	name     string
	srv      *pop3test.Server
	maildir  string
	interval string
}

// daemonServer starts an implicit-TLS pop3test server for user alice, password secret.
func daemonServer(t *testing.T, opts pop3test.Options, msgs ...string) *pop3test.Server {
	opts.TLS = pop3test.ImplicitTLS
	for i, m := range msgs {
		opts.Messages = append(opts.Messages, pop3test.Message{UID: fmt.Sprintf("u%d", i+1), Data: []byte(m)})
	}
	return pop3test.NewServer(t, &opts)
}

func daemonMessage(subject string) string {
	return "From: a@example.com\nSubject: " + subject + "\n\nHello.\n"
}

func daemonAccountFor(t *testing.T, name string, srv *pop3test.Server, interval string) daemonAcct {
	return daemonAcct{name: name, srv: srv, maildir: filepath.Join(t.TempDir(), "Maildir"), interval: interval}
}

// daemonWriteConfig writes (or rewrites) dir/config.yaml, mode 0600 (it holds inline passwords).
func daemonWriteConfig(t *testing.T, dir string, accts ...daemonAcct) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\naccounts:\n", filepath.Join(dir, "state"))
	for _, a := range accts {
		ca := filepath.Join(dir, a.name+"-ca.pem")
		if err := os.WriteFile(ca, a.srv.CACertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  %s:\n    host: 127.0.0.1\n    port: %d\n    tls: implicit\n    ca_file: %s\n"+
			"    user: alice\n    auth: user\n    password: secret\n    interval: %s\n    deliver: {maildir: %s}\n",
			a.name, a.srv.Port(), ca, a.interval, a.maildir)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// daemonDelivered counts the messages in a maildir's new/.
func daemonDelivered(maildir string) int {
	entries, _ := os.ReadDir(filepath.Join(maildir, "new"))
	return len(entries)
}

func daemonWaitDelivered(t *testing.T, a daemonAcct, n int) {
	t.Helper()
	daemonWaitFor(t, fmt.Sprintf("%d message(s) in %s's maildir", n, a.name), func() bool {
		return daemonDelivered(a.maildir) >= n
	})
	if got := daemonDelivered(a.maildir); got != n {
		t.Fatalf("%s's maildir has %d messages, want %d", a.name, got, n)
	}
}

// TestDaemonPolls: the daemon polls on the account's interval (new mail on the server arrives on
// the next poll), logs with time and account, and stops at SIGTERM with exit status 0.
func TestDaemonPolls(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := daemonServer(t, pop3test.Options{}, daemonMessage("one"), daemonMessage("two"))
	work := daemonAccountFor(t, "work", srv, "1s")
	p := daemonStart(t, daemonWriteConfig(t, dir, work), "daemon")

	daemonWaitDelivered(t, work, 2)
	line := p.waitLog(t, "work: 2 fetched")
	if !daemonLogLine.MatchString(line) {
		t.Errorf("log line without time and account: %q", line)
	}
	if ts, err := time.Parse(time.RFC3339, strings.Fields(line)[0]); err != nil || time.Since(ts) > time.Minute || time.Since(ts) < -time.Minute {
		t.Errorf("log time %q: %v", strings.Fields(line)[0], err)
	}

	// New mail is fetched by a later poll, without any signal.
	sessions := srv.Sessions()
	srv.SetMessages([]pop3test.Message{{UID: "u3", Data: []byte(daemonMessage("three"))}})
	daemonWaitDelivered(t, work, 3)
	p.waitLog(t, "work: 1 fetched")
	if srv.Sessions() <= sessions {
		t.Errorf("no new session for the third message")
	}
	// And it keeps polling (every second, ±10%).
	sessions = srv.Sessions()
	daemonWaitFor(t, "two more polls", func() bool { return srv.Sessions() >= sessions+2 })

	code, took := p.stop(t)
	if code != 0 || took > 5*time.Second {
		t.Errorf("SIGTERM: exit %d after %v, want 0 promptly", code, took)
	}
	log := p.stderr.String()
	for _, l := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if !daemonLogLine.MatchString(l) {
			t.Errorf("log line without time and account: %q", l)
		}
	}
	if !strings.Contains(log, "popfetch: daemon stopped") {
		t.Errorf("no stop line in the log:\n%s", log)
	}
	if strings.Contains(log, "secret") {
		t.Errorf("the log shows the password:\n%s", log)
	}
}

// TestDaemonPollNowAndLocks: with a 1h interval, SIGUSR1 polls at once. Between polls the daemon
// holds no account lock (a `popfetch sync` by hand succeeds), and a second daemon on the same
// configuration exits 75 at once, naming the first one's pid.
func TestDaemonPollNowAndLocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := daemonServer(t, pop3test.Options{})
	work := daemonAccountFor(t, "work", srv, "1h")
	cfg := daemonWriteConfig(t, dir, work)
	p := daemonStart(t, cfg, "-v", "daemon")
	p.waitLog(t, "work: no new mail") // the first poll, at the start

	srv.SetMessages([]pop3test.Message{{UID: "u1", Data: []byte(daemonMessage("one"))}})
	p.signal(t, syscall.SIGUSR1)
	daemonWaitDelivered(t, work, 1)
	p.waitLog(t, "popfetch: SIGUSR1: polling every account now")
	p.waitLog(t, "work: 1 fetched")

	// A sync by hand between two polls: the account's lock is free.
	srv.SetMessages([]pop3test.Message{{UID: "u2", Data: []byte(daemonMessage("two"))}})
	if r := popfetch(t, "", nil, "--config", cfg, "sync", "work"); r.code != 0 {
		t.Errorf("sync by hand while the daemon waits: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if got := daemonDelivered(work.maildir); got != 2 {
		t.Errorf("after the sync by hand: %d messages, want 2", got)
	}

	// One daemon per configuration.
	start := time.Now()
	r := popfetch(t, "", nil, "--config", cfg, "daemon")
	want := fmt.Sprintf("another popfetch daemon (pid %d) is already running", p.cmd.Process.Pid)
	if r.code != exitTempFail || !strings.Contains(r.stderr, want) || time.Since(start) > 5*time.Second {
		t.Errorf("second daemon: exit %d after %v, want 75 at once with %q; stderr:\n%s", r.code, time.Since(start), want, r.stderr)
	}

	if code, took := p.stop(t); code != 0 || took > 5*time.Second {
		t.Errorf("SIGTERM: exit %d after %v, want 0 promptly", code, took)
	}
}

// TestDaemonReload: SIGHUP with a broken configuration keeps the running one (and says why);
// SIGHUP with an added account starts polling it.
func TestDaemonReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := daemonServer(t, pop3test.Options{})
	work := daemonAccountFor(t, "work", srv, "1h")
	cfg := daemonWriteConfig(t, dir, work)
	p := daemonStart(t, cfg, "-v", "daemon")
	p.waitLog(t, "work: no new mail")

	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(good), "    port:", "    prot:", 1)
	if err := os.WriteFile(cfg, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	line := p.waitLog(t, "not reloaded")
	for _, want := range []string{"popfetch: error: SIGHUP: not reloaded, the previous configuration keeps running: " + cfg + ":5:5:",
		`account "work": key "prot": unknown key, did you mean "port"?`} {
		if !strings.Contains(line, want) {
			t.Errorf("reload error line %q does not contain %q", line, want)
		}
	}
	// Still running, with the previous configuration (the port it no longer finds in the file).
	srv.SetMessages([]pop3test.Message{{UID: "u1", Data: []byte(daemonMessage("one"))}})
	p.signal(t, syscall.SIGUSR1)
	daemonWaitDelivered(t, work, 1)

	// Add an account: it is polled at once.
	srv2 := daemonServer(t, pop3test.Options{}, daemonMessage("home one"), daemonMessage("home two"))
	home := daemonAccountFor(t, "home", srv2, "1h")
	daemonWriteConfig(t, dir, work, home)
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "popfetch: SIGHUP: reloaded "+cfg+": added home")
	daemonWaitDelivered(t, home, 2)
	line = p.waitLog(t, "home: 2 fetched")
	if !daemonLogLine.MatchString(line) {
		t.Errorf("log line without time and account: %q", line)
	}

	// Remove it again: it is no longer polled.
	daemonWriteConfig(t, dir, work)
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "removed home")
	sessions := srv2.Sessions()
	srv.SetMessages([]pop3test.Message{{UID: "u2", Data: []byte(daemonMessage("two"))}})
	p.signal(t, syscall.SIGUSR1)
	daemonWaitDelivered(t, work, 2)
	if srv2.Sessions() != sessions {
		t.Errorf("the removed account was polled")
	}
	if code, _ := p.stop(t); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}

// TestDaemonBackoff: a temporary failure ([IN-USE]) is logged and retried later, the wait doubling
// (2s, then 4s with a 1s interval), and the poll after it succeeds.
func TestDaemonBackoff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := daemonServer(t, pop3test.Options{Faults: []pop3test.Fault{
		{Command: "PASS", Action: pop3test.Reply, Reply: "-ERR [IN-USE] x", Count: 2}}}, daemonMessage("one"))
	work := daemonAccountFor(t, "work", srv, "1s")
	p := daemonStart(t, daemonWriteConfig(t, dir, work), "daemon")

	first := p.waitLog(t, "temporary failure 1 in a row")
	seen := time.Now()
	if want := "work: error: pop3: server refused PASS: -ERR [IN-USE] x; next poll in 2s (temporary failure 1 in a row: backing off)"; !strings.Contains(first, want) || !daemonLogLine.MatchString(first) {
		t.Errorf("first failure logged as %q, want %q", first, want)
	}
	second := p.waitLog(t, "temporary failure 2 in a row")
	if !strings.Contains(second, "; next poll in 4s") {
		t.Errorf("second failure logged as %q, want the wait doubled to 4s", second)
	}
	if took := time.Since(seen); took < 1500*time.Millisecond {
		t.Errorf("retried %v after the first failure, want about 2s (backoff)", took)
	}
	seen = time.Now()
	daemonWaitDelivered(t, work, 1)
	p.waitLog(t, "work: 1 fetched")
	if took := time.Since(seen); took < 3*time.Second {
		t.Errorf("retried %v after the second failure, want about 4s (backoff)", took)
	}
	if code, _ := p.stop(t); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}

// TestDaemonSyslogFallback: --syslog without a syslog socket warns and logs on stderr.
func TestDaemonSyslogFallback(t *testing.T) {
	t.Parallel()
	for _, sock := range []string{"/dev/log", "/var/run/syslog", "/var/run/log"} {
		if fi, err := os.Stat(sock); err == nil && fi.Mode().Type() == os.ModeSocket {
			t.Skipf("%s exists: the daemon logs there", sock)
		}
	}
	dir := t.TempDir()
	srv := daemonServer(t, pop3test.Options{})
	p := daemonStart(t, daemonWriteConfig(t, dir, daemonAccountFor(t, "work", srv, "1h")), "daemon", "--syslog")
	if !strings.Contains(p.stderr.String(), "popfetch: warning: --syslog: ") {
		t.Errorf("no warning about the missing syslog:\n%s", p.stderr.String())
	}
	if code, _ := p.stop(t); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}

// TestDaemonLoginDelay: a server that asks for 4 seconds between logins (CAPA LOGIN-DELAY) is not
// polled again before they are over, although the interval is 1s.
func TestDaemonLoginDelay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := daemonServer(t, pop3test.Options{LoginDelay: "4"})
	work := daemonAccountFor(t, "work", srv, "1s")
	p := daemonStart(t, daemonWriteConfig(t, dir, work), "-v", "daemon")
	line := p.waitLog(t, "(LOGIN-DELAY); next poll in")
	// The poll due after 1s did not log in: the second session waits for the delay's end, which is
	// at least a second later.
	if n := srv.Sessions(); n != 1 {
		t.Errorf("%d sessions when the deferred poll is logged, want 1", n)
	}
	if !daemonLogLine.MatchString(line) || !strings.Contains(line, "work: not polled: the server asked not to log in again before") {
		t.Errorf("deferred poll logged as %q", line)
	}
	daemonWaitFor(t, "the second session", func() bool { return srv.Sessions() >= 2 })
	if code, _ := p.stop(t); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}

// TestDaemonStopDuringPoll: SIGTERM during a poll lets it finish the message it is on, commit and
// QUIT, then exits 0: every message is either delivered and deleted on the server, or still there.
func TestDaemonStopDuringPoll(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	msgs := []string{daemonMessage("one"), daemonMessage("two"), daemonMessage("three")}
	srv := daemonServer(t, pop3test.Options{Faults: []pop3test.Fault{
		{Command: "RETR", Arg: "1", Action: pop3test.Drip, Delay: 20 * time.Millisecond}}}, msgs...)
	work := daemonAccountFor(t, "work", srv, "1h")
	p := daemonStart(t, daemonWriteConfig(t, dir, work), "daemon")
	daemonWaitFor(t, "RETR 1", func() bool {
		for _, l := range srv.Received() {
			if l == "RETR 1" {
				return true
			}
		}
		return false
	})
	code, took := p.stop(t)
	if code != 0 || took > 8*time.Second {
		t.Errorf("SIGTERM during a poll: exit %d after %v, want 0", code, took)
	}
	delivered, left := daemonDelivered(work.maildir), len(srv.Messages())
	if delivered < 1 || delivered+left != len(msgs) {
		t.Errorf("after the stop: %d delivered, %d left on the server; want at least the first delivered and %d in all",
			delivered, left, len(msgs))
	}
	log := p.stderr.String()
	if !strings.Contains(log, "popfetch: stopping after the batch each running poll is on (1)") ||
		!strings.Contains(log, "popfetch: daemon stopped") {
		t.Errorf("log:\n%s", log)
	}
}

// TestDaemonSecondSignal: a poll stuck on a stalled server does not hold up a second SIGTERM, which
// abandons the connection (deleting nothing) and exits 130.
func TestDaemonSecondSignal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := daemonServer(t, pop3test.Options{Faults: []pop3test.Fault{{Command: "RETR", Action: pop3test.Stall}}},
		daemonMessage("one"))
	work := daemonAccountFor(t, "work", srv, "1h")
	p := daemonStart(t, daemonWriteConfig(t, dir, work), "daemon")
	daemonWaitFor(t, "RETR 1", func() bool { return slices.Contains(srv.Received(), "RETR 1") })
	p.signal(t, syscall.SIGTERM)
	p.waitLog(t, "popfetch: stopping after the batch each running poll is on (1)")
	select {
	case <-p.exited:
		t.Fatalf("exited after the first SIGTERM while RETR stalls: %v", p.cmd.ProcessState)
	default:
	}
	code, took := p.stop(t)
	if code != exitInterrupted || took > 5*time.Second {
		t.Errorf("second SIGTERM: exit %d after %v, want 130 at once", code, took)
	}
	if daemonDelivered(work.maildir) != 0 || len(srv.Messages()) != 1 {
		t.Errorf("after abandoning: %d delivered, %d on the server; want 0 and 1", daemonDelivered(work.maildir), len(srv.Messages()))
	}
}

// TestDaemonSyncByHand: a `popfetch sync` by hand that meets a daemon's poll exits 75 naming the
// daemon's pid, or with --wait waits for the poll to end and then runs; nothing arrives twice.
func TestDaemonSyncByHand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := daemonServer(t, pop3test.Options{Faults: []pop3test.Fault{
		{Command: "RETR", Arg: "1", Action: pop3test.Drip, Delay: 25 * time.Millisecond, Count: 1}}},
		daemonMessage("one"), daemonMessage("two"))
	work := daemonAccountFor(t, "work", srv, "1h")
	cfg := daemonWriteConfig(t, dir, work)
	p := daemonStart(t, cfg, "daemon")
	daemonWaitFor(t, "RETR 1", func() bool { return slices.Contains(srv.Received(), "RETR 1") })

	r := popfetch(t, "", nil, "--config", cfg, "sync", "work")
	want := fmt.Sprintf("is held by another popfetch run (pid %d)", p.cmd.Process.Pid)
	if r.code != exitTempFail || !strings.Contains(r.stderr, want) {
		t.Errorf("sync during a poll: exit %d, want 75 with %q; stderr:\n%s", r.code, want, r.stderr)
	}
	start := time.Now()
	r = popfetch(t, "", nil, "--config", cfg, "sync", "--wait", "work")
	if r.code != 0 {
		t.Errorf("sync --wait during a poll: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	// It ran only after the daemon's poll had delivered both messages and deleted them on the server
	// (the daemon releases the lock after QUIT).
	if got, left := daemonDelivered(work.maildir), len(srv.Messages()); got != 2 || left != 0 {
		t.Errorf("when sync --wait returned (after %v): %d delivered, %d on the server; want 2 and 0",
			time.Since(start), got, left)
	}
	p.waitLog(t, "work: 2 fetched")
	if left := srv.Messages(); len(left) != 0 {
		t.Errorf("%d messages left on the server", len(left))
	}
	if code, _ := p.stop(t); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}
