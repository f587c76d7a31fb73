package main

// The one way the tests of this package run the real binary (popfetchBin, built by TestMain in
// cli_test.go): a clean environment, a deadline after which a run counts as hung, the exit code
// (128+N for a process killed by signal N), and optionally the peak RSS; and the one way they
// write a configuration for test servers (profile).
//
//   - runBinary runs the binary to its end, from any goroutine; popfetch is runBinary for a test
//     without a configuration (a new home, a minute).
//   - profile is a configuration file with its state directory, built one account at a time by
//     add and addAt over the defaults of its constructor: newProfile for the end-to-end tests,
//     relNewProfile for the reliability suite. Its run, exec and measure run the binary with it;
//     command and start give a process to signal.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// result is one finished run of the binary.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
	maxRSSKiB      int64 // peak RSS of popfetch; only set by a run with measure
}

// same reports whether r and o show the same to a user: exit code, stdout and stderr.
func (r result) same(o result) bool {
	return r.code == o.code && r.stdout == o.stdout && r.stderr == o.stderr
}

// binEnv is the environment of a run: home as HOME and XDG_RUNTIME_DIR, PATH, no D-Bus session
// (so the system keyring is never touched), then extra.
func binEnv(home string, extra ...string) []string {
	return append([]string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "XDG_RUNTIME_DIR=" + home,
		"DBUS_SESSION_BUS_ADDRESS="}, extra...)
}

// popfetch runs the real binary with a clean environment (binEnv with a new home) plus env, stdin
// as its standard input, for at most a minute.
func popfetch(t testing.TB, stdin string, env []string, args ...string) result {
	t.Helper()
	r, err := runBinary(runOpts{env: binEnv(t.TempDir(), env...), stdin: stdin, timeout: time.Minute}, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runOpts is how a run of the binary goes, besides its arguments.
type runOpts struct {
	env     []string      // the whole environment of the child (see binEnv)
	stdin   string        // its standard input
	timeout time.Duration // a run that does not end by then has hung: it is killed and an error
	wrapper []string      // a command line popfetch runs under (such as prlimit's), when not empty
	measure bool          // measure popfetch's peak RSS into maxRSSKiB with GNU time (-1: not installed)
}

// runBinary runs popfetchBin with args as o says. An exit status other than 0 is not an error; a
// run that does not end within o.timeout is. It does not fail a test, so it can run on any goroutine.
func runBinary(o runOpts, args ...string) (result, error) {
	if !o.measure {
		return runWrapped(o, args...)
	}
	if _, err := os.Stat(timeBin); err != nil {
		r, err := runWrapped(o, args...)
		r.maxRSSKiB = -1
		return r, err
	}
	f, err := os.CreateTemp("", "rel-rss")
	if err != nil {
		return result{}, err
	}
	f.Close()
	defer os.Remove(f.Name())
	o.wrapper = append([]string{timeBin, "-q", "-o", f.Name(), "-f", "%M"}, o.wrapper...)
	r, err := runWrapped(o, args...)
	if err != nil {
		return r, err
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return r, err
	}
	r.maxRSSKiB = -1
	if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
		r.maxRSSKiB = n
	}
	return r, nil
}

// timeBin is GNU time, which reports the peak RSS of popfetch alone. The rusage that os/exec
// returns cannot: the child is started with vfork semantics, and Linux counts the parent's peak RSS
// (this test process, large under the race detector) in the child's ru_maxrss at exec.
const timeBin = "/usr/bin/time"

func runWrapped(o runOpts, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	argv := append(append(slices.Clone(o.wrapper), popfetchBin), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = o.env
	cmd.Stdin = strings.NewReader(o.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		return result{}, fmt.Errorf("popfetch %v hung: killed after %v\nstderr:\n%s", args, o.timeout, stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return result{}, fmt.Errorf("running popfetch: %v", err)
	}
	return resultOf(cmd, stdout.String(), stderr.String(), took), nil
}

// resultOf is the result of cmd, which has exited: a process killed by signal N has code 128+N,
// as a shell reports it.
func resultOf(cmd *exec.Cmd, stdout, stderr string, took time.Duration) result {
	r := result{code: cmd.ProcessState.ExitCode(), stdout: stdout, stderr: stderr, took: took}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.code = 128 + int(ws.Signal())
	}
	return r
}

// profile is a configuration file in a temporary directory, with its state directory, built one
// account at a time with add or addAt, and how the binary runs with it. What an account starts
// from, the environment and the timeout of a run are its constructor's: newProfile or relNewProfile.
type profile struct {
	t        testing.TB
	dir      string // the test's directory: the configuration, the state and the maildirs are in it
	path     string // the configuration file
	stateDir string // state_dir (created by popfetch)
	blocks   []string
	// account is an account's keys in order and their default values (see accountYAML) for a server
	// on 127.0.0.1:port, and its maildir.
	account func(name string, port int) (keys []string, vals map[string]string, maildir string)
	env     []string      // the environment of a run; nil: binEnv with a new home for each run to its end
	timeout time.Duration // a run that takes longer has hung
}

// newProfile is a profile of the end-to-end tests: an account has pop3test's password "secret",
// no Received: header, a timeout of 20s and its maildir in dir/NAME/Maildir; a run has a new home
// and a minute.
func newProfile(t *testing.T) *profile {
	t.Helper()
	p := newProfileIn(t, t.TempDir(), nil, time.Minute)
	p.account = func(name string, port int) ([]string, map[string]string, string) {
		maildir := filepath.Join(p.dir, name, "Maildir")
		return []string{"host", "port", "tls", "ca_file", "user", "password", "received_header", "timeout", "deliver"},
			map[string]string{
				"host": "127.0.0.1", "port": strconv.Itoa(port), "tls": "implicit", "ca_file": "-",
				"user": "alice", "password": "secret", "received_header": "false", "timeout": "20s",
				"deliver": "{maildir: " + strconv.Quote(maildir) + "}",
			}, maildir
	}
	return p
}

func newProfileIn(t testing.TB, dir string, env []string, timeout time.Duration) *profile {
	return &profile{t: t, dir: dir, stateDir: filepath.Join(dir, "state"), path: filepath.Join(dir, "config.yaml"),
		env: env, timeout: timeout}
}

// add adds account name for server s (a pop3test server with implicit TLS unless kv says otherwise)
// and returns its maildir. kv are "key: value" lines that replace the defaults (the value "-" removes
// the key) or add keys.
func (p *profile) add(name string, s *pop3test.Server, kv ...string) string {
	p.t.Helper()
	return p.addAt(name, s.Port(), append([]string{"ca_file: " + p.caFile(s.CACertPEM())}, kv...)...)
}

// caFile writes caPEM to ca.pem in the profile's directory and returns its path, quoted for YAML.
func (p *profile) caFile(caPEM []byte) string {
	p.t.Helper()
	ca := filepath.Join(p.dir, "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return strconv.Quote(ca)
}

// addAt is add for a server on 127.0.0.1:port; no ca_file unless kv has one.
func (p *profile) addAt(name string, port int, kv ...string) string {
	p.t.Helper()
	keys, vals, maildir := p.account(name, port)
	for _, l := range kv {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			p.t.Fatalf("bad key line %q", l)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if _, known := vals[k]; !known {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	p.blocks = append(p.blocks, accountYAML(name, keys, vals))
	p.write()
	return maildir
}

// accountYAML is the block of account name in a configuration file: "key: value" for each of keys
// in order (a value "-" leaves the key out), then raw, lines of YAML indented by 4 spaces.
func accountYAML(name string, keys []string, vals map[string]string, raw ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s:\n", name)
	for _, k := range keys {
		if vals[k] != "-" {
			fmt.Fprintf(&b, "    %s: %s\n", k, vals[k])
		}
	}
	for _, r := range raw {
		b.WriteString(r)
		if !strings.HasSuffix(r, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func (p *profile) write() {
	p.t.Helper()
	text := "state_dir: " + p.stateDir + "\naccounts:\n" + strings.Join(p.blocks, "")
	if err := os.WriteFile(p.path, []byte(text), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// run runs the binary with this configuration; a run that hangs fails the test.
func (p *profile) run(args ...string) result {
	p.t.Helper()
	r, err := p.exec(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return r
}

// exec is run for goroutines other than the test's: it returns what run reports with t.Fatal.
func (p *profile) exec(args ...string) (result, error) {
	return runBinary(p.opts(), append([]string{"--config", p.path}, args...)...)
}

// measure is exec with a timeout of its own that also measures popfetch's peak RSS (maxRSSKiB; -1
// when GNU time is not installed).
func (p *profile) measure(timeout time.Duration, args ...string) (result, error) {
	o := p.opts()
	o.timeout, o.measure = timeout, true
	return runBinary(o, append([]string{"--config", p.path}, args...)...)
}

func (p *profile) opts() runOpts {
	env := p.env
	if env == nil {
		env = binEnv(p.t.TempDir())
	}
	return runOpts{env: env, timeout: p.timeout}
}

// command returns the binary as an *exec.Cmd with this configuration, for tests that signal it:
// in the profile's environment, or in binEnv(p.dir) when it has none.
func (p *profile) command(stdout, stderr io.Writer, args ...string) *exec.Cmd {
	cmd := exec.Command(popfetchBin, append([]string{"--config", p.path}, args...)...)
	cmd.Env = p.env
	if cmd.Env == nil {
		cmd.Env = binEnv(p.dir)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd
}

// process is the binary running in the background, killed when the test ends.
type process struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	timeout        time.Duration // the profile's: wait fails the test after it
	begun          time.Time     // when it was started
	took           time.Duration // from begun to its exit, once done is closed
	done           chan struct{} // closed when it has exited
	err            error
}

// start starts the binary with this configuration in the background (see command).
func (p *profile) start(args ...string) *process {
	p.t.Helper()
	pr := &process{timeout: p.timeout, done: make(chan struct{})}
	pr.cmd = p.command(&pr.stdout, &pr.stderr, args...)
	pr.begun = time.Now()
	if err := pr.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() {
		pr.err = pr.cmd.Wait()
		pr.took = time.Since(pr.begun)
		close(pr.done)
	}()
	p.t.Cleanup(func() {
		select {
		case <-pr.done:
		default:
			pr.cmd.Process.Kill()
			<-pr.done
		}
	})
	return pr
}

func (pr *process) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit (at most its profile's timeout) and returns its result.
func (pr *process) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-pr.done:
	case <-time.After(pr.timeout):
		pr.cmd.Process.Kill()
		<-pr.done
		t.Fatalf("popfetch did not exit within %v; stderr:\n%s", pr.timeout, pr.stderr.String())
	}
	var ee *exec.ExitError
	if pr.err != nil && !errors.As(pr.err, &ee) {
		t.Fatal(pr.err)
	}
	return resultOf(pr.cmd, pr.stdout.String(), pr.stderr.String(), pr.took)
}

func (pr *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := pr.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}
