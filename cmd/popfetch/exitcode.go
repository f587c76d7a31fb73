package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Exit codes, after sysexits(3) as mpop uses them. This table is the one place that defines them; the
// help text and the README print it.
const (
	exitOK          = 0   // success (new mail or none)
	exitNoMail      = 1   // `popfetch check` only: no new mail
	exitUsage       = 64  // usage error
	exitDataErr     = 65  // bad data from the server that popfetch could not handle
	exitUnavailable = 69  // TLS / certificate verification failed, or STLS required but not offered
	exitSoftware    = 70  // internal error
	exitIOErr       = 74  // local I/O error: delivery failed, state unwritable
	exitTempFail    = 75  // temporary: network, timeout, [IN-USE], [LOGIN-DELAY], [SYS/TEMP], lock held, EMFILE/ENOMEM
	exitProtocol    = 76  // protocol error: the server broke the protocol
	exitNoPerm      = 77  // authentication refused
	exitConfig      = 78  // configuration error
	exitInterrupted = 130 // interrupted by SIGINT/SIGTERM
)

var exitTable = []struct {
	code    int
	meaning string
}{
	{exitOK, "success (new mail or none)"},
	{exitNoMail, "`popfetch check`: no new mail; `popfetch status --check`: an account is unhealthy"},
	{exitUsage, "usage error"},
	{exitDataErr, "bad data from the server that popfetch could not handle"},
	{exitUnavailable, "TLS / certificate verification failed, or STLS required but not offered"},
	{exitSoftware, "internal error"},
	{exitIOErr, "local I/O error: delivery failed (disk full, MDA failed), state unwritable"},
	{exitTempFail, "temporary: network, timeout, [IN-USE], [LOGIN-DELAY], [SYS/TEMP], lock held, out of file descriptors or memory"},
	{exitProtocol, "protocol error: the server broke the protocol"},
	{exitNoPerm, "authentication refused ([AUTH], bad password, OAuth2 login needed)"},
	{exitConfig, "configuration error (with file:line)"},
	{exitInterrupted, "interrupted (SIGINT/SIGTERM)"},
}

// exitStatusHelp is the EXIT STATUS section of `popfetch --help`.
func exitStatusHelp() string {
	var b strings.Builder
	b.WriteString("EXIT STATUS:\n")
	for _, e := range exitTable {
		fmt.Fprintf(&b, "   %3d  %s\n", e.code, e.meaning)
	}
	return b.String()
}

// codedError carries an exit code chosen where the error was understood.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// withCode attaches an exit code to err (nil stays nil).
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

// errReported marks an error whose message the command has already printed (per account, say):
// run exits with its code without printing it again.
var errReported = errors.New("reported")

// exitStatus returns an error that makes run exit with code and print nothing more.
func exitStatus(code int) error {
	if code == exitOK {
		return nil
	}
	return &codedError{code: code, err: errReported}
}

// exitCode maps an error returned by a command to the process exit status.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if resourceExhausted(err) { // classify_resource.go: before any code chosen without knowing
		return exitTempFail
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	if code, ok := storeExitCode(err); ok {
		return code
	}
	if errors.Is(err, context.Canceled) {
		return exitInterrupted
	}
	return classify(err)
}
