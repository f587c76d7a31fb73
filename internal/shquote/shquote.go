// Package shquote quotes strings for a POSIX shell (sh, dash, bash): for the commands popfetch
// shows the user and for the values it substitutes into an MDA's `sh -c` command line.
package shquote

import "strings"

// Quote returns s as one word of a POSIX shell command line that the shell reads back as exactly s.
// A non-empty s made only of letters, digits and - _ . / : @ % + , (which no shell expands, splits
// or treats as syntax anywhere in a command) is returned as it is; anything else is put in single
// quotes, in which the shell takes every byte literally (newlines and $ included), with each ' written
// as '\” (end the quotes, an escaped quote, quote again). The empty string is ”.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !safe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes each of argv with Quote and joins them with spaces: a command line that runs argv.
func Join(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = Quote(a)
	}
	return strings.Join(out, " ")
}

// safe reports whether r needs no quoting. '=' is not safe (a first word with it is a variable
// assignment), nor '~' (tilde expansion), nor anything else.
func safe(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+,", r)
}
