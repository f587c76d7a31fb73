package main

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/fetch/pop3"
)

// classify maps errors of the popfetch packages (config, fetch, store) to exit codes (DESIGN §4).
// Errors that know their code (store's, through ExitCode) are mapped before this; anything unknown
// here is an internal error.
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
	case errors.Is(err, fetch.ErrInterrupted):
		return exitInterrupted
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
