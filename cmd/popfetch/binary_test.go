package main

// The one way the tests of this package run the real binary (popfetchBin, built by TestMain in
// cli_test.go): a clean environment, a deadline after which a run counts as hung, the exit code
// (128+N for a process killed by signal N), and optionally the peak RSS. popfetch and profile.run
// (e2e tests) and relRunBin, relExec, relSetup.run (the reliability suite) are front-ends of it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// result is one finished run of the binary.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
	maxRSSKiB      int64 // peak RSS of popfetch; only set by relExecMeasured
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
	r, err := runBinary(time.Minute, binEnv(t.TempDir(), env...), stdin, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runBinary runs popfetchBin with args (behind wrapper, a command line such as GNU time's, when not
// empty) in env with stdin. A run that does not end within timeout is killed and reported as hung;
// an exit status other than 0 is not an error.
func runBinary(timeout time.Duration, env []string, stdin string, wrapper []string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append(append(slices.Clone(wrapper), popfetchBin), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		return result{}, fmt.Errorf("popfetch %v hung: killed after %v\nstderr:\n%s", args, timeout, stderr.String())
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
