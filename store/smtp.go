package store

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"time"

	"github.com/popfetch/popfetch/internal/capool"
)

// SMTPOptions configure an SMTP destination. The zero value is valid.
type SMTPOptions struct {
	// ReceivedHeader prepends ReceivedHeader(env) to every message.
	ReceivedHeader bool
	// Sender is the envelope sender (MAIL FROM). "" means the message's Return-Path if its header has
	// one, else the null sender <>.
	Sender string
	// LocalName is the name popfetch gives in EHLO; "" means "localhost".
	LocalName string
	// Timeout bounds dialling, each command, and each write of the message; 0 means 5 minutes (RFC
	// 5321 §4.5.3.2). The reply to the final dot may take up to twice as long.
	Timeout time.Duration
	// StartTLS upgrades the connection with STARTTLS when the server offers it. Without RequireTLS
	// or TLSConfig this is opportunistic encryption (RFC 7435), as between MTAs: the certificate is
	// not verified, since a local MTA typically offers a self-signed one (Debian's Postfix does).
	StartTLS bool
	// RequireTLS fails every delivery when the server does not offer STARTTLS or its certificate does
	// not verify (against TLSConfig's roots, or the system's). Implies StartTLS.
	RequireTLS bool
	// TLSConfig is used for STARTTLS, and its certificate verification with it (cloned; ServerName
	// defaults to the host of the address).
	TLSConfig *tls.Config
	// CAFile adds its PEM certificates to the system's trust anchors for RequireTLS (ignored with
	// TLSConfig). A file that cannot be read or holds none is an error of kind ErrConfig.
	CAFile string
}

// NewSMTP returns a destination forwarding every message over SMTP to recipient, at addr ("host:port",
// "" meaning localhost:25; "unix:/path" for a socket) — a local MTA, which then delivers it.
//
// SMTP is at-least-once: a message is delivered when the server accepts the final dot with 250; if
// the connection breaks after the dot and before that reply, or popfetch is killed before the state
// records the UIDL, the message is sent again on the next run (the server may have queued it).
// Commit only calls journal.
func NewSMTP(addr, recipient string, opts SMTPOptions) (*SMTP, error) {
	if addr == "" {
		addr = "localhost:25"
	}
	r, err := newRelay("SMTP", addr, recipient, false)
	if err != nil {
		return nil, err
	}
	r.receivedHeader, r.sender, r.localName, r.timeout = opts.ReceivedHeader, opts.Sender, opts.LocalName, opts.Timeout
	r.startTLS, r.reqTLS = opts.StartTLS || opts.RequireTLS, opts.RequireTLS
	switch {
	case opts.TLSConfig != nil:
		r.tlsConfig = opts.TLSConfig.Clone()
	case opts.RequireTLS && opts.CAFile != "":
		pool, err := capool.SystemPlus(opts.CAFile)
		if err != nil {
			return nil, &kindError{ErrConfig, fmt.Errorf("deliver.smtp.ca_file: %w", err)}
		}
		r.tlsConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	case !opts.RequireTLS:
		r.tlsConfig = &tls.Config{InsecureSkipVerify: true} // opportunistic: see SMTPOptions.StartTLS
	}
	r.defaults()
	return &SMTP{r}, nil
}

// SMTP forwards messages to an SMTP server; see NewSMTP. It is safe for use by several goroutines,
// but deliveries are serialised.
type SMTP struct{ r *relay }

// Deliver sends one message in its own transaction (MAIL, RCPT, DATA). Errors are *RelayError,
// except errors reading body, which are returned as they are (the transaction is then abandoned by
// closing the connection, so that the server never sees a truncated message end with a dot).
func (s *SMTP) Deliver(ctx context.Context, env Envelope, body io.Reader) (Pending, error) {
	return s.r.deliver(ctx, env, body)
}

// Commit calls journal with the batch; every message of it was accepted by the server already.
func (s *SMTP) Commit(ctx context.Context, journal func([]Pending) error) error {
	return s.r.commit(journal)
}

// Abort forgets the batch; accepted messages stay accepted (at-least-once).
func (s *SMTP) Abort() error { return s.r.abort() }

// Close ends the session with QUIT.
func (s *SMTP) Close() error { return s.r.close() }

var _ Destination = (*SMTP)(nil)
