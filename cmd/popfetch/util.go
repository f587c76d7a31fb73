package main

import (
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strings"

	"github.com/popfetch/popfetch/internal/termsafe"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(jsonWriter{w})
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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

// jsonWriter passes encoding/json output on with the characters a terminal would obey that the
// encoder leaves raw (DEL, C1 controls, bidi formatting) written as \u escapes: still valid JSON, with
// the same values (termsafe.JSON). The encoder writes each value in one Write.
type jsonWriter struct{ w io.Writer }

func (j jsonWriter) Write(b []byte) (int, error) {
	if _, err := j.w.Write(termsafe.JSON(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}
