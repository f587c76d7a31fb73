package store

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testClock is an injectable clock.
type testClock struct{ t time.Time }

func (c *testClock) Now() time.Time { return c.t }

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func openTestState(t testing.TB, dir string, clock *testClock) *State {
	t.Helper()
	st, err := OpenStateOptions(dir, "acct", Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestStateRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	clock := &testClock{t0}
	st := openTestState(t, dir, clock)

	if err := st.RecordPending([]Pending{{UID: "a", Ref: "1.x.h"}, {UID: "b", Ref: "2.y.h"}, {UID: "", Ref: "3.z.h"}}); err != nil {
		t.Fatal(err)
	}
	clock.t = t0.Add(time.Hour)
	if err := st.MarkDelivered([]string{"a"}, clock.t); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkDelivered([]string{"c"}, time.Time{}); err != nil { // unknown UIDL: added
		t.Fatal(err)
	}
	weird := "with space\tand\ttabs%25\x00\n"
	if err := st.MarkDelivered([]string{weird}, clock.t); err != nil {
		t.Fatal(err)
	}
	delay := t0.Add(30 * time.Minute)
	if err := st.SetLoginDelayUntil(delay); err != nil {
		t.Fatal(err)
	}
	st.Close()

	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v, want mode 0700", fi.Mode(), err)
	}
	fi, err = os.Stat(filepath.Join(dir, "acct.state"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file: %v %v, want mode 0600", fi.Mode(), err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "acct.state"))
	if !bytes.HasPrefix(data, []byte("popfetch-state v1\n")) {
		t.Errorf("state file does not start with its version line:\n%s", data)
	}
	t.Logf("state file:\n%s", data)

	st = openTestState(t, dir, clock)
	if st.Len() != 4 {
		t.Errorf("Len = %d, want 4 (%v)", st.Len(), st.UIDs())
	}
	e, ok := st.Lookup("a")
	if !ok || e.Status != StatusDelivered || e.Ref != "1.x.h" || !e.FirstSeen.Equal(t0) || !e.Delivered.Equal(t0.Add(time.Hour)) {
		t.Errorf("a = %+v %v", e, ok)
	}
	e, ok = st.Lookup("b")
	if !ok || e.Status != StatusPending || e.Ref != "2.y.h" || !e.Delivered.IsZero() {
		t.Errorf("b = %+v %v", e, ok)
	}
	if e, ok := st.Lookup("c"); !ok || e.Status != StatusDelivered || !e.FirstSeen.Equal(clock.t) {
		t.Errorf("c = %+v %v", e, ok)
	}
	if !st.Seen(weird) {
		t.Errorf("UIDL %q did not survive the round trip: %q", weird, st.UIDs())
	}
	if st.Seen("zzz") {
		t.Error("Seen(unknown) = true")
	}
	if fs, ok := st.FirstSeen("b"); !ok || !fs.Equal(t0) {
		t.Errorf("FirstSeen(b) = %v %v", fs, ok)
	}
	if got := st.LoginDelayUntil(); !got.Equal(delay) {
		t.Errorf("LoginDelayUntil = %v, want %v", got, delay)
	}
	// Recording a known UIDL again keeps its first-seen time (keep_days counts from the first sight).
	clock.t = t0.Add(48 * time.Hour)
	if err := st.RecordPending([]Pending{{UID: "b", Ref: "9.q.h"}}); err != nil {
		t.Fatal(err)
	}
	if fs, _ := st.FirstSeen("b"); !fs.Equal(t0) {
		t.Errorf("FirstSeen(b) after re-record = %v, want %v", fs, t0)
	}
	if err := st.SetLoginDelayUntil(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if !st.LoginDelayUntil().IsZero() {
		t.Error("login delay not cleared")
	}
}

func TestStateForgetRetain(t *testing.T) {
	dir := t.TempDir()
	st := openTestState(t, dir, &testClock{t0})
	if err := st.MarkDelivered([]string{"a", "b", "c", "d"}, t0); err != nil {
		t.Fatal(err)
	}
	if err := st.Retain([]string{"b", "d", "x"}); err != nil {
		t.Fatal(err)
	}
	if got := st.UIDs(); !slices.Equal(got, []string{"b", "d"}) {
		t.Errorf("after Retain: %v", got)
	}
	if err := st.Forget(func(uid string) bool { return uid != "d" }); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openTestState(t, dir, &testClock{t0})
	if got := st.UIDs(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("after reopen: %v", got)
	}
}

// fakeResolver answers Resolve from a fixed set.
type fakeResolver map[string]bool

func (f fakeResolver) Resolve(refs []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, r := range refs {
		out[r] = f[r]
	}
	return out, nil
}

func TestStateRecover(t *testing.T) {
	st := openTestState(t, t.TempDir(), &testClock{t0})
	if err := st.RecordPending([]Pending{{UID: "a", Ref: "ra"}, {UID: "b", Ref: "rb"}, {UID: "c", Ref: ""}}); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkDelivered([]string{"z"}, t0); err != nil {
		t.Fatal(err)
	}
	del, disc, err := st.Recover(fakeResolver{"ra": true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(del, []string{"a"}) || !slices.Equal(disc, []string{"b", "c"}) {
		t.Errorf("Recover = %v, %v", del, disc)
	}
	if got := st.UIDs(); !slices.Equal(got, []string{"a", "z"}) {
		t.Errorf("after Recover: %v", got)
	}
	if e, _ := st.Lookup("a"); e.Status != StatusDelivered {
		t.Errorf("a = %+v", e)
	}
	// Nothing pending: nothing to do, and a nil resolver forgets (at-least-once destinations).
	if del, disc, err := st.Recover(nil); err != nil || del != nil || disc != nil {
		t.Errorf("second Recover = %v %v %v", del, disc, err)
	}
	st.RecordPending([]Pending{{UID: "p", Ref: "rp"}})
	if _, disc, _ := st.Recover(nil); !slices.Equal(disc, []string{"p"}) {
		t.Errorf("Recover(nil) discarded %v", disc)
	}
}

// stateFile builds a state file with n delivered UIDLs and returns its path and content.
func stateFile(t testing.TB, dir string, n int) (string, []byte) {
	t.Helper()
	st := openTestState(t, dir, &testClock{t0})
	for i := range n {
		if err := st.RecordPending([]Pending{{UID: fmt.Sprintf("uid%03d", i), Ref: fmt.Sprintf("ref%03d", i)}}); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkDelivered([]string{fmt.Sprintf("uid%03d", i)}, t0); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	data, err := os.ReadFile(st.Path())
	if err != nil {
		t.Fatal(err)
	}
	return st.Path(), data
}

// TestStateTornTail cuts the file at every byte of its last two records, as a crash in the middle
// of an append (or of its fsync) would, and appends garbage without a newline or with zeros: the
// state opens with the torn records gone and every earlier one intact, and stays writable.
func TestStateTornTail(t *testing.T) {
	dir := t.TempDir()
	path, full := stateFile(t, dir, 5)
	lines := bytes.SplitAfter(full, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty piece after the last newline
	lastTwo := len(full) - len(lines[len(lines)-1]) - len(lines[len(lines)-2])

	check := func(name string, content []byte, wantMin, wantMax int) {
		t.Helper()
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := OpenStateOptions(dir, "acct", Options{Now: (&testClock{t0}).Now})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer st.Close()
		n := 0
		for _, uid := range st.UIDs() {
			if e, _ := st.Lookup(uid); e.Status == StatusDelivered {
				n++
			}
		}
		if st.Len() < wantMin || st.Len() > wantMax || n < wantMin-1 {
			t.Errorf("%s: %d entries (%d delivered), want %d..%d", name, st.Len(), n, wantMin, wantMax)
		}
		if err := st.MarkDelivered([]string{"after"}, t0); err != nil {
			t.Fatalf("%s: append after recovery: %v", name, err)
		}
		st.Close()
		st2, err := OpenState(dir, "acct")
		if err != nil {
			t.Fatalf("%s: reopen after append: %v", name, err)
		}
		if !st2.Seen("after") || st2.TornBytes() != 0 {
			t.Errorf("%s: record appended after the cut was lost (torn %d)", name, st2.TornBytes())
		}
		st2.Close()
	}
	for cut := lastTwo; cut < len(full); cut++ {
		check(fmt.Sprintf("cut at %d", cut), full[:cut], 4, 5)
	}
	check("zeros", append(slices.Clone(full), make([]byte, 512)...), 5, 5)
	check("zeros and newline", append(slices.Clone(full), append(make([]byte, 100), '\n')...), 5, 5)
	check("half a record twice", append(slices.Clone(full), "0123abcd D\tx\n0123abcd D\ty"...), 5, 5)
}

// TestStateCorrupt: damage anywhere but the tail is refused with the path, the line and a hint.
func TestStateCorrupt(t *testing.T) {
	dir := t.TempDir()
	path, full := stateFile(t, dir, 4)
	lines := bytes.SplitAfter(full, []byte("\n"))

	flip := slices.Clone(full)
	mid := len(lines[0]) + len(lines[1]) + 12 // inside the second record
	flip[mid] ^= 0x20

	garbageMid := slices.Concat(lines[0], lines[1], []byte("this is not a record\n"), slices.Concat(lines[2:]...))

	cases := []struct {
		name    string
		content []byte
		line    int
		reason  string
	}{
		{"bad checksum in the middle", flip, 3, "checksum mismatch"},
		{"garbage line in the middle", garbageMid, 3, "malformed record"},
		{"garbage file", []byte("\x00\x01garbage\nmore garbage\n"), 1, "not a popfetch state file"},
		{"no header", []byte("popfetch"), 1, "no header line"},
		{"newer version", []byte("popfetch-state v2\n"), 1, "newer popfetch"},
		{"bad version", []byte("popfetch-state vX\n"), 1, "bad format version"},
	}
	for _, c := range cases {
		if err := os.WriteFile(path, c.content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := OpenState(dir, "acct")
		var ce *CorruptStateError
		if !errors.As(err, &ce) {
			t.Errorf("%s: OpenState = %v, want *CorruptStateError", c.name, err)
			continue
		}
		msg := err.Error()
		if ce.Line != c.line || !strings.Contains(msg, c.reason) || !strings.Contains(msg, fmt.Sprintf("%s:%d", path, c.line)) ||
			!strings.Contains(msg, "move it aside") || !errors.Is(err, ErrLocalIO) {
			t.Errorf("%s: error %q (line %d), want line %d and %q with the path and a hint", c.name, msg, ce.Line, c.line, c.reason)
		}
		// The file is left as it was, for the user to inspect.
		if now, _ := os.ReadFile(path); !bytes.Equal(now, c.content) {
			t.Errorf("%s: OpenState changed a corrupt file", c.name)
		}
	}
}

// TestStateReadsLaterV1Records: a later popfetch may append fields to a v1 record; this one reads
// them, and reads a header with words after the version.
func TestStateReadsLaterV1Records(t *testing.T) {
	dir := t.TempDir()
	rec := appendRecord(nil, record{op: 'D', uid: "u1", first: t0.Unix(), delivered: t0.Unix(), ref: "r"})
	// Re-checksum the record with one more field.
	payload := strings.TrimSuffix(string(rec[9:]), "\n") + "\tsomething-new"
	line := appendChecksummed(payload)
	content := "popfetch-state v1 written-by=popfetch-9.9\n" + line
	if err := os.WriteFile(filepath.Join(dir, "acct.state"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := OpenState(dir, "acct")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if e, ok := st.Lookup("u1"); !ok || e.Ref != "r" || e.Status != StatusDelivered {
		t.Errorf("u1 = %+v %v", e, ok)
	}
}

// appendChecksummed prefixes payload with its CRC-32C, as the journal writes it.
func appendChecksummed(payload string) string {
	return fmt.Sprintf("%08x %s\n", crc32c([]byte(payload)), payload)
}

func TestStateCompaction(t *testing.T) {
	dir := t.TempDir()
	st := openTestState(t, dir, &testClock{t0})
	// Many short-lived UIDLs: the journal is compacted on the way.
	for i := range 60 {
		var uids []string
		for j := range 100 {
			uids = append(uids, fmt.Sprintf("u%d-%d", i, j))
		}
		if err := st.MarkDelivered(uids, t0); err != nil {
			t.Fatal(err)
		}
		if err := st.Retain(uids[50:]); err != nil {
			t.Fatal(err)
		}
		if i < 59 {
			if err := st.Retain(nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st.Len() != 50 {
		t.Fatalf("Len = %d", st.Len())
	}
	fi, _ := os.Stat(st.Path())
	if fi.Size() > 1<<20 {
		t.Errorf("journal of 50 entries is %d bytes: not compacted", fi.Size())
	}
	if err := st.Compact(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(st.Path())
	if n := bytes.Count(data, []byte("\n")); n != 51 {
		t.Errorf("compacted file has %d lines, want 51", n)
	}
	if _, err := os.Stat(st.Path() + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary snapshot left behind: %v", err)
	}
	if err := st.MarkDelivered([]string{"x"}, t0); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openTestState(t, dir, &testClock{t0})
	if st.Len() != 51 || !st.Seen("u59-99") || !st.Seen("x") {
		t.Errorf("after reopen: %d entries", st.Len())
	}
}

func TestStateImport(t *testing.T) {
	st := openTestState(t, t.TempDir(), &testClock{t0})
	st.MarkDelivered([]string{"known"}, t0.Add(time.Hour))
	at := t0.Add(-time.Hour)
	n, err := st.Import([]ImportedUID{{UID: "a"}, {UID: "b", At: t0.Add(-48 * time.Hour)}, {UID: "a"}, {UID: "known"}}, at)
	if err != nil || n != 2 {
		t.Fatalf("Import = %d, %v", n, err)
	}
	if fs, _ := st.FirstSeen("a"); !fs.Equal(at) {
		t.Errorf("FirstSeen(a) = %v", fs)
	}
	if fs, _ := st.FirstSeen("b"); !fs.Equal(t0.Add(-48 * time.Hour)) {
		t.Errorf("FirstSeen(b) = %v", fs)
	}
	if fs, _ := st.FirstSeen("known"); !fs.Equal(t0.Add(time.Hour)) {
		t.Errorf("Import changed a known UIDL: %v", fs)
	}
}

func TestStateInvalidAccount(t *testing.T) {
	for _, a := range []string{"", "../x", "a/b", ".hidden"} {
		if _, err := OpenState(t.TempDir(), a); err == nil {
			t.Errorf("OpenState(%q) succeeded", a)
		}
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
