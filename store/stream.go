package store

import (
	"context"
	"io"
)

// byteCounter counts the bytes written through it.
type byteCounter struct {
	w io.Writer
	n int64
}

func (c *byteCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ctxBodyReader fails reads once ctx is done, so a cancelled run stops a long copy between reads.
type ctxBodyReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxBodyReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// lineFilter is a streaming io.Writer that turns CRLF into LF (when crlf is set) and, when quote is
// set, applies mboxrd quoting: a line matching ^>*From gets one more '>'. It holds no more than a
// pending CR and a few counters between writes, so lines of any length stream through. Finish writes
// whatever is held back; it does not add a newline.
type lineFilter struct {
	w     io.Writer
	crlf  bool
	quote bool

	cr       bool // a CR is held back, waiting to see whether LF follows
	inPrefix bool // at the start of a line, matching >*From
	gt       int  // '>' seen in the prefix
	fromN    int  // bytes of "From " matched after the '>'s
	last     int  // last content byte written (after CRLF conversion), -1 if none
	buf      []byte
	err      error
}

func newLineFilter(w io.Writer, crlf, quote bool) *lineFilter {
	return &lineFilter{w: w, crlf: crlf, quote: quote, inPrefix: true, last: -1, buf: make([]byte, 0, 32<<10)}
}

func (f *lineFilter) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	for _, c := range p {
		if f.crlf {
			if f.cr {
				f.cr = false
				if c == '\n' {
					f.content('\n')
					continue
				}
				f.content('\r')
			}
			if c == '\r' {
				f.cr = true
				continue
			}
		}
		f.content(c)
		if len(f.buf) >= cap(f.buf)-8 {
			if err := f.flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := f.flush(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Finish writes the held-back bytes (a lone CR at the very end, an unfinished quoting prefix).
func (f *lineFilter) Finish() error {
	if f.err != nil {
		return f.err
	}
	if f.cr {
		f.cr = false
		f.content('\r')
	}
	if f.quote && f.inPrefix {
		f.flushPrefix()
	}
	return f.flush()
}

// EndsWithNewline reports whether the last content byte was LF (false for an empty message).
func (f *lineFilter) EndsWithNewline() bool { return f.last == '\n' }

func (f *lineFilter) content(c byte) {
	f.last = int(c)
	if !f.quote {
		f.buf = append(f.buf, c)
		return
	}
	if f.inPrefix {
		const from = "From "
		if f.fromN == 0 && c == '>' {
			f.gt++
			return
		}
		if c == from[f.fromN] {
			f.fromN++
			if f.fromN == len(from) {
				f.buf = append(f.buf, '>')
				f.fromN = len(from)
				f.flushPrefix()
			}
			return
		}
		f.flushPrefix()
	}
	f.buf = append(f.buf, c)
	if c == '\n' {
		f.inPrefix = true
	}
}

// flushPrefix writes the '>'s and the part of "From " matched so far, and leaves the prefix state.
func (f *lineFilter) flushPrefix() {
	for ; f.gt > 0; f.gt-- {
		f.buf = append(f.buf, '>')
		if len(f.buf) == cap(f.buf) {
			_ = f.flush() // an error is kept in f.err and reported by the next Write or Finish
		}
	}
	f.buf = append(f.buf, "From "[:f.fromN]...)
	f.fromN = 0
	f.inPrefix = false
}

func (f *lineFilter) flush() error {
	if f.err != nil {
		f.buf = f.buf[:0]
		return f.err
	}
	if len(f.buf) > 0 {
		_, f.err = f.w.Write(f.buf)
		f.buf = f.buf[:0]
	}
	return f.err
}

// copyReadWrite copies body to w and tells read errors from write errors.
func copyReadWrite(w io.Writer, body io.Reader) (n int64, readErr, writeErr error) {
	buf := make([]byte, 32<<10)
	for {
		m, err := body.Read(buf)
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return n, nil, werr
			}
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
}

// batch holds the pending entries of the messages delivered since the last Commit or Abort, for the
// destinations whose delivery is final at Deliver (MDA, LMTP/SMTP, stdout): their Commit only
// journals the batch. The destination's mutex guards it.
type batch []Pending

// journal passes a copy of the batch to journal (if not nil) and empties it; an empty batch is not
// journaled. On an error the batch stays, as nothing was recorded.
func (b *batch) journal(journal func([]Pending) error) error {
	if len(*b) == 0 {
		return nil
	}
	if journal != nil {
		if err := journal(append([]Pending(nil), *b...)); err != nil {
			return err
		}
	}
	*b = nil
	return nil
}
