package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Status is the delivery status of a UIDL in the state.
type Status uint8

const (
	// StatusPending: the message was written to the destination and its batch journaled, but it may
	// not have become visible; State.Recover settles it.
	StatusPending Status = iota + 1
	// StatusDelivered: the message is in the destination; never fetch it again.
	StatusDelivered
)

// String returns "pending" or "delivered".
func (s Status) String() string {
	switch s {
	case StatusPending:
		return "pending"
	case StatusDelivered:
		return "delivered"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Entry is what the state remembers about one UIDL.
type Entry struct {
	UID       string
	FirstSeen time.Time // when popfetch first recorded it (for keep_days)
	Status    Status
	Ref       string    // the destination's handle (a maildir file name), "" if none
	Delivered time.Time // zero unless Status is StatusDelivered
	// Imported names the other fetcher whose list this UIDL was imported from (State.Import); ""
	// when popfetch delivered the message itself.
	Imported string
}

// Options configure OpenStateOptions. The zero value is valid.
type Options struct {
	// Now is the clock for first-seen and delivery times; nil means time.Now. Tests of keep_days
	// inject their own.
	Now func() time.Time
}

// entry is the in-memory form of Entry: 100,000 of them should stay small.
type entry struct {
	first, delivered int64 // Unix seconds; 0 = none
	status           Status
	ref              string
	from             string // imported from; "" = delivered by popfetch
}

// State is one account's UIDL state. Its methods are safe for concurrent use. Writes are durable when
// they return nil; after a failed write the State refuses further writes (the file's content after a
// failed fsync is unknown), and the run must stop with exit 74.
//
// The caller holds the account's Lock while the State is open.
type State struct {
	path string
	now  func() time.Time

	mu         sync.Mutex
	f          journalFile // nil once closed
	size       int64       // bytes of valid journal
	records    int         // records in the journal, for the compaction policy
	entries    map[string]entry
	oversize   map[string]int64 // UIDL -> octets its stream passed max_size at (MarkOversize); nil if none
	loginDelay int64
	torn       int64 // bytes of a torn tail removed when the file was opened
	err        error // sticky write failure
	buf        []byte

	step func(point string) // test hook: the crash tests kill the process at each point
}

// OpenState opens (creating if needed) the state of account in dir; see OpenStateOptions.
func OpenState(dir, account string) (*State, error) {
	return OpenStateOptions(dir, account, Options{})
}

// OpenStateOptions opens the state of account in dir, creating dir (mode 0700) and the file (mode
// 0600) if needed. A torn last record is truncated away (TornBytes reports it); any other damage is
// a *CorruptStateError. Local failures are *IOError.
func OpenStateOptions(dir, account string, opts Options) (*State, error) {
	if err := validAccount(account); err != nil {
		return nil, err
	}
	s := &State{
		path:    filepath.Join(dir, account+".state"),
		now:     opts.Now,
		entries: make(map[string]entry),
		step:    func(string) {},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := MkdirState(dir); err != nil {
		return nil, err
	}
	data, err := readNoFollow(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := s.writeSnapshot(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, stateErr("read", s.path, err)
	default:
		if err := s.load(data); err != nil {
			return nil, err
		}
	}
	f, err := openJournal(s.path)
	if err != nil {
		return nil, err
	}
	s.f = f
	if s.torn > 0 { // cut the torn tail so that the next record does not follow garbage
		if err := f.Truncate(s.size); err != nil {
			f.Close()
			return nil, ioErr("truncate", s.path, err)
		}
		if err := retryEINTR(f.Sync); err != nil {
			f.Close()
			return nil, ioErr("fsync", s.path, err)
		}
	}
	if s.needsCompaction() {
		if err := s.compactLocked(); err != nil {
			s.f.Close()
			return nil, err
		}
	}
	return s, nil
}

// validAccount refuses account names that cannot be a single file name.
func validAccount(account string) error {
	if account == "" || account[0] == '.' || strings.ContainsAny(account, "/\\\x00") {
		return fmt.Errorf("store: invalid account name %q for a state file", account)
	}
	return nil
}

// Path returns the state file's path.
func (s *State) Path() string { return s.path }

// TornBytes returns how many bytes of a torn last record OpenState removed (0 normally), so the CLI
// can mention it with -v.
func (s *State) TornBytes() int64 { return s.torn }

// Len returns the number of UIDLs in the state.
func (s *State) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Lookup returns what the state knows about uid.
func (s *State) Lookup(uid string) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[uid]
	if !ok {
		return Entry{}, false
	}
	return Entry{UID: uid, FirstSeen: toTime(e.first), Status: e.status, Ref: e.ref, Delivered: toTime(e.delivered),
		Imported: e.from}, true
}

// Imported reports whether uid was imported from another fetcher's list (State.Import) and not
// delivered by popfetch since: popfetch never had the message, so the engine does not delete it
// unless told to (fetch.Policy.DeleteImported).
func (s *State) Imported(uid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[uid]
	return ok && e.from != ""
}

// Seen reports whether uid is in the state (delivered, or pending): the engine does not retrieve it
// again. Call Recover at the start of a run so that no entry is pending any more.
func (s *State) Seen(uid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.entries[uid]
	return ok
}

// FirstSeen returns when uid was first recorded (for keep_days), and whether it is known.
func (s *State) FirstSeen(uid string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[uid]
	return toTime(e.first), ok
}

// UIDs returns every UIDL in the state, sorted.
func (s *State) UIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	uids := make([]string, 0, len(s.entries))
	for uid := range s.entries {
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	return uids
}

// RecordPending durably records a batch as pending (UIDL -> destination ref). It is the journal the
// engine passes to Destination.Commit, which calls it after the batch is durable and before it becomes
// visible (ARCHITECTURE.md §2 step 7). Entries without a UIDL are skipped: without UIDL there is nothing to remember.
// A known UIDL keeps its first-seen time.
func (s *State) RecordPending(batch []Pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Unix()
	recs := make([]record, 0, len(batch))
	for _, p := range batch {
		if p.UID == "" {
			continue
		}
		first := now
		if e, ok := s.entries[p.UID]; ok && e.first != 0 {
			first = e.first
		}
		recs = append(recs, record{op: 'P', uid: p.UID, first: first, ref: p.Ref})
	}
	return s.commit(recs)
}

// MarkDelivered durably records uids as delivered at time at (the engine calls it after Commit
// returned nil, before DELE). A UIDL not yet known is added with first-seen at; one already delivered
// is left alone.
func (s *State) MarkDelivered(uids []string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := unixSec(at)
	if t == 0 {
		t = s.now().Unix()
	}
	recs := make([]record, 0, len(uids))
	for _, uid := range uids {
		if uid == "" {
			continue
		}
		e, ok := s.entries[uid]
		if ok && e.status == StatusDelivered && e.from == "" {
			continue
		}
		first := e.first
		if first == 0 {
			first = t
		}
		recs = append(recs, record{op: 'D', uid: uid, first: first, delivered: t, ref: e.ref})
	}
	return s.commit(recs)
}

// Recover settles the pending entries a crash left behind (ARCHITECTURE.md §2 step 2), before anything else in a
// run: it asks r which refs are visible; those UIDLs become delivered, the others are forgotten so
// they are fetched again. With r nil (a destination that cannot tell: MDA, LMTP, SMTP, mbox without
// a resolver) every pending entry is forgotten: at-least-once. It returns the UIDLs of each kind.
func (s *State) Recover(r Resolver) (delivered, discarded []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pending, refs []string
	for uid, e := range s.entries {
		if e.status == StatusPending {
			pending = append(pending, uid)
			if e.ref != "" {
				refs = append(refs, e.ref)
			}
		}
	}
	if len(pending) == 0 {
		return nil, nil, nil
	}
	slices.Sort(pending)
	var visible map[string]bool
	if r != nil && len(refs) > 0 {
		// Resolve may be slow (a listing of cur/); it does not touch the state.
		if visible, err = r.Resolve(refs); err != nil {
			return nil, nil, err
		}
	}
	now := s.now().Unix()
	recs := make([]record, 0, len(pending))
	for _, uid := range pending {
		e := s.entries[uid]
		if e.ref != "" && visible[e.ref] {
			recs = append(recs, record{op: 'D', uid: uid, first: e.first, delivered: now, ref: e.ref})
			delivered = append(delivered, uid)
		} else {
			recs = append(recs, record{op: 'F', uid: uid})
			discarded = append(discarded, uid)
		}
	}
	if err := s.commit(recs); err != nil {
		return nil, nil, err
	}
	return delivered, discarded, nil
}

// Forget durably removes every UIDL for which present returns false. The engine calls it after QUIT
// was answered +OK (ARCHITECTURE.md §2 step 8) with the complete UIDL listing of that session, so that the
// state does not grow forever.
func (s *State) Forget(present func(uid string) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []string
	for uid := range s.entries {
		if !present(uid) {
			gone = append(gone, uid)
		}
	}
	for uid := range s.oversize {
		if !present(uid) {
			gone = append(gone, uid)
		}
	}
	slices.Sort(gone)
	recs := make([]record, len(gone))
	for i, uid := range gone {
		recs[i] = record{op: 'F', uid: uid}
	}
	return s.commit(recs)
}

// Retain forgets every UIDL not in uids (the server's listing); see Forget.
func (s *State) Retain(uids []string) error {
	keep := make(map[string]struct{}, len(uids))
	for _, u := range uids {
		keep[u] = struct{}{}
	}
	return s.Forget(func(uid string) bool { _, ok := keep[uid]; return ok })
}

// SetLoginDelayUntil durably records that the server asked not to log in before t ([LOGIN-DELAY],
// RFC 2449 §8.1.1, RFC 3206); the zero time clears it.
func (s *State) SetLoginDelayUntil(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit([]record{{op: 'L', first: unixSec(t)}})
}

// MarkOversize durably records that uid's message stream passed max_size after size octets although
// its LIST size did not (fetch.OversizeError), so that the next run plans it as oversize. It is kept
// until uid is delivered or gone from the server (Retain).
func (s *State) MarkOversize(uid string, size int64) error {
	if uid == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit([]record{{op: 'O', uid: uid, delivered: size}})
}

// Oversize returns the size recorded by MarkOversize for uid.
func (s *State) Oversize(uid string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.oversize[uid]
	return n, ok
}

// LoginDelayUntil returns the time recorded by SetLoginDelayUntil, or the zero time.
func (s *State) LoginDelayUntil() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return toTime(s.loginDelay)
}

// Import durably adds UIDLs read from another fetcher's file (ParseImport) as delivered by that
// fetcher, so that they are not fetched again, and are not deleted either unless the user says so
// (Imported). An ImportedUID without a time gets at; one without From is recorded as from "import".
// UIDLs already known are left alone. It returns how many were added.
func (s *State) Import(ids []ImportedUID, at time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	def := unixSec(at)
	if def == 0 {
		def = s.now().Unix()
	}
	recs := make([]record, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id.UID == "" || seen[id.UID] {
			continue
		}
		seen[id.UID] = true
		if _, ok := s.entries[id.UID]; ok {
			continue
		}
		t := unixSec(id.At)
		if t == 0 {
			t = def
		}
		from := id.From
		if from == "" {
			from = "import"
		}
		recs = append(recs, record{op: 'D', uid: id.UID, first: t, delivered: t, from: from})
	}
	if err := s.commit(recs); err != nil {
		return 0, err
	}
	return len(recs), nil
}

// importedFrom returns the <from> field of a D record, sharing the strings of the usual values (the
// state may hold 100,000 of them).
func importedFrom(b []byte) string {
	if i := bytes.IndexByte(b, '\t'); i >= 0 { // fields added by a later version
		b = b[:i]
	}
	for _, k := range []string{ImportFetchmail, ImportMpop, ImportGetmail, "import"} {
		if string(b) == k {
			return k
		}
	}
	return unescapeField(b)
}

// Close closes the state file. Every successful write was already durable.
func (s *State) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return ioErr("close", s.path, err)
	}
	return nil
}
