package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/internal/humanize"
	"github.com/popfetch/popfetch/internal/termsafe"
)

// reporter is the one place sync-like commands write for people (stderr) and machines (--json on
// stdout). On a terminal, a progress bar per account and a summary line; elsewhere (cron)
// nothing on success unless -v; errors always, one line each, prefixed with the account.
type reporter struct {
	g        *globalOptions
	progress *mpb.Progress // nil unless stderr is a terminal and not -q
	mu       sync.Mutex
	json     *json.Encoder
}

func newReporter(g *globalOptions) *reporter {
	r := &reporter{g: g}
	if g.stderrTTY && !g.quiet && os.Getenv("POPFETCH_NO_PROGRESS") == "" && hasWidth(g.stderrTerm) {
		// The terminal itself, not the lockedWriter around it: mpb draws nothing (and drops the lines
		// written through it) unless its output is a terminal it can measure.
		r.progress = mpb.New(mpb.WithOutput(g.stderrTerm), mpb.WithWidth(32))
	}
	if g.json {
		r.json = json.NewEncoder(jsonWriter{g.stdout})
	}
	return r
}

// hasWidth reports whether f is a terminal that knows its width (a pseudo-terminal may say 0x0).
func hasWidth(f *os.File) bool {
	if f == nil {
		return false
	}
	w, _, err := term.GetSize(int(f.Fd()))
	return err == nil && w > 0
}

// printf writes one line for people on stderr (above the progress bars when they are drawn).
func (r *reporter) printf(format string, args ...any) {
	line := termsafe.Text(fmt.Sprintf(format, args...))
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	if r.progress != nil {
		r.progress.Write([]byte(line))
		return
	}
	io.WriteString(r.g.stderr, line)
}

// accountProgress draws one account's bar; it implements fetch.Progress.
type accountProgress struct {
	r        *reporter
	name     string
	bar      *mpb.Bar
	messages int
	done     int
	mu       sync.Mutex
}

func (r *reporter) account(name string) *accountProgress {
	return &accountProgress{r: r, name: name}
}

func (p *accountProgress) Planned(messages int, bytes int64) {
	if p.r.progress == nil || messages == 0 {
		return
	}
	p.mu.Lock()
	p.messages = messages
	p.mu.Unlock()
	p.bar = p.r.progress.AddBar(bytes,
		mpb.PrependDecorators(
			decor.Name(p.name, decor.WCSyncSpaceR),
			decor.Any(func(decor.Statistics) string {
				p.mu.Lock()
				defer p.mu.Unlock()
				return fmt.Sprintf("%d/%d msgs", p.done, p.messages)
			}, decor.WCSyncSpace),
		),
		mpb.AppendDecorators(
			decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
			decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace),
			decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace), "done"),
		),
	)
}

func (p *accountProgress) Retrieved(bytes int64) {
	if p.bar != nil {
		p.bar.IncrInt64(bytes)
	}
}

func (p *accountProgress) MessageDone() {
	p.mu.Lock()
	p.done++
	p.mu.Unlock()
}

// finish ends the account's bar: complete on success, aborted otherwise.
func (p *accountProgress) finish(ok bool) {
	if p.bar == nil {
		return
	}
	if ok {
		p.bar.SetTotal(-1, true)
	} else {
		p.bar.Abort(false)
	}
}

// summary is the JSON object printed per account with --json.
type summary struct {
	Account       string    `json:"account"`
	Listed        int       `json:"listed"`
	Fetched       int       `json:"fetched"`
	Skipped       int       `json:"skipped"`
	Deleted       int       `json:"deleted"`
	Bytes         int64     `json:"bytes"`
	DurationMS    int64     `json:"duration_ms"`
	DeferredUntil time.Time `json:"deferred_until,omitzero"`
	New           *int      `json:"new,omitempty"` // check
	Error         string    `json:"error,omitempty"`
	ExitCode      int       `json:"exit_code"`
}

// done reports one account's outcome.
func (r *reporter) done(res fetch.Result, err error, took time.Duration, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.printf("popfetch: %s: %v", res.Account, humanize.OneLine(err))
	} else if r.g.verbose || (r.g.stderrTTY && !r.g.quiet) {
		r.printf("%s", res.Summary(took))
	}
	if r.json != nil {
		s := summary{Account: res.Account, Listed: res.Listed, Fetched: res.Retrieved, Skipped: res.Skipped,
			Deleted: res.Deleted, Bytes: res.Bytes, DurationMS: took.Milliseconds(),
			DeferredUntil: res.DeferredUntil, ExitCode: code}
		if err != nil {
			s.Error = humanize.OneLine(err)
		}
		r.json.Encode(s)
	}
}

// wait lets the progress bars finish drawing.
func (r *reporter) wait() {
	if r.progress != nil {
		// mpb prints lines written through it (printf) at its next render, and renders at shutdown
		// only when a bar changed: lines written after the last bar's final frame (or when no bar
		// was ever drawn: no new mail) would be lost. An empty bar that completes at once forces
		// that render.
		if b, err := r.progress.Add(0, mpb.NopStyle().Build(), mpb.BarRemoveOnComplete()); err == nil {
			b.SetTotal(-1, true)
		}
		r.progress.Wait()
	}
}
