package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/popfetch/popfetch/internal/daemon"
	"github.com/popfetch/popfetch/store"
)

// TestDaemonErrorCodes: what internal/daemon returns, and what its Exhausted hook is given, map to
// the exit codes the daemon has always had: another daemon running 75, the metrics address taken
// 75, a second signal 130 (printed by nobody: the log said it), EMFILE a resource exhausted (75).
func TestDaemonErrorCodes(t *testing.T) {
	running := &daemon.RunningError{StateDir: "/s", Lock: &store.LockedError{Path: "/s/@daemon.lock", PID: 42}}
	if c := exitCode(running); c != exitTempFail || !errors.Is(running, store.ErrLocked) {
		t.Errorf("RunningError: exit %d", c)
	}
	if want := "another popfetch daemon (pid 42) is already running for the state directory /s (lock /s/@daemon.lock)"; running.Error() != want {
		t.Errorf("RunningError says %q, want %q", running.Error(), want)
	}
	inUse := &net.OpError{Op: "listen", Net: "tcp", Err: &os.SyscallError{Syscall: "bind", Err: syscall.EADDRINUSE}}
	if c := exitCode(&daemon.ListenError{Err: inUse}); c != exitTempFail {
		t.Errorf("ListenError: exit %d", c)
	}
	if c := exitCode(&daemon.ListenError{Err: errors.New("bind: address already in use")}); c != exitTempFail {
		t.Errorf("ListenError (no net.Error): exit %d", c)
	}
	if c := exitCode(daemon.ErrAborted); c != exitInterrupted {
		t.Errorf("ErrAborted: exit %d", c)
	}
	emfile := fmt.Errorf("store: open x.lock: %w", &os.PathError{Op: "open", Path: "x.lock", Err: syscall.EMFILE})
	if !resourceExhausted(emfile) || resourceExhausted(os.ErrNotExist) || exitCode(emfile) != exitTempFail {
		t.Errorf("resourceExhausted/exitCode: %v %d", resourceExhausted(emfile), exitCode(emfile))
	}
}
