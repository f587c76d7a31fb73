package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/store"
)

// This file wires config, fetch and store together (ARCHITECTURE.md §1): the packages do not import each
// other, so the adapters between their types live here.

// tlsModes pairs the profile's tls: values with the client's modes.
var tlsModes = []struct {
	name string
	mode pop3.TLSMode
}{{config.TLSImplicit, pop3.TLSImplicit}, {config.TLSStartTLS, pop3.TLSStartTLS}, {config.TLSNone, pop3.TLSNone}}

// tlsMode is the client's mode for a profile's tls: value (implicit TLS for anything else).
func tlsMode(name string) pop3.TLSMode {
	for _, m := range tlsModes {
		if m.name == name {
			return m.mode
		}
	}
	return pop3.TLSImplicit
}

// tlsModeName is the tls: value for a client's mode: the inverse of tlsMode.
func tlsModeName(mode pop3.TLSMode) string {
	for _, m := range tlsModes {
		if m.mode == mode {
			return m.name
		}
	}
	return config.TLSImplicit
}

// fetchAccount turns a profile into what the engine needs.
func fetchAccount(g *globalOptions, a *config.Account) *fetch.Account {
	o := pop3.Options{CAFile: a.CAFile, Fingerprint: a.Fingerprint, Timeout: a.Timeout}
	if g.trace {
		o.Trace = &prefixWriter{w: g.stderr, prefix: a.Name + ": "}
	}
	var term *os.File
	if f, ok := g.stdin.(*os.File); ok {
		term = f
	}
	return &fetch.Account{
		Name:           a.Name,
		Addr:           net.JoinHostPort(a.Host, strconv.Itoa(a.Port)),
		TLS:            tlsMode(a.TLS),
		Options:        o,
		Username:       a.User,
		Mechanism:      a.Auth,
		AllowPlaintext: a.AllowPlaintextAuth,
		Secret: func(ctx context.Context) (string, error) {
			return a.Secret(ctx, &config.SecretOptions{Terminal: term, Stderr: g.stderr})
		},
		Policy: fetch.Policy{
			Keep: a.Keep, KeepDays: a.KeepDays, FetchAll: a.FetchAll, MaxSize: a.MaxSize,
			OversizeDelete: a.Oversize == config.OversizeDelete, MaxMessages: a.MaxMessages,
			DeleteImported: a.DeleteImported,
		},
	}
}

// openDestination opens the account's destination as its profile says.
func openDestination(a *config.Account) (store.Destination, error) {
	d := a.Deliver
	switch d.Kind {
	case config.DeliverMaildir:
		return store.NewMaildir(d.Path, store.MaildirOptions{ReceivedHeader: a.TraceHeader})
	case config.DeliverMbox:
		return store.NewMbox(d.Path, store.MboxOptions{ReceivedHeader: a.TraceHeader})
	case config.DeliverMDA:
		return store.NewMDA(d.Command, store.MDAOptions{Shell: d.Shell, ReceivedHeader: a.TraceHeader, DropEnv: a.SecretEnv()})
	case config.DeliverLMTP:
		return store.NewLMTP(d.Address, d.Recipient, store.LMTPOptions{ReceivedHeader: a.TraceHeader})
	case config.DeliverSMTP:
		return openSMTP(a) // smtp_tls.go
	case config.DeliverGmail:
		return openGmail(a) // wire_gmail.go
	case config.DeliverIMAP:
		return openIMAP(a) // wire_imap.go
	}
	return nil, fmt.Errorf("account %q: unknown destination %q", a.Name, d.Kind)
}

// destination adapts a store.Destination to fetch.Destination.
type destination struct {
	d    store.Destination
	acct *config.Account
}

func (d destination) Deliver(ctx context.Context, m pop3.MessageInfo, body io.Reader) (fetch.Pending, error) {
	p, err := d.d.Deliver(ctx, store.Envelope{Account: d.acct.Name, User: d.acct.User, Host: d.acct.Host,
		UID: m.UID, Size: m.Size, Received: time.Now()}, body)
	return fetch.Pending(p), smtpTLSHint(d.acct, err) // smtp_tls.go
}

func (d destination) Commit(ctx context.Context, journal func([]fetch.Pending) error) error {
	return d.d.Commit(ctx, func(ps []store.Pending) error {
		fp := make([]fetch.Pending, len(ps))
		for i, p := range ps {
			fp[i] = fetch.Pending(p)
		}
		return journal(fp)
	})
}

func (d destination) Abort() error { return d.d.Abort() }

// state adapts a *store.State to fetch.State.
type state struct{ *store.State }

func (s state) RecordPending(batch []fetch.Pending) error {
	ps := make([]store.Pending, len(batch))
	for i, p := range batch {
		ps[i] = store.Pending(p)
	}
	return s.State.RecordPending(ps)
}

// prefixWriter writes each line with a prefix; it is safe for concurrent use (the traces of several
// accounts share stderr).
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]byte, 0, len(p.prefix)+len(b))
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, p.prefix...)
			out = append(out, b[start:i+1]...)
			start = i + 1
		}
	}
	if start < len(b) {
		out = append(out, p.prefix...)
		out = append(out, b[start:]...)
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
