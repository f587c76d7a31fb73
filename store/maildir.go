package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-maildir"
)

// MaildirOptions configure a Maildir destination. The zero value is valid.
type MaildirOptions struct {
	// ReceivedHeader prepends ReceivedHeader(env) to every message, as mpop does. The configuration
	// layer turns it on by default for maildirs; the zero value here leaves messages as
	// they came.
	ReceivedHeader bool
	// Hostname is the host part of unique file names; "" means os.Hostname().
	Hostname string
	// Now is the clock for unique file names; nil means time.Now.
	Now func() time.Time
}

// Maildir delivers into a maildir (https://cr.yp.to/proto/maildir.html) durably and, together with
// the State, exactly once (ARCHITECTURE.md §4):
//
//	Deliver (each message of a batch) -> tmp/<name>, written and closed, not yet durable
//	Commit: syncfs(tmp/)              -> every file of the batch is durable (fsync each off Linux)
//	        journal(pending)          -> the engine records UIDL -> <name> as pending, durably
//	        rename tmp/<name> -> new/<name> for each, then fsync(new/)
//
// then the engine marks the batch delivered in the state and sends DELE. After a crash,
// State.Recover asks Resolve which pending names reached new/ (or cur/, where a mail reader may have
// moved them): those are delivered, the others are forgotten and fetched again. A message therefore
// becomes visible only after its pending record is durable, and a pending record is only dropped
// when its file is provably not visible: no loss, no duplicate.
//
// go-maildir v0.6.0 never fsyncs and does not expose the file name the state must record, so Maildir writes the
// files itself and uses go-maildir for Init and Clean; tests read the result back with it.
//
// A Maildir is safe for use by several goroutines, but deliveries are serialised.
type Maildir struct {
	path string
	opts MaildirOptions
	host string // Hostname with '/' and ':' escaped as the maildir spec asks
	pid  int

	mu     sync.Mutex
	tmpDir *os.File // tmp/, open for syncfs; nil once closed
	batch  []Pending
	seq    uint64
	buf    []byte        // read buffer for message bodies
	bw     *bufio.Writer // write buffer, reset per file

	fs   maildirFS
	step func(point string) // test hook: the crash tests kill the process at each point
}

// maildirFS holds the file-system calls of a Maildir that tests replace to inject ENOSPC and EIO
// (the fault tests); production code uses the os package.
type maildirFS struct {
	create    func(path string) (tmpFile, error) // create a new file exclusively, mode 0600
	syncFiles func(dir *os.File, paths []string) error
	rename    func(oldpath, newpath string) error
	syncDir   func(path string) error
}

// tmpFile is what Deliver needs of a file being written.
type tmpFile interface {
	io.Writer
	Close() error
}

var osMaildirFS = maildirFS{
	create:    createTmpFile,
	syncFiles: syncFiles,
	rename:    renameFile,
	syncDir:   syncDir,
}

// Compile-time checks: a Maildir is an exactly-once destination.
var (
	_ Destination = (*Maildir)(nil)
	_ Resolver    = (*Maildir)(nil)
)

// NewMaildir opens the maildir at path, creating it (and missing parents) with mode 0700 if needed.
// Files are created with mode 0600.
func NewMaildir(path string, opts MaildirOptions) (*Maildir, error) {
	if path == "" {
		return nil, errors.New("store: maildir: empty path")
	}
	path = filepath.Clean(path)
	host := opts.Hostname
	if host == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		host = h
	}
	// The maildir spec: "/" and ":" may not appear in the host part of a unique name.
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)

	_, statErr := os.Stat(filepath.Join(path, "tmp"))
	created := errors.Is(statErr, fs.ErrNotExist)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, ioErr("mkdir", filepath.Dir(path), err)
	}
	if err := maildir.Dir(path).Init(); err != nil { // path, tmp, new, cur with mode 0700
		return nil, ioErr("create maildir", path, err)
	}
	if created { // make the new directories durable before the first message goes in
		for _, d := range []string{path, filepath.Dir(path)} {
			if err := syncDir(d); err != nil {
				return nil, ioErr("fsync", d, err)
			}
		}
	}
	for _, sub := range []string{"new", "cur"} {
		if fi, err := os.Stat(filepath.Join(path, sub)); err != nil || !fi.IsDir() {
			if err == nil {
				err = errors.New("not a directory")
			}
			return nil, ioErr("open maildir", filepath.Join(path, sub), err)
		}
	}
	tmp, err := os.Open(filepath.Join(path, "tmp"))
	if err != nil {
		return nil, ioErr("open", filepath.Join(path, "tmp"), err)
	}
	return &Maildir{
		path:   path,
		opts:   opts,
		host:   host,
		pid:    os.Getpid(),
		tmpDir: tmp,
		buf:    make([]byte, 32<<10),
		bw:     bufio.NewWriterSize(nil, 64<<10),
		fs:     osMaildirFS,
		step:   func(string) {},
	}, nil
}

// Path returns the maildir's directory.
func (m *Maildir) Path() string { return m.path }

// now is the clock for unique names.
func (m *Maildir) now() time.Time {
	if m.opts.Now != nil {
		return m.opts.Now()
	}
	return time.Now()
}

// newName returns a unique name in the modern maildir convention:
// <seconds>.M<microseconds>P<pid>Q<delivery count>R<random>.<host>.
func (m *Maildir) newName() string {
	t := m.now()
	m.seq++
	var r [8]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails on supported systems
	return fmt.Sprintf("%d.M%06dP%dQ%dR%s.%s", t.Unix(), t.Nanosecond()/1000, m.pid, m.seq,
		hex.EncodeToString(r[:]), m.host)
}

// Deliver streams one message from body into tmp/ under a new unique name, turning CRLF into LF and
// prepending the Received: header when asked. The message is neither durable nor visible until
// Commit. On any failure the partial file is removed. Local failures (ENOSPC, EIO, EACCES) are
// *IOError (exit 74); an error reading body is returned wrapped, as is ctx's error when the context
// ends during the copy.
func (m *Maildir) Deliver(ctx context.Context, env Envelope, body io.Reader) (Pending, error) {
	if err := ctx.Err(); err != nil {
		return Pending{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tmpDir == nil {
		return Pending{}, errors.New("store: maildir: Deliver after Close")
	}

	var (
		name, path string
		f          tmpFile
		err        error
	)
	for range 3 { // O_EXCL: a clash of unique names is astronomically unlikely, but never overwrite
		name = m.newName()
		path = filepath.Join(m.path, "tmp", name)
		f, err = m.fs.create(path)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return Pending{}, ioErr("create", path, err)
	}
	m.step("deliver.create")

	m.bw.Reset(f)
	var werr, rerr error
	if m.opts.ReceivedHeader {
		_, werr = m.bw.WriteString(ReceivedHeader(env))
	}
	if werr == nil {
		rerr, werr = copyLF(ctx, m.bw, body, m.buf)
	}
	if werr == nil && rerr == nil {
		werr = m.bw.Flush()
	}
	m.bw.Reset(nil)
	cerr := f.Close()
	switch {
	case werr != nil:
		err = ioErr("write", path, werr)
	case rerr != nil && ctx.Err() != nil && errors.Is(rerr, ctx.Err()):
		err = rerr
	case rerr != nil:
		err = fmt.Errorf("store: maildir: reading message %q: %w", env.UID, rerr)
	case cerr != nil:
		err = ioErr("close", path, cerr)
	}
	if err != nil {
		_ = os.Remove(path) // the partial file; failing here leaves only litter in tmp/
		return Pending{}, err
	}
	m.step("deliver.written")
	p := Pending{UID: env.UID, Ref: name}
	m.batch = append(m.batch, p)
	return p, nil
}

// copyLF copies src to dst turning every CRLF into LF, streaming: a CR at the end of a chunk is held
// until the next byte is known. It stops early when ctx ends. Read and write errors are returned apart
// so that a failing disk is told from a failing network.
func copyLF(ctx context.Context, dst *bufio.Writer, src io.Reader, buf []byte) (rerr, werr error) {
	pendingCR := false
	for {
		if err := ctx.Err(); err != nil {
			return err, nil
		}
		n, err := src.Read(buf)
		chunk := buf[:n]
		if n > 0 && pendingCR {
			pendingCR = false
			if chunk[0] != '\n' {
				if werr := dst.WriteByte('\r'); werr != nil {
					return nil, werr
				}
			}
		}
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\r')
			if i < 0 {
				if _, werr := dst.Write(chunk); werr != nil {
					return nil, werr
				}
				break
			}
			if _, werr := dst.Write(chunk[:i]); werr != nil {
				return nil, werr
			}
			if i+1 == len(chunk) {
				pendingCR = true
				break
			}
			if chunk[i+1] != '\n' {
				if werr := dst.WriteByte('\r'); werr != nil {
					return nil, werr
				}
			}
			chunk = chunk[i+1:]
		}
		if err == io.EOF {
			if pendingCR {
				if werr := dst.WriteByte('\r'); werr != nil {
					return nil, werr
				}
			}
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

// Commit makes the batch durable and visible, in the order ARCHITECTURE.md §4 describes: one syncfs for all
// files of the batch (fsync per file where syncfs does not exist), then journal(pending) — the engine
// passes State.RecordPending — then rename each file into new/ and fsync new/.
//
// If the sync or journal fails, nothing becomes visible, the files are removed and the error is
// returned (an *IOError for local failures; journal's error as it is). If a rename or the final
// fsync fails, some messages of the batch may be visible: they are recorded as pending, so the engine
// must stop the run without marking the batch delivered; State.Recover settles it on the next run.
// A context that has ended before Commit starts abandons the batch; once started, Commit finishes.
func (m *Maildir) Commit(ctx context.Context, journal func([]Pending) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tmpDir == nil {
		return errors.New("store: maildir: Commit after Close")
	}
	if len(m.batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		m.abortLocked()
		return err
	}
	batch := m.batch
	m.batch = nil
	paths := make([]string, len(batch))
	for i, p := range batch {
		paths[i] = filepath.Join(m.path, "tmp", p.Ref)
	}
	remove := func(from int) {
		for _, p := range paths[from:] {
			_ = os.Remove(p)
		}
	}
	if err := m.fs.syncFiles(m.tmpDir, paths); err != nil {
		remove(0)
		return ioErr("syncfs", m.tmpDir.Name(), err)
	}
	m.step("commit.synced")
	if journal != nil {
		if err := journal(append([]Pending(nil), batch...)); err != nil {
			remove(0)
			return err
		}
	}
	m.step("commit.journaled")
	newDir := filepath.Join(m.path, "new")
	for i, p := range batch {
		if err := m.fs.rename(paths[i], filepath.Join(newDir, p.Ref)); err != nil {
			remove(i)
			return ioErr("rename", paths[i], err)
		}
		m.step("commit.renamed")
	}
	if err := m.fs.syncDir(newDir); err != nil {
		return ioErr("fsync", newDir, err)
	}
	m.step("commit.dirsynced")
	return nil
}

// Abort removes the files delivered since the last Commit; none of them was visible.
func (m *Maildir) Abort() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.abortLocked()
}

func (m *Maildir) abortLocked() error {
	var first error
	for _, p := range m.batch {
		path := filepath.Join(m.path, "tmp", p.Ref)
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) && first == nil {
			first = ioErr("remove", path, err)
		}
	}
	m.batch = nil
	return first
}

// Resolve reports which refs (unique names recorded as pending) are visible: in new/, or in cur/
// under the same name with or without a ":2,FLAGS" info suffix, where a mail reader may have moved
// it. A ref still in tmp/ is removed and reported not visible. A ref found nowhere is reported not
// visible too, so that it is fetched again: either it never left tmp/ and something cleaned tmp/, or
// the user deleted it after it became visible — a duplicate of a message already deleted is better
// than a lost one. Refs that are not plain file names are reported not visible and left alone.
func (m *Maildir) Resolve(refs []string) (map[string]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	visible := make(map[string]bool, len(refs))
	var inCur map[string]bool // built on demand from one listing of cur/
	for _, ref := range refs {
		if !validRef(ref) {
			visible[ref] = false
			continue
		}
		ok, err := m.exists(filepath.Join(m.path, "new", ref))
		if err == nil && !ok {
			ok, err = m.exists(filepath.Join(m.path, "cur", ref))
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			if inCur == nil {
				if inCur, err = m.listCur(); err != nil {
					return nil, err
				}
			}
			ok = inCur[ref]
		}
		visible[ref] = ok
		// A leftover in tmp/ is never needed: either the message is visible, or it is fetched again.
		tmp := filepath.Join(m.path, "tmp", ref)
		if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, ioErr("remove", tmp, err)
		}
	}
	return visible, nil
}

// exists reports whether path exists; errors other than "does not exist" are *IOError.
func (m *Maildir) exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, ioErr("stat", path, err)
	}
}

// listCur returns the unique names (the part before ':') of the files in cur/.
func (m *Maildir) listCur() (map[string]bool, error) {
	dir := filepath.Join(m.path, "cur")
	names, err := readDirNames(dir)
	if err != nil {
		return nil, ioErr("read", dir, err)
	}
	keys := make(map[string]bool, len(names))
	for _, n := range names {
		key, _, _ := strings.Cut(n, ":")
		keys[key] = true
	}
	return keys, nil
}

// readDirNames lists a directory without sorting or stat'ing its entries.
func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// validRef reports whether ref can be a unique name we wrote: a single path element.
func validRef(ref string) bool {
	return ref != "" && ref[0] != '.' && !strings.ContainsAny(ref, "/\x00") && ref == filepath.Base(ref)
}

// Clean removes files older than 36 hours from tmp/, as the maildir spec allows (go-maildir's
// Dir.Clean): the litter of deliveries killed before their batch was journaled.
func (m *Maildir) Clean() error {
	if err := maildir.Dir(m.path).Clean(); err != nil {
		return ioErr("clean", filepath.Join(m.path, "tmp"), err)
	}
	return nil
}

// Close removes uncommitted files (as Abort) and releases the maildir. It does not commit.
func (m *Maildir) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tmpDir == nil {
		return nil
	}
	err := m.abortLocked()
	if cerr := m.tmpDir.Close(); err == nil && cerr != nil {
		err = ioErr("close", m.tmpDir.Name(), cerr)
	}
	m.tmpDir = nil
	return err
}
