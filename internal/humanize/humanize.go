// Package humanize formats numbers, durations and errors for people: log lines, progress and
// status output.
package humanize

import (
	"fmt"
	"strings"
	"time"
)

// Bytes prints a size in bytes, KiB, MiB or GiB.
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// Duration prints 60s as "1m", not "1m0s", and 1h as "1h", not "1h0m0s".
func Duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// OneLine makes an error message fit one line: runs of white space, newlines included, become one
// space.
func OneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
