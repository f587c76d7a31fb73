package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/popfetch/popfetch/internal/fsutil"
)

// The state file (ARCHITECTURE.md §3): one per account, "<dir>/<account>.state", an append-only journal.
//
//	popfetch-state v1
//	<crc> P<TAB><uid><TAB><first-seen><TAB><ref>                    pending: in the destination, maybe not visible
//	<crc> D<TAB><uid><TAB><first-seen><TAB><delivered><TAB><ref>    delivered (ref may be empty)
//	<crc> D<TAB><uid><TAB><first-seen><TAB><delivered><TAB><ref><TAB><from>
//	                                                                another fetcher had it (state import)
//	<crc> F<TAB><uid>                                               forgotten (gone from the server)
//	<crc> L<TAB><until>                                             [LOGIN-DELAY]: do not log in before
//	<crc> O<TAB><uid><TAB><size>                                    oversize: its stream passed max_size after <size> octets
//
// <crc> is the CRC-32C (Castagnoli) of the rest of the line after the space, as 8 lowercase hex
// digits; times are RFC 3339 in UTC to the second ("-" for none); a uid or ref has '%', control
// characters, space and DEL percent-encoded. The last record for a UIDL wins.
//
// Why a journal rather than snapshot-only: the engine records every batch twice (pending, then
// delivered), and rewriting 100,000 UIDLs (several MB) per batch would cost far more than appending
// one line per message plus one fsync. Torn writes: a record is acknowledged only after its fsync,
// so a crash can tear only records that were never acknowledged, and only at the end of the file;
// OpenState truncates such a tail (records that fail their checksum with no valid record after
// them). A bad record followed by a valid one cannot come from a crash: that file is refused with a
// *CorruptStateError naming the line and how to recover. When the journal has grown well past its
// live entries it is compacted: a snapshot in the same format is written to a temporary file beside
// it, fsync'd, renamed over the file, and the directory fsync'd (fsutil.WriteFileAtomic), so either the old or the new file
// survives a crash, never a mix.
//
// The O record came after the first release of v1; a popfetch without it refuses a file that holds one
// (as a record "written by a newer popfetch"), unless it is the last line, which it drops as torn.
//
// Versions: the header names the format version. A later popfetch must keep reading v1 (it may
// add fields at the end of a record, which v1 readers ignore); this one refuses a later version
// with a clear error instead of guessing. The <from> field of a D record is such an addition: it
// names the fetcher whose list the UIDL was imported from (fetchmail, mpop, getmail), and is absent
// when popfetch delivered the message itself. Files without it read as before; a popfetch that
// predates it reads such a record as an ordinary delivery.

// stateVersion is the format this code writes; it reads versions 1..stateVersion.
const stateVersion = 1

const stateMagic = "popfetch-state v"

// journalFile is what State needs of its open journal; tests substitute a failing one.
type journalFile interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readNoFollow reads the state file at path without following a symbolic link. (openJournal then
// refuses anything but a regular file of ours with one link.)
func readNoFollow(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|fsutil.NoFollow, 0)
	if err != nil {
		return nil, fsutil.Symlink(path, err)
	}
	defer f.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(f)
	return b.Bytes(), err
}

// openJournal opens the state file for appending, without following a symbolic link.
func openJournal(path string) (journalFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|fsutil.NoFollow, 0o600)
	if err != nil {
		return nil, stateErr("open", path, fsutil.Symlink(path, err))
	}
	if err := fsutil.CheckOpened(f, path); err != nil {
		f.Close()
		return nil, stateErr("open", path, err)
	}
	return platformJournal(f, path), nil // state_platform.go
}

// load parses the whole file: the header, then every record.
func (s *State) load(data []byte) error {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return &CorruptStateError{Path: s.path, Line: 1, Reason: "no header line"}
	}
	if err := s.checkHeader(string(data[:nl])); err != nil {
		return err
	}
	off := nl + 1
	line := 1
	for off < len(data) {
		line++
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 { // a last record without its newline: torn by a crash
			s.torn = int64(len(data) - off)
			break
		}
		rec, err := parseRecord(data[off : off+end])
		if err != nil {
			if !anyValidRecord(data[off+end+1:]) { // only damage from here on: a torn tail
				s.torn = int64(len(data) - off)
				break
			}
			return &CorruptStateError{Path: s.path, Line: line, Reason: err.Error()}
		}
		s.apply(rec)
		s.records++
		off += end + 1
	}
	s.size = int64(off)
	return nil
}

// checkHeader accepts "popfetch-state v<N>" (and anything after a space) for N up to stateVersion.
func (s *State) checkHeader(h string) error {
	rest, ok := strings.CutPrefix(h, stateMagic)
	if !ok {
		return &CorruptStateError{Path: s.path, Line: 1, Reason: fmt.Sprintf("not a popfetch state file (the first line should be %q)", stateMagic+"1")}
	}
	num, _, _ := strings.Cut(rest, " ")
	v, err := strconv.Atoi(num)
	if err != nil || v < 1 {
		return &CorruptStateError{Path: s.path, Line: 1, Reason: fmt.Sprintf("bad format version %q", num)}
	}
	if v > stateVersion {
		return &CorruptStateError{Path: s.path, Line: 1, Reason: fmt.Sprintf("format v%d was written by a newer popfetch; this one reads up to v%d: upgrade popfetch", v, stateVersion)}
	}
	return nil
}

// anyValidRecord reports whether data holds a complete line that passes its checksum.
func anyValidRecord(data []byte) bool {
	for len(data) > 0 {
		end := bytes.IndexByte(data, '\n')
		if end < 0 {
			return false
		}
		if _, err := parseRecord(data[:end]); err == nil {
			return true
		}
		data = data[end+1:]
	}
	return false
}

// record is one parsed journal line.
type record struct {
	op               byte // 'P', 'D', 'F', 'L', 'O'
	uid, ref         string
	first, delivered int64  // for 'O': delivered is the size
	from             string // D only: imported from
}

// parseRecord checks a line's checksum and parses it. Extra fields at the end are ignored (room for
// later versions).
func parseRecord(line []byte) (record, error) {
	if len(line) < 10 || line[8] != ' ' {
		return record{}, errors.New("malformed record (expected a checksum, a space and fields)")
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], line[:8]); err != nil {
		return record{}, errors.New("malformed checksum")
	}
	payload := line[9:]
	want := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	if crc32.Checksum(payload, castagnoli) != want {
		return record{}, errors.New("checksum mismatch")
	}
	var f [7][]byte // up to 6 fields; f[6] holds any later ones
	n := 0
	for n < len(f) {
		i := bytes.IndexByte(payload, '\t')
		if i < 0 {
			f[n] = payload
			n++
			break
		}
		f[n] = payload[:i]
		payload = payload[i+1:]
		n++
	}
	if len(f[0]) != 1 {
		return record{}, fmt.Errorf("unknown record type %q", f[0])
	}
	r := record{op: f[0][0]}
	var err error
	var need int
	switch r.op {
	case 'P':
		need = 4
	case 'D':
		need = 5
	case 'F', 'L':
		need = 2
	case 'O':
		need = 3
	default:
		return record{}, fmt.Errorf("unknown record type %q (written by a newer popfetch?)", f[0])
	}
	if n < need {
		return record{}, fmt.Errorf("record %c has %d fields, want %d", r.op, n, need)
	}
	switch r.op {
	case 'P':
		r.uid, r.ref = unescapeField(f[1]), unescapeField(f[3])
		r.first, err = parseTime(f[2])
	case 'D':
		r.uid, r.ref = unescapeField(f[1]), unescapeField(f[4])
		if r.first, err = parseTime(f[2]); err == nil {
			r.delivered, err = parseTime(f[3])
		}
		if n > 5 {
			r.from = importedFrom(f[5])
		}
	case 'F':
		r.uid = unescapeField(f[1])
	case 'L':
		r.first, err = parseTime(f[1])
	case 'O':
		r.uid = unescapeField(f[1])
		if r.delivered, err = strconv.ParseInt(string(f[2]), 10, 64); err != nil || r.delivered < 0 {
			err = fmt.Errorf("bad size %q", f[2])
		}
	}
	if err == nil && r.op != 'L' && r.uid == "" {
		err = errors.New("empty UIDL")
	}
	return r, err
}

// apply changes the in-memory state by one record.
func (s *State) apply(r record) {
	switch r.op {
	case 'P':
		s.entries[r.uid] = entry{first: r.first, status: StatusPending, ref: r.ref}
		delete(s.oversize, r.uid)
	case 'D':
		s.entries[r.uid] = entry{first: r.first, delivered: r.delivered, status: StatusDelivered, ref: r.ref, from: r.from}
		delete(s.oversize, r.uid)
	case 'F':
		delete(s.entries, r.uid)
		delete(s.oversize, r.uid)
	case 'O':
		if s.oversize == nil {
			s.oversize = make(map[string]int64)
		}
		s.oversize[r.uid] = r.delivered
	case 'L':
		s.loginDelay = r.first
	}
}

// appendRecord encodes one record (checksum, space, tab-separated fields, newline) onto buf.
func appendRecord(buf []byte, r record) []byte {
	start := len(buf)
	buf = append(buf, "00000000 "...)
	buf = append(buf, r.op)
	switch r.op {
	case 'P':
		buf = appendField(buf, r.uid)
		buf = appendTime(append(buf, '\t'), r.first)
		buf = appendField(buf, r.ref)
	case 'D':
		buf = appendField(buf, r.uid)
		buf = appendTime(append(buf, '\t'), r.first)
		buf = appendTime(append(buf, '\t'), r.delivered)
		buf = appendField(buf, r.ref)
		if r.from != "" {
			buf = appendField(buf, r.from)
		}
	case 'F':
		buf = appendField(buf, r.uid)
	case 'L':
		buf = appendTime(append(buf, '\t'), r.first)
	case 'O':
		buf = appendField(buf, r.uid)
		buf = strconv.AppendInt(append(buf, '\t'), r.delivered, 10)
	}
	sum := crc32.Checksum(buf[start+9:], castagnoli)
	hex.Encode(buf[start:start+8], []byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	return append(buf, '\n')
}

// appendField appends a tab and s, percent-encoding '%', space, control characters and DEL so that
// a field never contains a tab or a newline.
func appendField(buf []byte, s string) []byte {
	buf = append(buf, '\t')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || c == '%' {
			buf = append(buf, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
			continue
		}
		buf = append(buf, c)
	}
	return buf
}

// unescapeField undoes appendField; a malformed escape is kept literally.
func unescapeField(b []byte) string {
	if bytes.IndexByte(b, '%') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) {
			if v, err := strconv.ParseUint(string(b[i+1:i+3]), 16, 8); err == nil {
				out = append(out, byte(v))
				i += 2
				continue
			}
		}
		out = append(out, b[i])
	}
	return string(out)
}

const timeLayout = "2006-01-02T15:04:05Z"

// appendTime appends Unix seconds t as RFC 3339 UTC, or "-" for 0.
func appendTime(buf []byte, t int64) []byte {
	if t == 0 {
		return append(buf, '-')
	}
	return time.Unix(t, 0).UTC().AppendFormat(buf, timeLayout)
}

// parseTime parses what appendTime writes (a fast path for the exact layout; any RFC 3339 time is
// accepted, for later versions).
func parseTime(b []byte) (int64, error) {
	if len(b) == 1 && b[0] == '-' {
		return 0, nil
	}
	if len(b) == 20 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[19] == 'Z' {
		num := func(p []byte) int {
			n := 0
			for _, c := range p {
				if c < '0' || c > '9' {
					return -1
				}
				n = n*10 + int(c-'0')
			}
			return n
		}
		y, mo, d, h, mi, sec := num(b[0:4]), num(b[5:7]), num(b[8:10]), num(b[11:13]), num(b[14:16]), num(b[17:19])
		if y >= 0 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h >= 0 && h < 24 && mi >= 0 && mi < 60 && sec >= 0 && sec < 61 {
			return time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC).Unix(), nil
		}
	}
	t, err := time.Parse(time.RFC3339, string(b))
	if err != nil {
		return 0, fmt.Errorf("bad time %q", b)
	}
	return t.Unix(), nil
}

// unixSec converts a time to the state's resolution; the zero time is 0.
func unixSec(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// toTime converts back; 0 is the zero time.
func toTime(u int64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(u, 0).UTC()
}

// commit appends recs to the journal durably (write, fsync), then applies them in memory. Nothing is
// applied if the write fails, and the State then refuses further writes. If the compaction that may
// follow fails, the records are durable and applied, but the error is still returned (and further
// writes refused): the engine stops before DELE, which is safe.
func (s *State) commit(recs []record) error {
	if s.f == nil {
		return errors.New("store: state is closed")
	}
	if s.err != nil {
		return s.err
	}
	if len(recs) == 0 {
		return nil
	}
	s.buf = s.buf[:0]
	for _, r := range recs {
		s.buf = appendRecord(s.buf, r)
	}
	n, err := s.f.Write(s.buf)
	s.step("state.written")
	if err == nil {
		err = retryEINTR(s.f.Sync)
	}
	if err != nil {
		if n > 0 { // best effort: do not leave half a record for the next writer to follow
			_ = s.f.Truncate(s.size)
		}
		s.err = ioErr("append", s.path, err)
		return s.err
	}
	s.step("state.synced")
	s.size += int64(n)
	s.records += len(recs)
	for _, r := range recs {
		s.apply(r)
	}
	if s.needsCompaction() {
		return s.compactLocked()
	}
	return nil
}

// needsCompaction: the journal holds many more records than live entries.
func (s *State) needsCompaction() bool {
	return s.records > 2*(len(s.entries)+len(s.oversize))+4096
}

// Compact rewrites the journal as a snapshot of the live entries (temp file, fsync, rename, fsync
// the directory). It happens by itself when the journal has grown; it is exported for `popfetch
// state` maintenance and benchmarks.
func (s *State) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("store: state is closed")
	}
	if s.err != nil {
		return s.err
	}
	return s.compactLocked()
}

func (s *State) compactLocked() error {
	s.f = releaseBeforeRename(s.f) // state_platform.go: Windows cannot rename over an open file
	if err := s.writeSnapshot(); err != nil {
		s.err = err
		return err
	}
	old := s.f
	f, err := openJournal(s.path)
	if err != nil {
		s.err = err
		return s.err
	}
	if old != nil {
		old.Close()
	}
	s.f = f
	return nil
}

// writeSnapshot replaces the file with every live entry, durably (fsutil.WriteFileAtomic). It sets
// size and records.
func (s *State) writeSnapshot() error {
	uids := make([]string, 0, len(s.entries))
	for uid := range s.entries {
		uids = append(uids, uid)
	}
	slices.Sort(uids) // deterministic and easier to read
	buf := make([]byte, 0, 64+len(uids)*160)
	buf = append(buf, stateMagic+strconv.Itoa(stateVersion)+"\n"...)
	n := 0
	if s.loginDelay != 0 {
		buf = appendRecord(buf, record{op: 'L', first: s.loginDelay})
		n++
	}
	for _, uid := range uids {
		e := s.entries[uid]
		r := record{op: 'D', uid: uid, first: e.first, delivered: e.delivered, ref: e.ref, from: e.from}
		if e.status == StatusPending {
			r.op = 'P'
		}
		buf = appendRecord(buf, r)
		n++
	}
	over := make([]string, 0, len(s.oversize))
	for uid := range s.oversize {
		over = append(over, uid)
	}
	slices.Sort(over)
	for _, uid := range over {
		buf = appendRecord(buf, record{op: 'O', uid: uid, delivered: s.oversize[uid]})
		n++
	}
	if err := writeSnapshotFile(s.path, buf, 0o600); err != nil {
		return ioErr("compact", s.path, err)
	}
	s.size = int64(len(buf))
	s.records = n
	return nil
}
