package store

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/popfetch/popfetch/internal/fsutil"
)

// TestStateWindowsWay runs the compaction and torn-tail tests with the journal handled as on Windows
// (state_platform.go): closed before the snapshot is renamed over it, truncated through its path.
// Not parallel: it sets package variables.
func TestStateWindowsWay(t *testing.T) {
	renameNeedsClose, truncateByPath = true, true
	defer func() { renameNeedsClose, truncateByPath = runtime.GOOS == "windows", runtime.GOOS == "windows" }()
	t.Run("compaction", TestStateCompaction)
	t.Run("torn tail", TestStateTornTail)
	t.Run("round trip", TestStateRoundTrip)

	// A compaction that fails after the journal was closed: further writes are refused (exit 74),
	// Close succeeds, and the file still holds everything acknowledged.
	t.Run("failed compaction", func(t *testing.T) {
		dir := t.TempDir()
		st, err := OpenState(dir, "acct")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.MarkDelivered([]string{"a", "b"}, t0); err != nil {
			t.Fatal(err)
		}
		writeSnapshotFile = func(string, []byte, os.FileMode) error { return errors.New("disk full") }
		err = st.Compact()
		writeSnapshotFile = fsutil.WriteFileAtomic
		if err == nil {
			t.Fatal("a failing compaction succeeded")
		}
		if err := st.MarkDelivered([]string{"c"}, t0); err == nil {
			t.Error("a write after a failed compaction succeeded")
		}
		if err := st.Close(); err != nil {
			t.Errorf("Close after a failed compaction: %v", err)
		}
		st, err = OpenState(dir, "acct")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if st.Len() != 2 || !st.Seen("a") || st.Seen("c") {
			t.Errorf("reopened: %v", st.UIDs())
		}
	})
}
