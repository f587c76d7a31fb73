package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// What a store error means, matched with errors.Is. The errors of a destination, of the lock and of the
// state match one of them; the CLI maps each to its exit code (cmd/popfetch/classify.go holds the one table).
var (
	// ErrLocalIO: a local failure of a destination or of the state (disk full, EIO, permissions, a
	// corrupt state file): *IOError, *CorruptStateError.
	ErrLocalIO = errors.New("store: local I/O error")
	// ErrRefused: the destination refused the message for good: an MDA that failed other than with
	// EX_TEMPFAIL, a 5xx reply of an LMTP/SMTP server.
	ErrRefused = errors.New("store: delivery refused")
	// ErrTemporary: trying again later may succeed: a lock held by another run or program, an MDA
	// that exited with EX_TEMPFAIL, a 4xx reply or a connection problem of an LMTP/SMTP server.
	ErrTemporary = errors.New("store: temporary failure")
	// ErrTLS: a required STARTTLS of an LMTP/SMTP server was not offered or its certificate did not
	// verify.
	ErrTLS = errors.New("store: TLS failed")
	// ErrAuth: a hosted mailbox (IMAP, the Gmail API) refused the destination's credentials, or the
	// token lacks the scopes popfetch needs: the user must log in again.
	ErrAuth = errors.New("store: destination refused the credentials")
	// ErrConfig: the profile's settings for a destination cannot be used (an unreadable ca_file).
	ErrConfig = errors.New("store: destination misconfigured")
)

// IOError is a local I/O failure of a destination or of the state: disk full (ENOSPC), EIO, a
// permission problem, a file that cannot be renamed or synced. It matches ErrLocalIO.
// Errors reading the message stream from the server are not IOErrors: they are returned as they are.
type IOError struct {
	Op   string // what popfetch was doing: "create", "write", "syncfs", "rename", "append", ...
	Path string // the file or directory concerned
	Err  error  // the underlying error, usually a *fs.PathError or a syscall.Errno
}

// Error names the operation, the path and the cause.
func (e *IOError) Error() string {
	cause := e.Err
	// Say the path once: "store: write /m/tmp/x: no space left on device", not the os error's
	// "write /m/tmp/x: " again.
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(cause, &pe) && pe.Path == e.Path:
		cause = pe.Err
	case errors.As(cause, &le) && le.Old == e.Path:
		cause = le.Err
	}
	if e.Path == "" {
		return fmt.Sprintf("store: %s: %v", e.Op, cause)
	}
	return fmt.Sprintf("store: %s %s: %v", e.Op, e.Path, cause)
}

// Unwrap returns the underlying error, so errors.Is(err, syscall.ENOSPC) works.
func (e *IOError) Unwrap() error { return e.Err }

// Is makes every *IOError match ErrLocalIO.
func (e *IOError) Is(target error) bool { return target == ErrLocalIO }

// ioErr wraps err as an *IOError unless it is nil or already one (or a context error, which means
// "interrupted", not "the disk failed").
func ioErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var ie *IOError
	if errors.As(err, &ie) {
		return err
	}
	return &IOError{Op: op, Path: path, Err: err}
}

// LockedError reports that another popfetch run holds the account's lock (ARCHITECTURE.md §2 step 1). It
// matches ErrLocked and ErrTemporary with errors.Is.
type LockedError struct {
	Path string // the lock file
	PID  int    // the holder's process id as it wrote it into the lock file, 0 if unknown
}

// Error names the lock file and, if known, the holder's pid.
func (e *LockedError) Error() string {
	switch {
	case e.Path == "":
		return "store: account is locked by another popfetch run"
	case e.PID > 0:
		return fmt.Sprintf("store: %s is held by another popfetch run (pid %d)", e.Path, e.PID)
	default:
		return fmt.Sprintf("store: %s is held by another popfetch run", e.Path)
	}
}

// Is makes every *LockedError match ErrLocked and ErrTemporary.
func (e *LockedError) Is(target error) bool { return target == ErrLocked || target == ErrTemporary }

// Temporary reports true: try again later, or run with --wait.
func (e *LockedError) Temporary() bool { return true }

// ErrLocked is matched (errors.Is) by the error Lock returns when the account is locked.
var ErrLocked error = &LockedError{}

// CorruptStateError reports a state file that popfetch cannot trust: garbage or a checksum mismatch
// before the last record, a missing or unknown header. popfetch refuses to run rather than silently
// fetch everything again (ARCHITECTURE.md §3). It matches ErrLocalIO, like other local state failures.
type CorruptStateError struct {
	Path   string
	Line   int    // 1-based line number, 0 when not about one line
	Reason string // what is wrong
}

// Error names the file and line, what is wrong, and how to recover.
func (e *CorruptStateError) Error() string {
	where := e.Path
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", e.Path, e.Line)
	}
	return fmt.Sprintf("store: state file %s is corrupt: %s; popfetch will not guess which messages it "+
		"already has. Inspect the file (one record per line, a CRC-32C checksum first); to start over, "+
		"move it aside (every message still on the server will be fetched again) or rebuild it with "+
		"`popfetch state import`", where, e.Reason)
}

// Is makes every *CorruptStateError match ErrLocalIO.
func (e *CorruptStateError) Is(target error) bool { return target == ErrLocalIO }

// kindError gives err one of the meanings above without changing its text.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string        { return e.err.Error() }
func (e *kindError) Unwrap() error        { return e.err }
func (e *kindError) Is(target error) bool { return target == e.kind }
