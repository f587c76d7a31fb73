package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Exit codes of the errors below, after sysexits(3); DESIGN.md §4 is the table. They are repeated here
// because store must not import the CLI; cmd/popfetch maps any error with an ExitCode method.
const (
	exitIOErr    = 74 // EX_IOERR: local I/O error, state unwritable or corrupt
	exitTempFail = 75 // EX_TEMPFAIL: the account is locked by another run
)

// IOError is a local I/O failure of a destination or of the state: disk full (ENOSPC), EIO, a
// permission problem, a file that cannot be renamed or synced. The CLI exits 74 for it (DESIGN §4).
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

// ExitCode is 74 (EX_IOERR).
func (e *IOError) ExitCode() int { return exitIOErr }

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

// LockedError reports that another popfetch run holds the account's lock (DESIGN §2 step 1). It
// matches ErrLocked with errors.Is, and the CLI exits 75 for it.
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

// Is makes every *LockedError match ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// ExitCode is 75 (EX_TEMPFAIL): try again later, or run with --wait.
func (e *LockedError) ExitCode() int { return exitTempFail }

// ErrLocked is matched (errors.Is) by the error Lock returns when the account is locked.
var ErrLocked error = &LockedError{}

// CorruptStateError reports a state file that popfetch cannot trust: garbage or a checksum mismatch
// before the last record, a missing or unknown header. popfetch refuses to run rather than silently
// fetch everything again (DESIGN §3). The CLI exits 74 for it.
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

// ExitCode is 74 (EX_IOERR), like other local state failures.
func (e *CorruptStateError) ExitCode() int { return exitIOErr }
