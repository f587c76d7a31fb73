package main

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/internal/daemon"
	"github.com/popfetch/popfetch/internal/demo"
	"github.com/popfetch/popfetch/internal/fsutil"
	"github.com/popfetch/popfetch/internal/prompt"
	"github.com/popfetch/popfetch/internal/shard"
	"github.com/popfetch/popfetch/store"
)

// storeExitCode maps what an error of a destination, of the lock or of the state means (store's
// kinds), and a file another user could change (*fsutil.UnsafeError), to its exit code. exitCode
// asks it before classify, as these errors may wrap network errors that classify would see as
// temporary.
func storeExitCode(err error) (int, bool) {
	var ue *fsutil.UnsafeError
	switch {
	case errors.Is(err, store.ErrTLS):
		return exitUnavailable, true // a required STARTTLS to the LMTP/SMTP server failed
	case errors.Is(err, store.ErrConfig):
		return exitConfig, true // the profile's destination settings cannot be used
	case errors.Is(err, store.ErrAuth):
		return exitNoPerm, true // a hosted mailbox refused the destination's credentials
	case errors.Is(err, store.ErrTemporary):
		return exitTempFail, true // a lock held, an MDA's EX_TEMPFAIL, a 4xx reply, a relay unreachable
	case errors.Is(err, store.ErrRefused), errors.Is(err, store.ErrLocalIO):
		return exitIOErr, true // delivery failed: refused by the destination, or the disk or state failed
	case errors.As(err, &ue):
		return exitConfig, true // the setup must change
	}
	return 0, false
}

// classify maps errors of the popfetch packages (config, fetch, store, and internal/daemon, prompt,
// demo, shard) to exit codes (ARCHITECTURE.md §5). Errors of store (storeExitCode) are mapped before
// this, among them the daemon's *daemon.RunningError (another daemon holds the lock: a
// *store.LockedError, temporary); anything unknown here is an internal error.
func classify(err error) int {
	if code, ok := oauth2ExitCode(err); ok {
		return code
	}
	if code, ok := secretExitCode(err); ok {
		return code
	}
	if isConfigError(err) {
		return exitConfig
	}
	var (
		perr   *pop3.Error
		tlsErr *pop3.TLSError
		netErr net.Error
	)
	switch {
	case errors.Is(err, fetch.ErrInterrupted), errors.Is(err, prompt.ErrInterrupted), errors.Is(err, daemon.ErrAborted):
		return exitInterrupted
	case errors.As(err, new(*daemon.ListenError)):
		return exitTempFail // the metrics address is in use or not this host's: later, perhaps
	case errors.Is(err, prompt.ErrNoAnswer), errors.Is(err, prompt.ErrNoSecret), errors.Is(err, shard.ErrUsage):
		return exitUsage
	case errors.Is(err, prompt.ErrRead):
		return exitIOErr
	case errors.Is(err, demo.ErrWrite):
		return exitIOErr
	case errors.As(err, &tlsErr), errors.Is(err, pop3.ErrSTLSUnavailable):
		return exitUnavailable
	case errors.Is(err, pop3.ErrPlaintextAuth), errors.Is(err, fetch.ErrNoUIDL):
		return exitConfig // the profile must change: allow_plaintext_auth, tls, keep
	case errors.Is(err, pop3.ErrNoMechanism):
		return exitNoPerm
	case errors.Is(err, fetch.ErrDuplicateUID), errors.As(err, new(*fetch.OversizeError)),
		errors.Is(err, pop3.ErrListingTooLong):
		return exitDataErr
	case errors.As(err, &perr):
		switch {
		case perr.Temporary():
			return exitTempFail
		case perr.AuthFailed():
			return exitNoPerm
		}
		return exitProtocol
	case errors.Is(err, pop3.ErrProtocol):
		return exitProtocol
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, pop3.ErrUnusable), errors.As(err, &netErr):
		return exitTempFail // the network, a timeout, a dropped connection
	}
	return exitSoftware
}

// combineCodes merges the exit codes of several accounts: an interruption wins, then a permanent
// failure (the first one), then a temporary one (75), else success.
func combineCodes(codes []int) int {
	result := exitOK
	for _, c := range codes {
		switch {
		case c == exitInterrupted:
			return c
		case c == exitOK:
		case c == exitTempFail:
			if result == exitOK {
				result = c
			}
		default:
			if result == exitOK || result == exitTempFail {
				result = c
			}
		}
	}
	return result
}
