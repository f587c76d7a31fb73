package main

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/popfetch/popfetch/internal/fsutil"
	"github.com/popfetch/popfetch/store"
)

// TestExitCodeOfStoreErrors: the errors of the destinations, the lock and the state say what they
// mean (store.ErrTemporary, ErrRefused, ErrLocalIO, ErrTLS) and exitCode alone turns that into the
// exit codes they have always had, also when the engine wraps them and when they wrap a network
// error (a relay's connection problem is temporary, its failed STARTTLS is 69, not 75).
func TestExitCodeOfStoreErrors(t *testing.T) {
	netErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tlsErr := &net.OpError{Op: "remote error", Net: "tcp", Err: errors.New("tls: bad certificate")}
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"disk full", &store.IOError{Op: "write", Path: "/m/tmp/x", Err: syscall.ENOSPC}, 74},
		{"state corrupt", &store.CorruptStateError{Path: "/s/acct.state", Line: 3, Reason: "bad checksum"}, 74},
		{"account locked", &store.LockedError{Path: "/s/acct.lock", PID: 42}, 75},
		{"ErrLocked", store.ErrLocked, 75},
		{"mbox locked", &store.MboxLockedError{Path: "/var/mail/a", Lock: "dotlock"}, 75},
		{"MDA exit 75", &store.MDAError{Command: "procmail", Status: 75}, 75},
		{"MDA exit 1", &store.MDAError{Command: "procmail", Status: 1}, 74},
		{"MDA killed", &store.MDAError{Command: "procmail", Status: -1, Signal: "SIGKILL"}, 74},
		{"MDA timed out", &store.MDAError{Command: "procmail", Status: -1, TimedOut: true}, 74},
		{"relay 452", &store.RelayError{Proto: "LMTP", Stage: "RCPT", Code: 452}, 75},
		{"relay 550", &store.RelayError{Proto: "LMTP", Stage: "RCPT", Code: 550}, 74},
		{"relay unreachable", &store.RelayError{Proto: "SMTP", Stage: "connect", Err: netErr}, 75},
		{"relay STARTTLS failed", &store.RelayError{Proto: "SMTP", Stage: "STARTTLS", Err: tlsErr}, 69},
		{"relay STARTTLS refused with 454", &store.RelayError{Proto: "SMTP", Stage: "STARTTLS", Code: 454}, 75},
		{"unsafe state directory", &fsutil.UnsafeError{Path: "/s", What: "state directory"}, 78},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("deliver UID1: %w", tc.err)} {
			if got := exitCode(err); got != tc.want {
				t.Errorf("%s: exitCode(%v) = %d, want %d", tc.name, err, got, tc.want)
			}
		}
	}
}
