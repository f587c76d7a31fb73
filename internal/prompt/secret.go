package prompt

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// MaxSecret bounds a password or token read from stdin (OAuth access tokens can be a few KiB).
const MaxSecret = 64 << 10

var (
	// ErrNoSecret marks the errors of Secret that the user must act on: nothing entered, no input,
	// a line too long.
	ErrNoSecret = errors.New("no usable secret")
	// ErrRead marks the errors of Secret reading its input.
	ErrRead = errors.New("reading the secret")
)

// Secret reads a password or token: without echo from a terminal, after asking question on w, or
// the first line of r when r is not a terminal (a pipe, a file), without its line ending.
func Secret(r io.Reader, w io.Writer, question string) (string, error) {
	if f, ok := r.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(w, "%s: ", question)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(w)
		if err != nil {
			return "", kind(ErrRead, fmt.Errorf("reading the password from the terminal: %w", err))
		}
		if len(b) == 0 {
			return "", kind(ErrNoSecret, errors.New("nothing entered; nothing stored"))
		}
		return string(b), nil
	}
	if r == nil {
		return "", kind(ErrNoSecret, errors.New("no terminal and no stdin to read the password from"))
	}
	line, err := bufio.NewReaderSize(io.LimitReader(r, MaxSecret+1), 4096).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", kind(ErrRead, fmt.Errorf("reading the password from stdin: %w", err))
	}
	if len(line) > MaxSecret {
		return "", kind(ErrNoSecret, fmt.Errorf("the line on stdin is longer than %d bytes", MaxSecret))
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", kind(ErrNoSecret, errors.New("stdin held no password (popfetch reads its first line); nothing stored"))
	}
	return line, nil
}

// kindError gives err the meaning k (errors.Is) without changing its text.
type kindError struct{ k, err error }

func (e *kindError) Error() string        { return e.err.Error() }
func (e *kindError) Unwrap() error        { return e.err }
func (e *kindError) Is(target error) bool { return target == e.k }

func kind(k, err error) error { return &kindError{k, err} }
