package daemon

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/popfetch/popfetch/internal/termsafe"
)

// SyslogWriter is what the daemon needs of a *syslog.Writer.
type SyslogWriter interface {
	Info(string) error
	Err(string) error
	Close() error
}

// Log is the daemon's log: one line per event, "2026-11-23T15:04:05Z work: 3 fetched …", on
// stderr (where journald picks it up), or to syslog, which stamps the time itself. It is safe for
// concurrent use; as an io.Writer it logs each line written (protocol traces, a password_command's
// stderr).
type Log struct {
	mu    sync.Mutex
	w     io.Writer
	sys   SyslogWriter // nil: w
	now   func() time.Time
	quiet bool // -q: errors only
}

// NewLog returns a log that writes to sys, or to w with a time stamp when sys is nil. quiet (-q)
// drops every line but errors.
func NewLog(w io.Writer, sys SyslogWriter, quiet bool) *Log {
	return &Log{w: w, sys: sys, now: time.Now, quiet: quiet}
}

func (l *Log) line(isErr bool, text string) {
	text = termsafe.String(text) // one line, terminal-safe, on stderr and in syslog alike
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sys != nil {
		if isErr {
			l.sys.Err(text)
		} else {
			l.sys.Info(text)
		}
		return
	}
	fmt.Fprintf(l.w, "%s %s\n", l.now().UTC().Format(time.RFC3339), text)
}

// Infof logs an event (not with -q).
func (l *Log) Infof(format string, args ...any) {
	if !l.quiet {
		l.line(false, fmt.Sprintf(format, args...))
	}
}

// Errorf logs an error (also with -q).
func (l *Log) Errorf(format string, args ...any) { l.line(true, fmt.Sprintf(format, args...)) }

// Write logs each non-empty line of b.
func (l *Log) Write(b []byte) (int, error) {
	for _, s := range strings.Split(string(b), "\n") {
		if s = strings.TrimRight(s, "\r"); s != "" {
			l.line(false, s)
		}
	}
	return len(b), nil
}
