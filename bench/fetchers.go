//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// An account is one mailbox as a fetcher sees it: through the proxy, delivered to its own maildir.
type account struct {
	name, user, pass string
	maildir          string
}

// A job is one fetcher's configuration for one scenario: its files live in dir, which is fresh for
// each measured series (so state and maildirs start empty).
type job struct {
	dir      string
	host     string
	port     int
	caFile   string
	keep     bool
	jobs     int // popfetch --jobs
	accounts []account
}

// A fetcher knows how to configure and run one program.
type fetcher struct {
	name    string
	bin     string
	version string
	// configure writes the fetcher's configuration into j.dir and returns the command line and
	// extra environment.
	configure func(bin string, j *job) (args, env []string, err error)
	// ok reports whether an exit status means success.
	ok func(code int) bool
}

var fetchers = []*fetcher{
	{name: "popfetch", configure: configurePopfetch, ok: func(c int) bool { return c == 0 }},
	{name: "mpop", configure: configureMpop, ok: func(c int) bool { return c == 0 }},
	// fetchmail exits 1 when there was no mail.
	{name: "fetchmail", configure: configureFetchmail, ok: func(c int) bool { return c == 0 || c == 1 }},
}

const benchPasswordEnv = "POPFETCH_BENCH_PASSWORD"

// popfetchAuth is popfetch's auth key (-popfetch-auth); "" leaves it to popfetch (auto).
var popfetchAuth string

func configurePopfetch(bin string, j *job) ([]string, []string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\n", filepath.Join(j.dir, "state"))
	b.WriteString("accounts:\n")
	for _, a := range j.accounts {
		fmt.Fprintf(&b, "  %s:\n", a.name)
		fmt.Fprintf(&b, "    host: %s\n    port: %d\n    tls: implicit\n    ca_file: %s\n", j.host, j.port, j.caFile)
		fmt.Fprintf(&b, "    user: %s\n    password_env: %s\n", a.user, benchPasswordEnv)
		if popfetchAuth != "" {
			fmt.Fprintf(&b, "    auth: %s\n", popfetchAuth)
		}
		// Every account is on one host: --jobs, not max_connections (default 8), is the limit.
		fmt.Fprintf(&b, "    keep: %v\n    timeout: 10m\n    max_connections: %d\n", j.keep, max(j.jobs, 1))
		fmt.Fprintf(&b, "    deliver:\n      maildir: %s\n", a.maildir)
	}
	cfg := filepath.Join(j.dir, "popfetch.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		return nil, nil, err
	}
	// Every account has the same password in the benchmark.
	return []string{"--config", cfg, "sync", "--jobs", fmt.Sprint(j.jobs)},
		[]string{benchPasswordEnv + "=" + j.accounts[0].pass}, nil
}

func configureMpop(bin string, j *job) ([]string, []string, error) {
	var b strings.Builder
	b.WriteString("defaults\n")
	fmt.Fprintf(&b, "host %s\nport %d\ntls on\ntls_starttls off\ntls_trust_file %s\n", j.host, j.port, j.caFile)
	fmt.Fprintf(&b, "keep %s\nuidls_file %s\ntimeout 600\n", onOff(j.keep), filepath.Join(j.dir, "uidls-%U_at_%H"))
	for _, a := range j.accounts {
		fmt.Fprintf(&b, "\naccount %s\nuser %s\npassword %s\ndelivery maildir %s\n", a.name, a.user, a.pass, a.maildir)
	}
	rc := filepath.Join(j.dir, "mpoprc")
	if err := os.WriteFile(rc, []byte(b.String()), 0o600); err != nil {
		return nil, nil, err
	}
	return []string{"--file=" + rc, "--quiet", "--all-accounts"}, nil, nil
}

func configureFetchmail(bin string, j *job) ([]string, []string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "set no syslog\nset idfile %q\n", filepath.Join(j.dir, "fetchids"))
	for _, a := range j.accounts {
		// fetchmail matches the certificate's names against the host name it polls, not its IP
		// address SAN; the test certificate is for localhost and 127.0.0.1: sslcommonname.
		fmt.Fprintf(&b, "poll %s protocol pop3 port %d timeout 600", j.host, j.port)
		if j.keep {
			b.WriteString(" uidl") // a server option: remember UIDLs, fetch only new messages
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "  user %q there with password %q is root here\n", a.user, a.pass)
		fmt.Fprintf(&b, "  ssl sslcertck sslcertfile %q sslcommonname localhost\n", j.caFile)
		if j.keep {
			b.WriteString("  keep\n")
		} else {
			b.WriteString("  nokeep\n")
		}
		fmt.Fprintf(&b, "  no rewrite\n  mda \"safecat %s %s\"\n", filepath.Join(a.maildir, "tmp"), filepath.Join(a.maildir, "new"))
	}
	rc := filepath.Join(j.dir, "fetchmailrc")
	if err := os.WriteFile(rc, []byte(b.String()), 0o600); err != nil {
		return nil, nil, err
	}
	return []string{"-f", rc, "--nodetach", "--silent", "--pidfile", filepath.Join(j.dir, "fetchmail.pid")}, nil, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// measure is one run of one fetcher.
type measure struct {
	wall, cpu time.Duration
	rssKB     int64
	stats     proxyStats
	imap      proxyStats // the IMAP leg of the i-* scenarios
	err       error
}

// timeBin is GNU time, which measures the peak RSS: see execute.
var timeBin, _ = exec.LookPath("time")

// execute runs the fetcher once and measures it. The process runs in its own process group, which is
// killed when it times out or when ctx ends, and it dies with the benchmark.
//
// Peak RSS: Go starts a child with vfork (CLONE_VM), and Linux records the high-water mark of the
// memory the child leaves at exec (the benchmark's own, which holds every seeded message) in the
// child's maxrss. So the fetcher runs under GNU time, which fork()s it from its own small memory
// (1–2 MB) and reports the fetcher's maxrss (%M, the largest of the process and the children it
// waited for). CPU time comes from wait4 of the time process: its children's time included, at
// microsecond resolution (time itself adds about a millisecond). Without GNU time, the RSS column
// is an upper bound.
func execute(ctx context.Context, f *fetcher, args, env []string, dir string, timeout time.Duration, trace io.Writer) measure {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var cmd *exec.Cmd
	rssFile := filepath.Join(dir, "time.out")
	if timeBin != "" {
		cmd = exec.Command(timeBin, append([]string{"-f", "%M", "-o", rssFile, "--", f.bin}, args...)...)
	} else {
		cmd = exec.Command(f.bin, args...)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_STATE_HOME="+filepath.Join(dir, "state-home"), "LC_ALL=C")
	cmd.Env = append(cmd.Env, env...)
	var out strings.Builder
	cmd.Stdout = &limitedWriter{b: &out, n: 8 << 10}
	cmd.Stderr = cmd.Stdout
	if trace != nil {
		cmd.Stderr = io.MultiWriter(cmd.Stdout, trace)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return measure{err: err}
	}
	stop := context.AfterFunc(ctx, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err := cmd.Wait()
	wall := time.Since(start)
	stop()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything it left behind
	m := measure{wall: wall}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		m.rssKB = ru.Maxrss
	}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		m.err = fmt.Errorf("killed after %v: %v", timeout, ctx.Err())
	case err == nil:
	case errors.As(err, &ee) && ee.Exited() && f.ok(ee.ExitCode()):
	default:
		m.err = fmt.Errorf("%v: %s", err, strings.TrimSpace(out.String()))
	}
	if timeBin != "" && m.err == nil {
		data, err := os.ReadFile(rssFile)
		lines := strings.Fields(string(data))
		if err != nil || len(lines) == 0 {
			m.err = fmt.Errorf("time: no output: %v", err)
		} else if kb, err := strconv.ParseInt(lines[len(lines)-1], 10, 64); err != nil {
			m.err = fmt.Errorf("time: %q: %v", data, err)
		} else {
			m.rssKB = kb
		}
	}
	return m
}

type limitedWriter struct {
	b *strings.Builder
	n int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// version returns the first line of the program's version output.
func version(bin string, arg string) string {
	out, _ := exec.Command(bin, arg).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(strings.ToLower(l), "version") || strings.Contains(l, "release") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}
