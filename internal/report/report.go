// Package report is where sync-like commands write for people (stderr) and machines (--json on
// stdout): on a terminal, a progress bar per account and a summary line; elsewhere (cron) nothing on
// success unless -v; errors always, one line each, prefixed with the account.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/internal/humanize"
	"github.com/popfetch/popfetch/internal/termsafe"
)

// Options say where a Reporter writes and how much.
type Options struct {
	Stderr  io.Writer // lines for people
	Term    *os.File  // stderr's terminal, or nil: progress bars are drawn on it
	TTY     bool      // stderr is a terminal: the summary line is printed without -v
	Quiet   bool      // -q: no progress bars
	Verbose bool      // -v: the summary line always
	JSON    bool      // one JSON object per account on Stdout
	Stdout  io.Writer
}

// Reporter is the one place sync-like commands write for people and machines. The zero value is
// not usable: see New.
type Reporter struct {
	o        Options
	progress *mpb.Progress // nil unless stderr is a terminal and not -q
	mu       sync.Mutex
	json     *json.Encoder
}

// New returns a Reporter. Progress bars are drawn only on a terminal that knows its width, without
// -q, and unless POPFETCH_NO_PROGRESS is set.
func New(o Options) *Reporter {
	r := &Reporter{o: o}
	if o.TTY && !o.Quiet && os.Getenv("POPFETCH_NO_PROGRESS") == "" && hasWidth(o.Term) {
		// The terminal itself, not the lockedWriter around it: mpb draws nothing (and drops the lines
		// written through it) unless its output is a terminal it can measure.
		r.progress = mpb.New(mpb.WithOutput(o.Term), mpb.WithWidth(32))
	}
	if o.JSON {
		r.json = json.NewEncoder(termsafe.JSONWriter{W: o.Stdout})
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

// Printf writes one line for people on stderr (above the progress bars when they are drawn).
func (r *Reporter) Printf(format string, args ...any) {
	line := termsafe.Text(fmt.Sprintf(format, args...))
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	if r.progress != nil {
		r.progress.Write([]byte(line))
		return
	}
	io.WriteString(r.o.Stderr, line)
}

// Progress draws one account's bar; it implements fetch.Progress.
type Progress struct {
	r        *Reporter
	name     string
	bar      *mpb.Bar
	messages int
	done     int
	mu       sync.Mutex
}

// Account returns the progress of the account named name.
func (r *Reporter) Account(name string) *Progress {
	return &Progress{r: r, name: name}
}

func (p *Progress) Planned(messages int, bytes int64) {
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

func (p *Progress) Retrieved(bytes int64) {
	if p.bar != nil {
		p.bar.IncrInt64(bytes)
	}
}

func (p *Progress) MessageDone() {
	p.mu.Lock()
	p.done++
	p.mu.Unlock()
}

// Finish ends the account's bar: complete on success, aborted otherwise.
func (p *Progress) Finish(ok bool) {
	if p.bar == nil {
		return
	}
	if ok {
		p.bar.SetTotal(-1, true)
	} else {
		p.bar.Abort(false)
	}
}

// Summary is the JSON object printed per account with --json.
type Summary struct {
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

// Done reports one account's outcome.
func (r *Reporter) Done(res fetch.Result, err error, took time.Duration, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.Printf("popfetch: %s: %v", res.Account, humanize.OneLine(err))
	} else if r.o.Verbose || (r.o.TTY && !r.o.Quiet) {
		r.Printf("%s", res.Summary(took))
	}
	if r.json != nil {
		s := Summary{Account: res.Account, Listed: res.Listed, Fetched: res.Retrieved, Skipped: res.Skipped,
			Deleted: res.Deleted, Bytes: res.Bytes, DurationMS: took.Milliseconds(),
			DeferredUntil: res.DeferredUntil, ExitCode: code}
		if err != nil {
			s.Error = humanize.OneLine(err)
		}
		r.json.Encode(s)
	}
}

// Wait lets the progress bars finish drawing.
func (r *Reporter) Wait() {
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

// Check reports the outcome of `popfetch check` for one account: how many new messages it has.
func (rep *Reporter) Check(res fetch.Result, err error, took time.Duration, code int) {
	n := 0
	if res.Plan != nil {
		n = len(res.Plan.Retrieve)
	}
	if err != nil {
		rep.Done(res, err, took, code)
		return
	}
	if rep.json != nil {
		rep.mu.Lock()
		rep.json.Encode(Summary{Account: res.Account, Listed: res.Listed, New: &n, DurationMS: took.Milliseconds(), ExitCode: code})
		rep.mu.Unlock()
	}
	if !rep.o.Quiet && rep.json == nil {
		// check's answer is its output: print it (on stdout, it is what the user asked for).
		fmt.Fprintf(rep.o.Stdout, "%s: %d new message(s)\n", res.Account, n)
	}
}

// Plan prints a dry run's plan.
func Plan(w io.Writer, res fetch.Result) {
	if res.Plan == nil {
		return
	}
	for _, it := range res.Plan.Retrieve {
		action := "retrieve"
		if it.Delete {
			action = "retrieve, delete"
		}
		fmt.Fprintf(w, "%s: %-16s %5d  %-24s %9d  %s\n", res.Account, action, it.Number, termsafe.String(it.UID), it.Size, it.Reason)
	}
	for _, it := range res.Plan.Delete {
		fmt.Fprintf(w, "%s: %-16s %5d  %-24s %9d  %s\n", res.Account, "delete", it.Number, termsafe.String(it.UID), it.Size, it.Reason)
	}
	for _, it := range res.Plan.Skip {
		fmt.Fprintf(w, "%s: %-16s %5d  %-24s %9d  %s\n", res.Account, "leave", it.Number, termsafe.String(it.UID), it.Size, it.Reason)
	}
}

// ServerInfo prints what `popfetch serverinfo` found out about an account's server.
func ServerInfo(w io.Writer, account, address, mode string, info pop3.ServerInfo) {
	// Greeting, certificate names and capabilities are the server's words: each is printed through
	// termsafe.String (one line, nothing a terminal would obey).
	esc := termsafe.String
	fmt.Fprintf(w, "Account:      %s\nAddress:      %s (%s)\nGreeting:     %s\n", account, address, mode, esc(info.Greeting))
	if info.TLS != nil {
		t := info.TLS
		fmt.Fprintf(w, "TLS:          %s, %s\nSubject:      %s\nIssuer:       %s\n", t.Version, t.Cipher, esc(t.Subject), esc(t.Issuer))
		if len(t.DNSNames) > 0 {
			names := make([]string, len(t.DNSNames))
			for i, n := range t.DNSNames {
				names[i] = esc(n)
			}
			fmt.Fprintf(w, "Names:        %s\n", strings.Join(names, ", "))
		}
		fmt.Fprintf(w, "Valid:        %s to %s\nFingerprint:  %s\n", t.NotBefore.Format(time.RFC3339), t.NotAfter.Format(time.RFC3339), t.Fingerprint)
	} else {
		fmt.Fprintf(w, "TLS:          none\n")
	}
	if info.Capabilities == nil {
		fmt.Fprintf(w, "Capabilities: (the server does not answer CAPA)\n")
	} else {
		fmt.Fprintf(w, "Capabilities:\n")
		for _, k := range slices.Sorted(maps.Keys(info.Capabilities)) {
			fmt.Fprintf(w, "  %s\n", esc(strings.TrimSpace(k+" "+strings.Join(info.Capabilities[k], " "))))
		}
	}
}
