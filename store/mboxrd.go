package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The mboxrd format (as described in https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml
// and RFC 4155 for the mbox family): every message starts with a separator line "From SENDER DATE"
// where DATE is in asctime(3) form; every message line that matches ^>*From gets one more '>' (so the
// quoting can be undone exactly, unlike mboxo, which is what github.com/emersion/go-mbox v1.0.3 writes);
// every message is followed by one newline.
//
// popfetch writes exactly one newline after a message's bytes and its reader removes exactly one before
// each separator, so any message, even one that lacks a final newline, comes back byte for byte. A
// message that ends with a newline (every message from a POP3 server does) is thus followed by the usual
// blank line.

// mboxrdHeaderPeek bounds how much of a message's header is examined for Return-Path.
const mboxrdHeaderPeek = 16 << 10

// mboxrdMaxSeparator bounds the length of a separator line the reader accepts.
const mboxrdMaxSeparator = 64 << 10

// mboxrdFromLine returns the separator line (with its LF) for a message from sender received at t.
func mboxrdFromLine(sender string, t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	return "From " + sender + " " + t.UTC().Format(time.ANSIC) + "\n"
}

// peekReturnPath looks for a Return-Path header within the first mboxrdHeaderPeek bytes of br's message
// header, without consuming anything. It returns the address inside the angle brackets, or "" when
// there is none, it is the null path "<>", or it is not usable in a separator or an envelope (spaces,
// controls, non-ASCII).
func peekReturnPath(br *bufio.Reader) string {
	head, _ := br.Peek(mboxrdHeaderPeek) // a short message returns what there is, with an error
	var value string
	found := false
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			break // header cut by the peek bound: an unfinished line is not trusted
		}
		line := bytes.TrimSuffix(head[:i], []byte("\r"))
		head = head[i+1:]
		if len(line) == 0 {
			break // end of header
		}
		if line[0] == ' ' || line[0] == '\t' {
			if found {
				value += " " + string(bytes.TrimSpace(line))
			}
			continue
		}
		if found {
			break
		}
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(name)), "Return-Path") {
			found = true
			value = string(bytes.TrimSpace(rest))
		}
	}
	if !found {
		return ""
	}
	start, end := strings.IndexByte(value, '<'), strings.LastIndexByte(value, '>')
	if start < 0 || end < start {
		return ""
	}
	addr := value[start+1 : end]
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return ""
		}
	}
	return addr
}

// writeMboxrd writes one message in mboxrd framing to w: the separator line, the optional header line
// hdr, the message read from br with CRLF turned into LF and From-quoting, and the closing newline. It
// returns the error of reading br (readErr) and of writing w (writeErr) separately.
func writeMboxrd(w io.Writer, sep, hdr string, body io.Reader) (readErr, writeErr error) {
	if _, err := io.WriteString(w, sep+hdr); err != nil {
		return nil, err
	}
	f := newLineFilter(w, true, true)
	_, readErr, writeErr = copyReadWrite(f, body)
	if readErr != nil || writeErr != nil {
		return readErr, writeErr
	}
	if err := f.Finish(); err != nil {
		return nil, err
	}
	_, err := io.WriteString(w, "\n")
	return nil, err
}

// ErrNotMboxrd is returned by MboxrdReader when its input does not start with a "From " separator line.
var ErrNotMboxrd = errors.New("mboxrd: input does not start with a From line")

// MboxrdReader reads the messages of an mboxrd stream one at a time, streaming each, and undoes the
// quoting: it is the inverse of what Mbox and Stdout write. Lines longer than its 64 KiB buffer whose
// first 64 KiB are all '>' are not unquoted.
type MboxrdReader struct {
	br       *bufio.Reader
	started  bool
	eof      bool
	from     string // separator line of the current message, without "From " and LF
	nextFrom string
	haveNext bool
	cur      *mboxrdBody
}

// NewMboxrdReader returns a reader of the mboxrd stream r.
func NewMboxrdReader(r io.Reader) *MboxrdReader {
	return &MboxrdReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next message's content. The reader is valid until the next call of Next. It returns
// io.EOF when there are no more messages and ErrNotMboxrd when the stream does not start with a
// separator.
func (r *MboxrdReader) Next() (io.Reader, error) {
	if r.cur != nil {
		if _, err := io.Copy(io.Discard, r.cur); err != nil {
			return nil, err
		}
		r.cur = nil
	}
	if !r.started {
		r.started = true
		line, err := r.readLine()
		if len(line) == 0 && err == io.EOF {
			r.eof = true
			return nil, io.EOF
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if !bytes.HasPrefix(line, []byte("From ")) {
			return nil, ErrNotMboxrd
		}
		r.nextFrom, r.haveNext = string(bytes.TrimSuffix(line, []byte("\n"))), true
		r.eof = err == io.EOF
	}
	if !r.haveNext {
		return nil, io.EOF
	}
	r.from, r.nextFrom, r.haveNext = strings.TrimPrefix(r.nextFrom, "From "), "", false
	r.cur = &mboxrdBody{r: r, bol: true, done: r.eof}
	return r.cur, nil
}

// From returns the current message's separator line after "From " (sender and date).
func (r *MboxrdReader) From() string { return r.from }

// readLine reads one whole line (with its LF, if any) of at most mboxrdMaxSeparator bytes.
func (r *MboxrdReader) readLine() ([]byte, error) {
	var line []byte
	for {
		part, err := r.br.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > mboxrdMaxSeparator {
			return nil, fmt.Errorf("mboxrd: separator line longer than %d bytes", mboxrdMaxSeparator)
		}
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

type mboxrdBody struct {
	r      *MboxrdReader
	bol    bool // the next byte starts a line
	heldNL bool // the LF ending the previous line is held back: the one before a separator is dropped
	done   bool
	pend   []byte
	buf    []byte
}

func (b *mboxrdBody) Read(p []byte) (int, error) {
	for len(b.pend) == 0 {
		if b.done {
			return 0, io.EOF
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.pend)
	b.pend = b.pend[n:]
	return n, nil
}

func (b *mboxrdBody) fill() error {
	r := b.r
	line, err := r.br.ReadSlice('\n')
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return err
	}
	if err == io.EOF {
		r.eof = true
		b.done = true
	}
	if b.bol && bytes.HasPrefix(line, []byte("From ")) {
		sep := append([]byte(nil), line...)
		if err == bufio.ErrBufferFull {
			rest, err2 := r.readLine()
			if err2 != nil && err2 != io.EOF {
				return err2
			}
			if err2 == io.EOF {
				r.eof = true
			}
			sep = append(sep, rest...)
		}
		r.nextFrom, r.haveNext = string(bytes.TrimSuffix(sep, []byte("\n"))), true
		b.done = true
		b.heldNL = false
		return nil
	}
	b.pend = b.buf[:0]
	if len(line) == 0 {
		return nil // EOF: a held LF is dropped
	}
	if b.heldNL {
		b.pend = append(b.pend, '\n')
		b.heldNL = false
	}
	if b.bol {
		if i := bytes.IndexFunc(line, func(c rune) bool { return c != '>' }); i > 0 && bytes.HasPrefix(line[i:], []byte("From ")) {
			line = line[1:]
		}
	}
	if line[len(line)-1] == '\n' {
		b.pend = append(b.pend, line[:len(line)-1]...)
		b.heldNL = true
		b.bol = true
	} else {
		b.pend = append(b.pend, line...)
		b.bol = false
	}
	b.buf = b.pend[:0]
	return nil
}

// SplitMboxrd reads a whole mboxrd stream into memory, one byte slice per message. For tests and small
// inputs; use MboxrdReader to stream.
func SplitMboxrd(r io.Reader) ([][]byte, error) {
	mr := NewMboxrdReader(r)
	var msgs [][]byte
	for {
		m, err := mr.Next()
		if err == io.EOF {
			return msgs, nil
		}
		if err != nil {
			return msgs, err
		}
		b, err := io.ReadAll(m)
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, b)
	}
}
