package store

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/mail"
	"os"
	"strings"
	"time"
)

// MarkerHeader is the header popfetch adds at the top of every message it appends over IMAP:
//
//	X-Popfetch-ID: <account>/<32 hex digits>
//
// The hex digits are the first 128 bits of SHA-256 over the UIDL and 16 random octets drawn for this
// delivery attempt, so a copy left by an earlier attempt (or by a reused UIDL) never matches a new
// one. The state records the value as the pending delivery's Ref before the APPEND; after a crash,
// `UID SEARCH HEADER X-Popfetch-ID <value>` in the target mailbox tells whether it arrived.
const MarkerHeader = "X-Popfetch-ID"

// newMarker returns a fresh marker value for a message of account with UIDL uid.
func newMarker(account, uid string) (string, error) {
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", err
	}
	h := sha256.New()
	io.WriteString(h, uid)
	h.Write([]byte{0})
	h.Write(salt[:])
	return cleanHeaderValue(account) + "/" + hex.EncodeToString(h.Sum(nil)[:16]), nil
}

func cleanHeaderValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// crlfWriter turns every bare LF into CRLF (RFC 9051 §4.3 and RFC 5322 §2.1: a message is lines
// ending in CRLF) and changes nothing else: CRLF stays CRLF, a bare CR stays, NUL and 8-bit octets
// stay, and a message without a final line ending gets none. It counts what it writes.
type crlfWriter struct {
	w      *bufio.Writer
	n      int64
	lastCR bool
	err    error // the first write error (of the file, not of the message's source)
}

func (c *crlfWriter) Write(b []byte) (int, error) {
	n, err := c.write(b)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

func (c *crlfWriter) write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		i := bytes.IndexByte(b[done:], '\n')
		if i < 0 {
			k, err := c.w.Write(b[done:])
			c.n += int64(k)
			if k > 0 {
				c.lastCR = b[done+k-1] == '\r'
			}
			return done + k, err
		}
		prevCR := c.lastCR
		if i > 0 {
			prevCR = b[done+i-1] == '\r'
		}
		k, err := c.w.Write(b[done : done+i])
		c.n += int64(k)
		if err != nil {
			return done + k, err
		}
		if !prevCR {
			if err := c.w.WriteByte('\r'); err != nil {
				return done + i, err
			}
			c.n++
		}
		if err := c.w.WriteByte('\n'); err != nil {
			return done + i, err
		}
		c.n++
		c.lastCR = false
		done += i + 1
	}
	return done, nil
}

// dateSniffer watches the header section of a message as it streams by and keeps its Date: field
// (unfolded, at most maxDateField octets), for internal_date: header.
type dateSniffer struct {
	line   []byte // the current header line, bounded
	field  []byte // the Date: field being collected (with continuation lines)
	inDate bool
	done   bool // the header section ended
	date   string
}

const maxDateField = 998 // RFC 5322 §2.1.1

func (d *dateSniffer) Write(b []byte) (int, error) {
	for _, c := range b {
		if d.done {
			break
		}
		if c != '\n' {
			if len(d.line) < maxDateField {
				d.line = append(d.line, c)
			}
			continue
		}
		d.endLine(bytes.TrimRight(d.line, "\r"))
		d.line = d.line[:0]
	}
	return len(b), nil
}

func (d *dateSniffer) endLine(l []byte) {
	if len(l) == 0 {
		d.finishField()
		d.done = true
		return
	}
	if l[0] == ' ' || l[0] == '\t' {
		if d.inDate && len(d.field) < maxDateField {
			d.field = append(d.field, l...)
		}
		return
	}
	d.finishField()
	if len(l) >= 5 && strings.EqualFold(string(l[:5]), "date:") && d.date == "" {
		d.inDate = true
		d.field = append(d.field[:0], l[5:]...)
	}
}

func (d *dateSniffer) finishField() {
	if d.inDate {
		d.date = strings.TrimSpace(string(d.field))
		d.inDate = false
	}
}

// Date returns the parsed Date: header, or false when there is none or it does not parse.
func (d *dateSniffer) Date() (time.Time, bool) {
	if !d.done {
		d.endLine(nil) // a message that is all header
	}
	if d.date == "" {
		return time.Time{}, false
	}
	t, err := mail.ParseDate(d.date)
	return t, err == nil
}

// spool is the private file a batch of IMAP messages waits in between Deliver and Commit. It is
// created 0600 with O_EXCL in the state directory and unlinked at once, so nothing is left behind
// by a crash; the messages are sections of it.
type spool struct {
	f   *os.File
	off int64
	bw  *bufio.Writer // reused: no garbage per message
	buf []byte        // copy buffer, reused
}

func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, ".popfetch-imap-spool-*") // O_RDWR|O_CREATE|O_EXCL, 0600
	if err != nil {
		return nil, ioErr("create", dir, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, ioErr("remove", f.Name(), err)
	}
	return &spool{f: f, bw: bufio.NewWriterSize(f, 64<<10), buf: make([]byte, 32<<10)}, nil
}

// add writes one message (header lines first, then body with bare LFs made CRLF) at the end of the
// spool and returns its offset and size. On failure the spool is cut back to where it was.
func (s *spool) add(headers string, body io.Reader, sniff *dateSniffer) (off, size int64, err error) {
	off = s.off
	if _, err := s.f.Seek(off, io.SeekStart); err != nil {
		return 0, 0, ioErr("seek", s.f.Name(), err)
	}
	bw := s.bw
	bw.Reset(s.f)
	cw := &crlfWriter{w: bw}
	fail := func(e error) (int64, int64, error) {
		s.f.Truncate(off)
		return 0, 0, e
	}
	if _, err := cw.Write([]byte(headers)); err != nil {
		return fail(ioErr("write", s.f.Name(), err))
	}
	var dst io.Writer = cw
	if sniff != nil {
		dst = io.MultiWriter(cw, sniff)
	}
	if _, err := io.CopyBuffer(dst, readerOnly{body}, s.buf); err != nil {
		if cw.err != nil {
			return fail(ioErr("write", s.f.Name(), cw.err))
		}
		return fail(err) // reading from the server failed: not a local I/O error
	}
	if err := bw.Flush(); err != nil {
		return fail(ioErr("write", s.f.Name(), err))
	}
	s.off = off + cw.n
	return off, cw.n, nil
}

// copyTo writes one spooled message to w.
func (s *spool) copyTo(w io.Writer, off, size int64) error {
	_, err := io.CopyBuffer(w, readerOnly{io.NewSectionReader(s.f, off, size)}, s.buf)
	return err
}

// reset forgets every message of the spool.
func (s *spool) reset() error {
	s.off = 0
	return s.f.Truncate(0)
}

func (s *spool) close() error { return s.f.Close() }

// readerOnly hides a WriterTo, so that io.Copy goes through the writers above.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(b []byte) (int, error) { return r.r.Read(b) }
