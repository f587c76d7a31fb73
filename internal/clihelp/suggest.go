package clihelp

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// NearestCommand returns the name or alias among cmds closest to name, if it looks like a typo of
// it, else "".
func NearestCommand(cmds []*cli.Command, name string) string {
	var names []string
	for _, c := range cmds {
		names = append(names, c.Names()...)
	}
	return Nearest(name, names)
}

// FlagHint returns "; did you mean --x?" for an unknown flag, or "".
func FlagHint(c *cli.Context, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: ")
	if !ok {
		return ""
	}
	flags := c.App.Flags
	if c.Command != nil && c.Command.Name != "" {
		flags = c.Command.Flags
	}
	var names []string
	for _, f := range flags {
		names = append(names, f.Names()...)
	}
	s := Nearest(strings.TrimLeft(name, "-"), names)
	switch {
	case s == "":
		return ""
	case len(s) == 1:
		return fmt.Sprintf("; did you mean -%s?", s)
	}
	return fmt.Sprintf("; did you mean --%s?", s)
}

// Nearest returns the candidate closest to s, if it is close enough to be a typo (at most a third of
// the longer word, and at least one edit; s of at least three letters), else "".
func Nearest(s string, candidates []string) string {
	if len(s) < 3 {
		return ""
	}
	best, bestD := "", 0
	for _, c := range candidates {
		d := editDistance(s, c)
		limit := max(1, max(len(s), len(c))/3)
		if d <= limit && (best == "" || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b (bytes): insertions, deletions,
// substitutions and transpositions of neighbours each count one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
