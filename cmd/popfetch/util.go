package main

import (
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/popfetch/popfetch/internal/termsafe"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(termsafe.JSONWriter{W: w})
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// accountError names the account an error belongs to, so that every error line reads
// "popfetch: ACCOUNT: …" whatever the command. Its code is that of Err.
type accountError struct {
	Account string
	Err     error
}

func (e *accountError) Error() string { return e.Account + ": " + e.Err.Error() }
func (e *accountError) Unwrap() error { return e.Err }

// forAccount wraps err (unless nil, or already naming the account) in an *accountError.
func forAccount(name string, err error) error {
	var ae *accountError
	if err == nil || errors.As(err, &ae) || strings.HasPrefix(err.Error(), name+": ") {
		return err
	}
	return &accountError{Account: name, Err: err}
}
