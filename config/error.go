package config

import (
	"fmt"
	"strings"
)

// Error is every problem found in one configuration file (or the one reason it could not be read).
// Its message has one line per problem:
//
//	FILE:LINE:COL: account "work": key "prot": unknown key, did you mean "port"? (valid: host, port, …)
//
// Use errors.As to recognise it; popfetch exits 78 (EX_CONFIG) for it. Messages never contain a secret.
type Error struct {
	Path   string
	Issues []Issue // sorted by position
	Err    error   // the underlying error when the file could not be read (e.g. fs.ErrNotExist)
}

// Issue is one problem at one place in the file.
type Issue struct {
	Line, Col int    // 1-based; 0 when the problem has no position (the whole file)
	Account   string // "" outside accounts:
	Defaults  bool   // under defaults:
	Key       string // the key concerned, "" if none
	Msg       string
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(is.format(e.Path))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

func (is Issue) format(path string) string {
	var b strings.Builder
	b.WriteString(path)
	if is.Line > 0 {
		fmt.Fprintf(&b, ":%d", is.Line)
		if is.Col > 0 {
			fmt.Fprintf(&b, ":%d", is.Col)
		}
	}
	b.WriteString(": ")
	switch {
	case is.Account != "":
		fmt.Fprintf(&b, "account %q: ", is.Account)
	case is.Defaults:
		b.WriteString("defaults: ")
	}
	if is.Key != "" {
		fmt.Fprintf(&b, "key %q: ", is.Key)
	}
	b.WriteString(is.Msg)
	return b.String()
}
