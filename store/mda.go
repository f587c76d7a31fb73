package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/popfetch/popfetch/internal/childenv"
	"github.com/popfetch/popfetch/internal/shquote"
	"github.com/popfetch/popfetch/internal/termsafe"
)

// MDAOptions configure an MDA destination. The zero value is valid.
type MDAOptions struct {
	// Shell runs the command through a shell: argv is then one string, run by "/bin/sh -c", or
	// {SHELL, "-c", string} (the form config.Destination.Command has); the %u and %a substitutions
	// are single-quoted for the shell. Without Shell, argv is run as it is (no shell), and nothing is
	// quoted: do not pass a shell's "-c" script as argv without Shell.
	Shell bool
	// ReceivedHeader prepends ReceivedHeader(env) to every message.
	ReceivedHeader bool
	// Timeout bounds one delivery (start to exit); the whole process group is killed when it
	// expires. 0 means 5 minutes.
	Timeout time.Duration
	// Env is added to the MDA's environment (which is popfetch's own, plus POPFETCH_ACCOUNT and
	// POPFETCH_USER). Pass secrets, if an MDA ever needs one, here and never in argv: argv is
	// visible to every user in ps(1).
	Env []string
	// DropEnv names variables of popfetch's environment the MDA must not inherit: those holding
	// secrets (password_env, oauth2.client_secret_env).
	DropEnv []string
	// OutputLimit is how many bytes of the MDA's combined stdout and stderr (the last ones) are kept
	// for the error message; 0 means 4 KiB.
	OutputLimit int
}

const defaultMDATimeout = 5 * time.Minute

// MDA delivers each message by running a command (a mail delivery agent such as procmail, maildrop
// or dovecot-lda) with the message on its standard input, streamed, with CRLF turned into LF. The
// message is delivered when the command exits 0.
//
// In the arguments, %u is replaced by the login user, %a by the account name, %% by %.
//
// An MDA is at-least-once: a delivery is complete when the command exits 0, and if popfetch is
// killed between that exit and the state's record of the UIDL, the message is fetched and delivered
// again on the next run; there is no way to ask an MDA whether it delivered a message. Commit only
// calls journal; Abort cannot undo deliveries.
//
// A failure is an *MDAError: a non-zero exit, a signal, a timeout, a command that cannot be
// started. Exit status 75 (EX_TEMPFAIL) is temporary. A message the server stream breaks in the
// middle of is never handed over complete: the MDA is killed before it sees the end of its input.
//
// An MDA is safe for use by several goroutines, but deliveries are serialised.
type MDA struct {
	argv []string
	opts MDAOptions

	mu    sync.Mutex
	batch batch
}

// MDAError reports a failed delivery through an MDA. It matches ErrTemporary when the MDA exited with
// EX_TEMPFAIL, ErrRefused otherwise.
type MDAError struct {
	Command  string // argv[0] after substitution, or "SHELL -c" with Shell
	Status   int    // exit status, -1 if it did not exit normally
	Signal   string // the signal that killed it, "" if none
	TimedOut bool   // killed because MDAOptions.Timeout expired
	Output   string // the tail of its stdout and stderr
	Err      error  // the underlying error (exec, I/O)
}

func (e *MDAError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "store: mda %s: ", e.Command)
	switch {
	case e.TimedOut:
		b.WriteString("timed out, killed")
	case e.Signal != "":
		fmt.Fprintf(&b, "killed by signal %s", e.Signal)
	case e.Status > 0:
		fmt.Fprintf(&b, "exit status %d", e.Status)
		if e.Status == mdaTempFail {
			b.WriteString(" (temporary failure)")
		}
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("failed")
	}
	if e.Output != "" {
		fmt.Fprintf(&b, ": %s", e.Output)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *MDAError) Unwrap() error { return e.Err }

// Temporary reports whether the MDA exited with 75 (EX_TEMPFAIL).
func (e *MDAError) Temporary() bool { return e.Status == mdaTempFail }

// Is makes an *MDAError match ErrTemporary or ErrRefused, as Temporary says.
func (e *MDAError) Is(target error) bool {
	if e.Temporary() {
		return target == ErrTemporary
	}
	return target == ErrRefused
}

// mdaTempFail is the exit status of an MDA that asks to be tried again later: EX_TEMPFAIL of
// sysexits(3), as procmail, maildrop and dovecot-lda use it.
const mdaTempFail = 75

// NewMDA returns a destination running argv for every message.
func NewMDA(argv []string, opts MDAOptions) (*MDA, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("store: mda: empty command")
	}
	if opts.Shell {
		switch {
		case len(argv) == 1:
			argv = []string{"/bin/sh", "-c", argv[0]}
		case len(argv) == 3 && argv[1] == "-c": // config.Destination's {"sh", "-c", line}
		default:
			return nil, errors.New(`store: mda: with a shell, the command is one string (or "sh", "-c", string)`)
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultMDATimeout
	}
	if opts.OutputLimit <= 0 {
		opts.OutputLimit = 4 << 10
	}
	return &MDA{argv: append([]string(nil), argv...), opts: opts}, nil
}

// mdaExpand replaces %u, %a and %% in s; quote, if non-nil, is applied to the substituted values.
func mdaExpand(s string, env Envelope, quote func(string) string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	if quote == nil {
		quote = func(v string) string { return v }
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case 'u':
			b.WriteString(quote(env.User))
		case 'a':
			b.WriteString(quote(env.Account))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteString(s[i : i+2])
		}
		i++
	}
	return b.String()
}

// command returns the command line for env.
func (m *MDA) command(env Envelope) (name string, args []string) {
	if m.opts.Shell {
		return m.argv[0], []string{"-c", mdaExpand(m.argv[2], env, shquote.Quote)}
	}
	args = make([]string, len(m.argv)-1)
	for i, a := range m.argv[1:] {
		args[i] = mdaExpand(a, env, nil)
	}
	return mdaExpand(m.argv[0], env, nil), args
}

// Deliver runs the command with the message on its standard input and waits for it to exit.
func (m *MDA) Deliver(ctx context.Context, env Envelope, body io.Reader) (Pending, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Pending{}, err
	}
	name, args := m.command(env)
	label := name
	if m.opts.Shell {
		label = name + " -c"
	}
	runCtx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, name, args...)
	cmd.Env = childenv.Environ(m.opts.DropEnv, "POPFETCH_ACCOUNT="+env.Account, "POPFETCH_USER="+env.User)
	cmd.Env = append(cmd.Env, m.opts.Env...)
	out := &tailBuffer{limit: m.opts.OutputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	mdaProcessGroup(cmd) // Cancel kills the whole group; see mda_unix.go
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return Pending{}, &MDAError{Command: label, Status: -1, Err: err}
	}
	if err := cmd.Start(); err != nil {
		return Pending{}, &MDAError{Command: label, Status: -1, Err: err}
	}

	w := bufio.NewWriterSize(stdin, 32<<10)
	var readErr, writeErr error
	if m.opts.ReceivedHeader {
		_, writeErr = io.WriteString(w, ReceivedHeader(env))
	}
	if writeErr == nil {
		f := newLineFilter(w, true, false)
		_, readErr, writeErr = copyReadWrite(f, &ctxBodyReader{ctx: runCtx, r: body})
		if readErr == nil && writeErr == nil {
			writeErr = f.Finish()
		}
		if readErr == nil && writeErr == nil {
			writeErr = w.Flush()
		}
	}
	if readErr != nil {
		// The MDA must not see a clean end of input: kill it before closing its stdin.
		mdaKill(cmd)
		_ = stdin.Close()
		_ = cmd.Wait()
		if ctx.Err() == nil && runCtx.Err() != nil {
			return Pending{}, &MDAError{Command: label, Status: -1, TimedOut: true, Output: out.String(), Err: readErr}
		}
		return Pending{}, readErr
	}
	_ = stdin.Close()
	// A write error (EPIPE: the MDA exited without reading everything) is decided by its exit status.
	waitErr := cmd.Wait()
	if waitErr != nil && ctx.Err() != nil {
		return Pending{}, ctx.Err()
	}
	if waitErr != nil && runCtx.Err() != nil {
		return Pending{}, &MDAError{Command: label, Status: -1, TimedOut: true, Output: out.String(), Err: runCtx.Err()}
	}
	if waitErr != nil {
		e := &MDAError{Command: label, Status: -1, Output: out.String(), Err: waitErr}
		var xe *exec.ExitError
		if errors.As(waitErr, &xe) {
			e.Status = xe.ExitCode()
			e.Signal = mdaSignal(xe)
		}
		return Pending{}, e
	}
	_ = writeErr // exit 0: the MDA accepted the message, even if it did not read all of it
	p := Pending{UID: env.UID}
	m.batch = append(m.batch, p)
	return p, nil
}

// Commit calls journal with the batch: the messages were delivered when their MDA exited 0.
func (m *MDA) Commit(ctx context.Context, journal func([]Pending) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.batch.journal(journal)
}

// Abort forgets the batch; delivered messages stay delivered (at-least-once).
func (m *MDA) Abort() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batch = nil
	return nil
}

// Close does nothing: no MDA runs between deliveries.
func (m *MDA) Close() error { return nil }

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
	cut   bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.limit {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.limit:]...)
		t.cut = true
	}
	return len(p), nil
}

// String returns the kept output on one line, terminal-safe.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	for t.cut && len(b) > 0 && !utf8.RuneStart(b[0]) {
		b = b[1:] // the cut fell inside a character
	}
	s := strings.TrimSpace(string(b))
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
	// The output often echoes the message's headers: a sender can put terminal escapes in it.
	s = termsafe.String(s)
	if t.cut && s != "" {
		s = "..." + s
	}
	return s
}

var _ Destination = (*MDA)(nil)
