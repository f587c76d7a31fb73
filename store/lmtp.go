package store

import (
	"context"
	"io"
	"time"
)

// LMTPOptions configure an LMTP destination. The zero value is valid.
type LMTPOptions struct {
	// ReceivedHeader prepends ReceivedHeader(env) to every message.
	ReceivedHeader bool
	// Sender is the envelope sender (MAIL FROM). "" means the message's Return-Path if its header has
	// one, else the null sender <>.
	Sender string
	// LocalName is the name popfetch gives in LHLO; "" means "localhost".
	LocalName string
	// Timeout bounds dialling, each command, and each write of the message; 0 means 5 minutes.
	Timeout time.Duration
}

// NewLMTP returns a destination delivering every message over LMTP (RFC 2033) to recipient, at addr
// ("unix:/path" or "host:port"), for example Dovecot's dovecot-lmtpd. The server's reply for the
// recipient after the final dot decides: 2xx delivered, 4xx temporary, 5xx permanent.
//
// LMTP is at-least-once: the server cannot be asked later whether it delivered a message, so if the
// connection breaks between the final dot and the recipient's reply, or popfetch is killed before
// the state records the UIDL, the message is delivered again on the next run. Commit only calls
// journal.
func NewLMTP(addr, recipient string, opts LMTPOptions) (*LMTP, error) {
	r, err := newRelay("LMTP", addr, recipient, true)
	if err != nil {
		return nil, err
	}
	r.receivedHeader, r.sender, r.localName, r.timeout = opts.ReceivedHeader, opts.Sender, opts.LocalName, opts.Timeout
	r.defaults()
	return &LMTP{r}, nil
}

// LMTP delivers messages to an LMTP server; see NewLMTP. It is safe for use by several goroutines,
// but deliveries are serialised.
type LMTP struct{ r *relay }

// Deliver sends one message in its own transaction (LMTP MAIL, RCPT, DATA). Errors are *RelayError,
// except errors reading body, which are returned as they are (the transaction is then abandoned by
// closing the connection, so that the server never sees a truncated message end with a dot).
func (l *LMTP) Deliver(ctx context.Context, env Envelope, body io.Reader) (Pending, error) {
	return l.r.deliver(ctx, env, body)
}

// Commit calls journal with the batch; every message of it was delivered already.
func (l *LMTP) Commit(ctx context.Context, journal func([]Pending) error) error {
	return l.r.commit(journal)
}

// Abort forgets the batch; delivered messages stay delivered (at-least-once).
func (l *LMTP) Abort() error { return l.r.abort() }

// Close ends the session with QUIT.
func (l *LMTP) Close() error { return l.r.close() }

var _ Destination = (*LMTP)(nil)
