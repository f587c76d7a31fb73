// Package prompt asks questions on a terminal (`popfetch init`) and reads a password or token
// without echo, or from stdin (`popfetch password set`).
package prompt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Prompter asks questions on a terminal: the question on W, one line from R. When Ctx is done (a
// SIGINT or SIGTERM), a question ends at once with ErrInterrupted: the read is left behind, and the
// caller is expected to exit.
type Prompter struct {
	Ctx context.Context
	R   *bufio.Reader
	W   io.Writer
}

var (
	// ErrInterrupted is returned when Ctx is done while a question waits for its answer.
	ErrInterrupted = errors.New("interrupted")
	// ErrNoAnswer is returned at the end of the input before an answer.
	ErrNoAnswer = errors.New("no answer (end of input); nothing written")
)

// Line asks question and returns the answer without surrounding white space, or def for an empty
// answer. def, when not empty, is shown in brackets.
func (a *Prompter) Line(question, def string) (string, error) {
	if def != "" {
		fmt.Fprintf(a.W, "%s [%s]: ", question, def)
	} else {
		fmt.Fprintf(a.W, "%s: ", question)
	}
	type answer struct {
		s   string
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		s, err := a.R.ReadString('\n')
		ch <- answer{s, err}
	}()
	var s string
	var err error
	select {
	case <-a.Ctx.Done():
		fmt.Fprintln(a.W)
		return "", ErrInterrupted
	case ans := <-ch:
		s, err = ans.s, ans.err
	}
	if err != nil && s == "" {
		fmt.Fprintln(a.W)
		return "", ErrNoAnswer
	}
	if s = strings.TrimSpace(s); s == "" {
		return def, nil
	}
	return s, nil
}

// Yes asks a yes/no question until the answer is y, yes, n, no or empty (def).
func (a *Prompter) Yes(question string, def bool) (bool, error) {
	hint := "Y/n"
	if !def {
		hint = "y/N"
	}
	for {
		s, err := a.Line(question+" ["+hint+"]", "")
		if err != nil {
			return false, err
		}
		switch strings.ToLower(s) {
		case "":
			return def, nil
		case "y", "yes":
			return true, nil
		case "n", "no":
			return false, nil
		}
	}
}
