package store

import (
	"os"
	"strings"
	"testing"
)

// TestStateOversize: MarkOversize survives reopening and compaction, is forgotten by Retain when the
// message is gone and by delivery, and is written as a readable O record.
func TestStateOversize(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenState(dir, "acct")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.MarkOversize("big one", 1_065_537); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkOversize("other", 2_000_000); err != nil {
		t.Fatal(err)
	}
	if n, ok := st.Oversize("big one"); !ok || n != 1_065_537 {
		t.Errorf("Oversize = %d, %v", n, ok)
	}
	if st.Seen("big one") {
		t.Error("an oversize UIDL counts as seen: delete mode would delete it as already delivered")
	}
	st.Close()
	data, err := os.ReadFile(st.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), " O\tbig%20one\t1065537\n") {
		t.Errorf("no O record in\n%s", data)
	}

	st, err = OpenState(dir, "acct")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := st.Oversize("big one"); !ok || n != 1_065_537 {
		t.Errorf("after reopening: Oversize = %d, %v", n, ok)
	}
	if err := st.Compact(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = OpenState(dir, "acct")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, ok := st.Oversize("big one"); !ok || n != 1_065_537 {
		t.Errorf("after compaction: Oversize = %d, %v", n, ok)
	}
	if err := st.Retain([]string{"other"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Oversize("big one"); ok {
		t.Error("Retain kept an oversize UIDL gone from the server")
	}
	if err := st.MarkDelivered([]string{"other"}, st.now()); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Oversize("other"); ok {
		t.Error("a delivered UIDL is still oversize")
	}
}
