package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzStateRecord: any UIDL and ref survive a record's encoding.
func FuzzStateRecord(f *testing.F) {
	f.Add("uid-1", "1700000000.M1P2Q3R4.host", int64(1700000000))
	f.Add("with space\tand%", "", int64(0))
	f.Add("\x00\n\r\xff", "ref\n", int64(-5))
	f.Fuzz(func(t *testing.T, uid, ref string, sec int64) {
		if uid == "" || sec < 0 || sec > 253402300799 { // year 9999
			return
		}
		for _, op := range []byte{'P', 'D', 'F'} {
			in := record{op: op, uid: uid, first: sec, delivered: sec, ref: ref}
			line := appendRecord(nil, in)
			out, err := parseRecord(line[:len(line)-1])
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if out.uid != uid || (op != 'F' && (out.ref != ref || out.first != sec)) {
				t.Fatalf("%q -> %+v, want %+v", line, out, in)
			}
		}
	})
}

// FuzzStateLoad: whatever the file holds, OpenState does not panic; it either refuses the file with
// a *CorruptStateError or loads it, and then a compaction and a reload give the same UIDLs.
func FuzzStateLoad(f *testing.F) {
	good := "popfetch-state v1\n" + string(appendRecord(nil, record{op: 'D', uid: "a", first: 1, delivered: 2, ref: "r"})) +
		string(appendRecord(nil, record{op: 'P', uid: "b", first: 1, ref: "s"}))
	f.Add([]byte(good))
	f.Add([]byte(good[:len(good)-3]))
	f.Add([]byte("popfetch-state v1\n00000000 F\tx\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "acct.state"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := OpenState(dir, "acct")
		if err != nil {
			var ce *CorruptStateError
			if !errors.As(err, &ce) {
				t.Fatalf("OpenState: %v (%T), want *CorruptStateError", err, err)
			}
			return
		}
		before := st.UIDs()
		if err := st.Compact(); err != nil {
			t.Fatal(err)
		}
		st.Close()
		st, err = OpenState(dir, "acct")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		after := st.UIDs()
		if len(before) != len(after) {
			t.Fatalf("UIDLs %q became %q", before, after)
		}
		for i := range before {
			if before[i] != after[i] {
				t.Fatalf("UIDLs %q became %q", before, after)
			}
		}
	})
}
