package store

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MboxOptions configure an Mbox destination. The zero value is valid.
type MboxOptions struct {
	// ReceivedHeader prepends ReceivedHeader(env) to every message, as mpop does. The configuration
	// layer turns it on by default for mbox files; the zero value leaves messages as they came.
	ReceivedHeader bool
	// LockTimeout bounds how long NewMbox waits for the dotlock and the fcntl lock held by another
	// writer (a mail reader, an MDA); 0 means 30 seconds, a negative value means try once.
	LockTimeout time.Duration
	// DotlockStale is the age after which another program's dotlock is considered abandoned and
	// removed; 0 means 5 minutes, the convention of mail readers and procmail.
	DotlockStale time.Duration

	judgedStale func() // test hook: called when a dotlock was judged stale, before it is stolen
}

// Mbox appends messages to a file in mboxrd format (see mboxrd.go), locked against other writers for
// as long as it is open, durably and, together with the State, exactly once:
//
//	Deliver (each message of a batch) -> an unlinked spool file next to the mbox; the mbox is untouched
//	Commit: journal(pending)          -> the engine records UID -> "mbox:OFFSET:LENGTH:SHA256" durably
//	        append the spool to the mbox (copy_file_range where available), fsync the mbox
//
// then the engine marks the batch delivered in the state and sends DELE. A message reaches the mbox
// only after its pending record is durable. After a crash, Resolve checks each pending record against
// the bytes at its offset: where they match (same length and checksum), the message is in the mbox
// and is not fetched again; otherwise it is fetched again, and a half-appended batch at the end of the
// file is cut off. Hence no loss and no duplicate, with one exception that errs on the side of a
// duplicate: if a mail reader rewrote the mbox (expunge) between the crash and the next run, the
// offsets no longer match and the batch is fetched again (the half-appended tail is then left alone,
// rather than risk cutting off somebody else's mail).
//
// The journal thus runs before the batch is durable, not after as for a maildir: the spool is not
// fsync'd, because a batch that is journaled but not (durably) appended is simply not found by
// Resolve and is fetched again.
//
// A failed Deliver (the server stream breaking, a full disk) leaves the spool as it was; a failed
// append truncates the mbox back to its length before the batch, so the file never holds half a
// message; Abort drops the spooled batch. Close releases the locks and drops an uncommitted batch.
//
// Locking, as mail readers expect (mutt, procmail, Dovecot's mbox_write_locks = dotlock fcntl): a
// PATH.lock dotlock (O_CREAT|O_EXCL, holding our pid; another program's lock older than DotlockStale,
// or naming the pid of a process that no longer exists, is removed), then an fcntl write lock on the
// whole file (open file description locks on Linux, which exclude classic fcntl locks of other
// processes and other descriptors of this one). Both are held until Close; the dotlock's time stamp
// is refreshed as messages are delivered so that a long run's lock never looks stale. Where the directory does not let us create a dotlock (EACCES, EPERM, EROFS: /var/mail on many
// systems), the fcntl lock alone is used.
//
// An Mbox is safe for use by several goroutines, but deliveries are serialised.
type Mbox struct {
	path string
	opts MboxOptions

	mu       sync.Mutex
	f        *os.File // the mbox, fcntl-locked; nil once closed
	dotlock  string   // the dotlock we hold, "" if none
	lockedAt time.Time
	size     int64  // the mbox's length: everything up to here is committed (or someone else's)
	pad      string // "\n" when the file does not end with a newline (a foreign, broken tail)

	spool    *os.File // the batch, already in mboxrd framing
	spoolLen int64
	batch    []Pending

	step     func(point string) // test hook: the crash tests kill the process at each point
	stepHalf bool               // test hook: append in two halves, with a step between
}

const (
	defaultMboxLockTimeout = 30 * time.Second
	defaultDotlockStale    = 5 * time.Minute
)

// MboxLockedError reports that another program holds the mbox's dotlock or fcntl lock beyond
// MboxOptions.LockTimeout. It matches ErrTemporary.
type MboxLockedError struct {
	Path string // the mbox
	Lock string // "dotlock" or "fcntl"
}

func (e *MboxLockedError) Error() string {
	return fmt.Sprintf("store: mbox %s is locked by another program (%s)", e.Path, e.Lock)
}

// Temporary reports true: the lock will be released.
func (e *MboxLockedError) Temporary() bool { return true }

// Is makes every *MboxLockedError match ErrTemporary.
func (e *MboxLockedError) Is(target error) bool { return target == ErrTemporary }

// NewMbox opens (creating it with mode 0600, and its directory with mode 0700, if missing) and locks
// the mbox file at path. It fails with *MboxLockedError when another writer keeps it locked for
// longer than opts.LockTimeout, and with *IOError for local I/O failures.
func NewMbox(path string, opts MboxOptions) (*Mbox, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = defaultMboxLockTimeout
	}
	if opts.DotlockStale <= 0 {
		opts.DotlockStale = defaultDotlockStale
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, ioErr("mkdir", dir, err)
	}
	m := &Mbox{path: path, opts: opts, step: func(string) {}}
	deadline := time.Now().Add(opts.LockTimeout)
	if err := m.takeDotlock(deadline); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			m.release()
		}
	}()
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, ioErr("open", path, err)
	}
	m.f = f
	if fi, err := f.Stat(); err != nil {
		return nil, ioErr("stat", path, err)
	} else if !fi.Mode().IsRegular() {
		return nil, ioErr("open", path, errors.New("not a regular file"))
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if err := syncDir(dir); err != nil { // the new, empty mbox survives a power cut
			return nil, ioErr("sync", dir, err)
		}
	}
	if err := lockWait(deadline, func() (bool, error) { return mboxFcntlLock(f) }); err != nil {
		if errors.Is(err, errLockBusy) {
			return nil, &MboxLockedError{Path: path, Lock: "fcntl"}
		}
		return nil, ioErr("lock", path, err)
	}
	if err := m.readTail(); err != nil {
		return nil, err
	}
	// The spool lives next to the mbox (same filesystem: the append is a copy_file_range), or in
	// the temporary directory where we may not create files (/var/mail).
	spool, err := os.CreateTemp(dir, ".popfetch-spool-*")
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		spool, err = os.CreateTemp("", "popfetch-spool-*")
	}
	if err != nil {
		return nil, ioErr("create", dir, err)
	}
	_ = os.Remove(spool.Name()) // unlinked: a crash leaves nothing behind
	m.spool = spool
	ok = true
	return m, nil
}

// Path returns the mbox file's path.
func (m *Mbox) Path() string { return m.path }

// readTail sets size and pad from the file as it is now.
func (m *Mbox) readTail() error {
	fi, err := m.f.Stat()
	if err != nil {
		return ioErr("stat", m.path, err)
	}
	m.size, m.pad = fi.Size(), ""
	if m.size > 0 {
		var b [1]byte
		if _, err := m.f.ReadAt(b[:], m.size-1); err != nil {
			return ioErr("read", m.path, err)
		}
		if b[0] != '\n' {
			m.pad = "\n"
		}
	}
	return nil
}

var errLockBusy = errors.New("lock busy")

// lockWait calls try until it reports success, an error, or the deadline passes (errLockBusy). It
// polls with a growing interval: the holders are other programs, which cannot notify us.
func lockWait(deadline time.Time, try func() (bool, error)) error {
	wait := 20 * time.Millisecond
	for {
		ok, err := try()
		if err != nil || ok {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errLockBusy
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, time.Second)
	}
}

// Deliver spools one message in mboxrd framing: the From line (sender from the message's Return-Path,
// MAILER-DAEMON without one; the retrieval time), the optional Received header, the message with CRLF
// turned into LF and From-quoting, a newline. The returned Pending's Ref names the place the message
// will occupy in the mbox. A failed Deliver leaves nothing behind; errors reading body are returned
// as they are, errors writing the spool as *IOError.
func (m *Mbox) Deliver(ctx context.Context, env Envelope, body io.Reader) (Pending, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return Pending{}, errors.New("store: mbox is closed")
	}
	if err := ctx.Err(); err != nil {
		return Pending{}, err
	}
	start := m.spoolLen
	fail := func(err error) (Pending, error) {
		if terr := m.spool.Truncate(start); terr != nil {
			return Pending{}, errors.Join(err, ioErr("truncate", m.spool.Name(), terr))
		}
		return Pending{}, err
	}
	if _, err := m.spool.Seek(start, io.SeekStart); err != nil {
		return fail(ioErr("seek", m.spool.Name(), err))
	}
	br := bufio.NewReaderSize(&ctxBodyReader{ctx: ctx, r: body}, 32<<10)
	sep := mboxrdFromLine(peekReturnPath(br), env.Received)
	hdr := ""
	if m.opts.ReceivedHeader {
		hdr = ReceivedHeader(env)
	}
	sum := sha256.New()
	cw := &byteCounter{w: io.MultiWriter(m.spool, sum)}
	bw := bufio.NewWriterSize(cw, 64<<10)
	readErr, writeErr := writeMboxrd(bw, sep, hdr, br)
	if readErr == nil && writeErr == nil {
		writeErr = bw.Flush()
	}
	if readErr != nil {
		return fail(readErr)
	}
	if writeErr != nil {
		return fail(ioErr("write", m.path+" (spool)", writeErr))
	}
	m.spoolLen += cw.n
	m.refreshDotlock()
	m.step("mbox.spooled")
	off := m.size + int64(len(m.pad)) + start
	p := Pending{UID: env.UID, Ref: mboxRef(off, cw.n, sum)}
	m.batch = append(m.batch, p)
	return p, nil
}

// mboxRef formats the Pending.Ref of a message at off, n bytes long, with checksum sum.
func mboxRef(off, n int64, sum hash.Hash) string {
	return fmt.Sprintf("mbox:%d:%d:%s", off, n, hex.EncodeToString(sum.Sum(nil)[:16]))
}

type mboxRefParts struct {
	ref      string
	off, n   int64
	checksum string
}

func parseMboxRef(ref string) (mboxRefParts, error) {
	parts := strings.Split(ref, ":")
	if len(parts) != 4 || parts[0] != "mbox" || len(parts[3]) != 32 {
		return mboxRefParts{}, fmt.Errorf("store: %q is not an mbox reference", ref)
	}
	off, err1 := strconv.ParseInt(parts[1], 10, 64)
	n, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || off < 0 || n <= 0 {
		return mboxRefParts{}, fmt.Errorf("store: %q is not an mbox reference", ref)
	}
	return mboxRefParts{ref: ref, off: off, n: n, checksum: parts[3]}, nil
}

// Commit calls journal with the batch, then appends the batch to the mbox and fsyncs it. If journal
// fails, the mbox is untouched and the batch stays spooled (Abort drops it). If the append or the
// fsync fails, the mbox is truncated back to its length before the batch and the error is an
// *IOError; the journal's pending records then name bytes that are not in the file, which Resolve
// reports as not visible.
func (m *Mbox) Commit(ctx context.Context, journal func([]Pending) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return errors.New("store: mbox is closed")
	}
	if len(m.batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if journal != nil {
		if err := journal(append([]Pending(nil), m.batch...)); err != nil {
			return err
		}
	}
	m.step("mbox.journaled")
	if err := m.appendSpool(); err != nil {
		return err
	}
	m.size += int64(len(m.pad)) + m.spoolLen
	m.pad = ""
	m.batch = nil
	m.spoolLen = 0
	if err := m.spool.Truncate(0); err != nil {
		return ioErr("truncate", m.spool.Name(), err)
	}
	m.refreshDotlock()
	return nil
}

func (m *Mbox) appendSpool() error {
	err := func() error {
		if _, err := m.f.Seek(m.size, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.WriteString(m.f, m.pad); err != nil {
			return err
		}
		if _, err := m.spool.Seek(0, io.SeekStart); err != nil {
			return err
		}
		// *os.File.ReadFrom with an io.LimitedReader of a file uses copy_file_range on Linux. The
		// crash tests copy in two halves to stop in the middle.
		half := m.spoolLen
		if m.stepHalf {
			half /= 2
		}
		for done := int64(0); done < m.spoolLen; {
			n, err := io.Copy(m.f, io.LimitReader(m.spool, half))
			if err == nil && n != half {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				return err
			}
			done += n
			half = m.spoolLen - done
			if half > 0 {
				m.step("mbox.append.half")
			}
		}
		m.step("mbox.appended")
		err := retryEINTR(m.f.Sync)
		if err == nil {
			m.step("mbox.synced")
		}
		return err
	}()
	if err == nil {
		return nil
	}
	if terr := m.f.Truncate(m.size); terr != nil {
		return errors.Join(ioErr("append", m.path, err), ioErr("truncate", m.path, terr))
	}
	_ = retryEINTR(m.f.Sync)
	return ioErr("append", m.path, err)
}

// Abort drops the spooled batch; the mbox is untouched.
func (m *Mbox) Abort() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	m.batch = nil
	m.spoolLen = 0
	return ioErr("truncate", m.spool.Name(), m.spool.Truncate(0))
}

// Resolve reports, for each Ref that Deliver returned before a crash, whether the message is in the
// mbox: the bytes at its offset have its length and checksum. When the file ends inside the span of
// the references that are not visible, and that span starts where a message of ours was to start,
// the half-appended batch is cut off (truncate, fsync). Refs that are not mbox references (left by
// another destination before the profile changed) are reported not visible.
func (m *Mbox) Resolve(refs []string) (map[string]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil, errors.New("store: mbox is closed")
	}
	visible := make(map[string]bool, len(refs))
	parts := make([]mboxRefParts, 0, len(refs))
	for _, ref := range refs {
		p, err := parseMboxRef(ref)
		if err != nil {
			visible[ref] = false // another destination's (the profile changed since the crash)
			continue
		}
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].off < parts[j].off })
	firstMissing := int64(-1)
	var end int64
	for _, p := range parts {
		ok, err := m.matches(p)
		if err != nil {
			return nil, err
		}
		visible[p.ref] = ok
		if !ok && firstMissing < 0 {
			firstMissing = p.off
		}
		end = max(end, p.off+p.n)
	}
	if firstMissing >= 0 && m.size > firstMissing && m.size <= end {
		var head [5]byte
		if _, err := m.f.ReadAt(head[:], firstMissing); err == nil && string(head[:]) == "From " {
			if err := m.f.Truncate(firstMissing); err != nil {
				return nil, ioErr("truncate", m.path, err)
			}
			if err := retryEINTR(m.f.Sync); err != nil {
				return nil, ioErr("sync", m.path, err)
			}
			if err := m.readTail(); err != nil {
				return nil, err
			}
		}
	}
	return visible, nil
}

func (m *Mbox) matches(p mboxRefParts) (bool, error) {
	if p.off+p.n > m.size {
		return false, nil
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(m.f, p.off, p.n)); err != nil {
		return false, ioErr("read", m.path, err)
	}
	return hex.EncodeToString(sum.Sum(nil)[:16]) == p.checksum, nil
}

// Close drops an uncommitted batch and releases the locks.
func (m *Mbox) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	return m.release()
}

func (m *Mbox) release() error {
	var errs []error
	if m.spool != nil {
		errs = append(errs, m.spool.Close())
		m.spool = nil
	}
	if m.f != nil {
		// Closing the descriptor releases the fcntl lock.
		if err := m.f.Close(); err != nil {
			errs = append(errs, ioErr("close", m.path, err))
		}
		m.f = nil
	}
	if m.dotlock != "" {
		if err := os.Remove(m.dotlock); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, ioErr("remove", m.dotlock, err))
		}
		m.dotlock = ""
	}
	m.batch = nil
	return errors.Join(errs...)
}

var _ Destination = (*Mbox)(nil)
var _ Resolver = (*Mbox)(nil)
