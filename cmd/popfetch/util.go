package main

import (
	"encoding/json"
	"errors"
	"io"
	"sort"

	"github.com/popfetch/popfetch/fetch/pop3"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
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

func isRefusal(err error) bool {
	var perr *pop3.Error
	return errors.As(err, &perr)
}
