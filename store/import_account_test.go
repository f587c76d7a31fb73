package store

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Issue 17.4: an import checks what the file says about its account, and the state remembers that
// the UIDLs were imported.

func TestCheckGetmailName(t *testing.T) {
	for _, c := range []struct {
		name, user, host string
		ok               bool
	}{
		{"oldmail-pop.example.org-995-alice", "alice", "pop.example.org", true},
		{"oldmail-POP.Example.org-110-alice", "alice", "pop.example.org", true}, // host names ignore case; any port
		{"oldmail-pop.example.org-995-alice@example.org", "alice@example.org", "pop.example.org", true},
		{"oldmail-mail-1.example.org-995-bob-smith", "bob-smith", "mail-1.example.org", true},
		{"oldmail-pop.example.org-995-dom-alice", `dom\alice`, "pop.example.org", true},   // getmail6 strips \ / : ; < > |
		{"oldmail-pop.example.org-995-dom-alice", "dom/:alice", "pop.example.org", true},  // runs become one '-'
		{"oldmail-pop.example.org-995-dom--alice", "dom/:alice", "pop.example.org", true}, // getmail 5: one '-' each
		{"oldmail-2001-db8--1-995-alice", "alice", "2001:db8::1", true},
		{"oldmail-pop.example.org-995-alice", "Alice", "pop.example.org", false}, // user names are exact
		{"oldmail-pop.example.org-995-bob", "alice", "pop.example.org", false},
		{"oldmail-pop.example.net-995-alice", "alice", "pop.example.org", false},
		{"oldmail-pop.example.org-alice", "alice", "pop.example.org", false}, // no port
		{"oldmail-pop.example.org-99999-alice", "alice", "pop.example.org", false},
		{"oldmail-xpop.example.org-995-alice", "alice", "pop.example.org", false},
		{"uids.txt", "alice", "pop.example.org", false}, // says nothing about its account
	} {
		err := CheckGetmailName(c.name, c.user, c.host)
		if (err == nil) != c.ok {
			t.Errorf("CheckGetmailName(%q, %q, %q) = %v, want ok=%v", c.name, c.user, c.host, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--force") {
			t.Errorf("%q: the error does not say how to import anyway: %v", c.name, err)
		}
	}
}

func TestReadImportRefusesAnotherAccount(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	alice := ImportOptions{User: "alice", Host: "pop.example.org"}
	force := alice
	force.Force = true
	getmail := write("oldmail-pop.example.org-995-bob", "u1\x001700000000\nu2\x001700000001\n")
	fetchids := write("fetchids", "bob@pop.example.org u1\nbob@pop.example.org u2\n")
	fetchids2 := write("fetchids2", "bob@pop.example.org u1\ncarol@pop.example.org u2\n")
	mpop := write("uidls", " 2 pop.example.org bob\nu1\nu2\n")
	for _, c := range []struct {
		name, kind, path string
		opts             ImportOptions
		want             []string // nil: an *ImportAccountError
	}{
		{"getmail of bob", ImportGetmail, getmail, alice, nil},
		{"getmail of bob, forced", ImportGetmail, getmail, force, []string{"u1", "u2"}},
		{"fetchmail of bob", ImportFetchmail, fetchids, alice, nil},
		{"fetchmail of bob, forced", ImportFetchmail, fetchids, force, []string{"u1", "u2"}},
		{"fetchmail of bob and carol, forced", ImportFetchmail, fetchids2, force, nil}, // which one?
		{"mpop of bob", ImportMpop, mpop, alice, nil},
		{"mpop of bob, forced", ImportMpop, mpop, force, []string{"u1", "u2"}},
	} {
		ids, err := ReadImport(c.kind, c.path, c.opts)
		if c.want == nil {
			var ae *ImportAccountError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), "alice@pop.example.org") ||
				strings.Count(err.Error(), "--force") != 1 {
				t.Errorf("%s: %v, want an *ImportAccountError naming the file, alice@pop.example.org and --force once", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := uidsOf(ids); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		for _, id := range ids {
			if id.From != c.kind {
				t.Errorf("%s: From = %q, want %q", c.name, id.From, c.kind)
			}
		}
	}
}

// TestStateRemembersImported: imported UIDLs stay marked as imported across reopening and
// compaction, and stop being so once popfetch delivers the message itself (fetch_all).
func TestStateRemembersImported(t *testing.T) {
	dir := t.TempDir()
	st := openTestState(t, dir, &testClock{t0})
	if err := st.MarkDelivered([]string{"mine"}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import([]ImportedUID{{UID: "theirs", From: ImportGetmail}, {UID: "anon"}, {UID: "mine", From: ImportMpop}}, t0); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for uid, want := range map[string]string{"mine": "", "theirs": ImportGetmail, "anon": "import"} {
			e, ok := st.Lookup(uid)
			if !ok || e.Imported != want || st.Imported(uid) != (want != "") || e.Status != StatusDelivered {
				t.Errorf("%s: %s = %+v, %v; want imported %q", when, uid, e, ok, want)
			}
		}
	}
	check("after Import")
	st.Close()
	st = openTestState(t, dir, &testClock{t0})
	check("after reopening")
	if err := st.Compact(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openTestState(t, dir, &testClock{t0})
	check("after compaction")

	// fetch_all retrieves it: popfetch has delivered it now.
	if err := st.RecordPending([]Pending{{UID: "theirs", Ref: "r"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkDelivered([]string{"theirs", "anon"}, t0); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openTestState(t, dir, &testClock{t0})
	for _, uid := range []string{"theirs", "anon"} {
		if st.Imported(uid) {
			t.Errorf("%s is still imported after popfetch delivered it", uid)
		}
	}
}

// TestStateImportedIsAV1Addition: the provenance is one more field at the end of a v1 D record
// (which earlier v1 readers ignore), and only imported records carry it.
func TestStateImportedIsAV1Addition(t *testing.T) {
	dir := t.TempDir()
	st := openTestState(t, dir, &testClock{t0})
	st.MarkDelivered([]string{"mine"}, t0)
	st.Import([]ImportedUID{{UID: "theirs", From: ImportFetchmail}}, t0)
	st.Close()
	data, err := os.ReadFile(filepath.Join(dir, "acct.state"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if lines[0] != "popfetch-state v1" || len(lines) != 3 {
		t.Fatalf("state file:\n%s", data)
	}
	for _, l := range lines[1:] {
		f := strings.Split(l[9:], "\t")
		switch f[1] {
		case "mine":
			if len(f) != 5 {
				t.Errorf("popfetch's own record has %d fields: %q", len(f), l)
			}
		case "theirs":
			if len(f) != 6 || f[5] != ImportFetchmail {
				t.Errorf("imported record %q: want 6 fields ending in %q", l, ImportFetchmail)
			}
		}
	}
}
