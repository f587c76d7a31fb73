package store

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
)

// StdoutOptions configure a Stdout destination. The zero value is valid: mboxrd framing, no header.
type StdoutOptions struct {
	// Raw writes exactly one message's bytes, unchanged (no framing, no CRLF conversion, no header);
	// a second message is an error.
	Raw bool
	// ReceivedHeader prepends ReceivedHeader(env) to every message (mboxrd mode only).
	ReceivedHeader bool
}

// Stdout writes messages to a stream for scripts (popfetch --stdout): in mboxrd framing (the same
// bytes an Mbox file would get; NewMboxrdReader reads them back), or with Raw exactly one message's
// bytes. Commit flushes the stream (and fsyncs it when it is a regular file), then calls journal.
//
// It is at-least-once: what was written cannot be taken back. A Deliver that fails mid-message
// (the server stream breaking) leaves that partial message in the stream and makes the run fail, so a
// consumer must check popfetch's exit status before trusting the last message; Abort cannot unwrite.
//
// A Stdout is safe for use by several goroutines, but deliveries are serialised.
type Stdout struct {
	opts  StdoutOptions
	w     io.Writer
	bw    *bufio.Writer
	mu    sync.Mutex
	count int // messages delivered (Raw allows one)
	batch batch
}

// ErrRawSecondMessage is returned by a raw Stdout asked to deliver a second message.
var ErrRawSecondMessage = errors.New("store: --raw output takes exactly one message")

// NewStdout returns a destination writing to w (usually os.Stdout).
func NewStdout(w io.Writer, opts StdoutOptions) *Stdout {
	return &Stdout{opts: opts, w: w, bw: bufio.NewWriterSize(w, 64<<10)}
}

// Deliver writes one message. Errors reading body are returned as they are, errors writing w as
// *IOError.
func (s *Stdout) Deliver(ctx context.Context, env Envelope, body io.Reader) (Pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Pending{}, err
	}
	if s.opts.Raw && s.count > 0 {
		return Pending{}, ErrRawSecondMessage
	}
	s.count++
	r := &ctxBodyReader{ctx: ctx, r: body}
	var readErr, writeErr error
	if s.opts.Raw {
		_, readErr, writeErr = copyReadWrite(s.bw, r)
	} else {
		br := bufio.NewReaderSize(r, 32<<10)
		hdr := ""
		if s.opts.ReceivedHeader {
			hdr = ReceivedHeader(env)
		}
		readErr, writeErr = writeMboxrd(s.bw, mboxrdFromLine(peekReturnPath(br), env.Received), hdr, br)
	}
	if readErr != nil {
		return Pending{}, readErr
	}
	if writeErr != nil {
		return Pending{}, ioErr("write", "stdout", writeErr)
	}
	p := Pending{UID: env.UID}
	s.batch = append(s.batch, p)
	return p, nil
}

// Commit flushes the messages to w, fsyncs w if it is a regular file (output redirected to a file),
// then calls journal with the batch.
func (s *Stdout) Commit(ctx context.Context, journal func([]Pending) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.bw.Flush(); err != nil {
		return ioErr("write", "stdout", err)
	}
	if f, ok := s.w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if err := retryEINTR(f.Sync); err != nil && !errors.Is(err, syscall.EINVAL) {
				return ioErr("sync", f.Name(), err)
			}
		}
	}
	return s.batch.journal(journal)
}

// Abort forgets the batch; what was written stays written (at-least-once).
func (s *Stdout) Abort() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batch = nil
	return nil
}

// Close flushes what is buffered (a partial message included, for the consumer to see the failure)
// without committing.
func (s *Stdout) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ioErr("write", "stdout", s.bw.Flush())
}

var _ Destination = (*Stdout)(nil)
