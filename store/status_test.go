package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRecordRun: the status file after a sequence of runs — what `popfetch status` shows.
func TestRecordRun(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	if st, err := ReadStatus(dir, "work"); st != nil || err != nil {
		t.Fatalf("before any run: %v, %v", st, err)
	}
	run := func(at time.Time, result string, code, fetched int) {
		t.Helper()
		r := Run{Start: at.Add(-time.Second), End: at, Result: result, ExitCode: code, Fetched: fetched, Bytes: int64(fetched) * 100,
			KeptOnServer: -1}
		if code != 0 {
			r.Error = "boom"
		}
		if err := RecordRun(dir, "work", r); err != nil {
			t.Fatal(err)
		}
	}
	run(t0, RunOK, 0, 5)
	run(t0.Add(time.Hour), RunTemporary, 75, 0)
	run(t0.Add(2*time.Hour), RunFailed, 77, 0)
	run(t0.Add(3*time.Hour), RunDeferred, 0, 0)
	run(t0.Add(20*time.Hour), RunOK, 0, 2)
	run(t0.Add(20*time.Hour+time.Minute), RunOK, 0, 1) // same 10-minute bucket
	st, err := ReadStatus(dir, "work")
	if err != nil || st == nil {
		t.Fatal(st, err)
	}
	if st.LastResult != RunOK || st.ConsecutiveFailures != 0 || st.FetchedTotal != 8 || st.BytesTotal != 800 ||
		!st.LastSuccess.Equal(t0.Add(20*time.Hour+time.Minute)) || st.LastFetched != 1 || len(st.Recent) != 2 {
		t.Fatalf("%+v", st)
	}
	if n := st.Fetched24h(t0.Add(21 * time.Hour)); n != 8 {
		t.Errorf("fetched in 24 h at +21h: %d, want 8", n)
	}
	if n := st.Fetched24h(t0.Add(25 * time.Hour)); n != 3 {
		t.Errorf("fetched in 24 h at +25h: %d, want 3", n)
	}
	// Failures count until the next success; a deferred run changes nothing.
	run(t0.Add(21*time.Hour), RunTemporary, 75, 0)
	run(t0.Add(22*time.Hour), RunDeferred, 0, 0)
	run(t0.Add(23*time.Hour), RunFailed, 77, 0)
	st, _ = ReadStatus(dir, "work")
	if st.ConsecutiveFailures != 2 || st.LastExitCode != 77 || st.LastError != "boom" || !st.LastSuccess.Equal(t0.Add(20*time.Hour+time.Minute)) {
		t.Errorf("after two failures: %+v", st)
	}
	// Old buckets are dropped: the file stays small.
	run(t0.Add(50*time.Hour), RunOK, 0, 0)
	st, _ = ReadStatus(dir, "work")
	if len(st.Recent) != 0 {
		t.Errorf("buckets older than 24 h kept: %+v", st.Recent)
	}
	fi, err := os.Stat(StatusPath(dir, "work"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("status file mode: %v, %v", fi, err)
	}
	if _, err := os.Stat(StatusPath(dir, "work") + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

// TestRecordRunCompacts: the file is rewritten as one snapshot once it has grown, with the same
// totals.
func TestRecordRunCompacts(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Hour)
	n := 0
	for fi, _ := os.Stat(StatusPath(dir, "work")); n < 2000 && (fi == nil || fi.Size() >= int64(n)*100); n++ {
		if err := RecordRun(dir, "work", Run{End: t0.Add(time.Duration(n) * time.Second), Result: RunOK, Fetched: 1, KeptOnServer: -1}); err != nil {
			t.Fatal(err)
		}
		fi, _ = os.Stat(StatusPath(dir, "work"))
	}
	fi, _ := os.Stat(StatusPath(dir, "work"))
	if n == 2000 || fi.Size() > statusCompactSize {
		t.Fatalf("not compacted after %d runs: %d bytes", n, fi.Size())
	}
	st, err := ReadStatus(dir, "work")
	if err != nil || st.FetchedTotal != int64(n) || st.Fetched24h(time.Now()) != n {
		t.Errorf("after compaction (%d runs): %+v, %v", n, st, err)
	}
}

// TestReadStatusDamaged: an unreadable status file is an error naming it (status says so), a newer
// format is refused, and the next run starts it again.
func TestReadStatusDamaged(t *testing.T) {
	dir := t.TempDir()
	path := StatusPath(dir, "work")
	os.WriteFile(path, nil, 0o600) // what a power cut may leave
	if st, err := ReadStatus(dir, "work"); st != nil || err != nil {
		t.Errorf("empty file: %+v, %v", st, err)
	}
	if err := RecordRun(dir, "work", Run{End: time.Now(), Result: RunOK, Fetched: 2, KeptOnServer: 3}); err != nil {
		t.Fatal(err)
	}
	// A torn last line (no newline) is skipped, and does not swallow the next run.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"v":1,"run":{"start":"2026-`)
	f.Close()
	if err := RecordRun(dir, "work", Run{End: time.Now(), Result: RunTemporary, ExitCode: 75, Fetched: 1, KeptOnServer: 3}); err != nil {
		t.Fatal(err)
	}
	if st, err := ReadStatus(dir, "work"); err != nil || st.KeptOnServer == nil || *st.KeptOnServer != 3 || st.FetchedTotal != 3 ||
		st.LastResult != RunTemporary || st.ConsecutiveFailures != 1 {
		t.Errorf("after a torn line and two runs: %+v, %v", st, err)
	}
	os.WriteFile(path, []byte(`{"v": 2, "run": {}}`+"\n"), 0o600)
	if _, err := ReadStatus(dir, "work"); err == nil || !strings.Contains(err.Error(), "newer popfetch") || !strings.Contains(err.Error(), path) {
		t.Errorf("newer format: %v", err)
	}
	// A symbolic link planted as the status file is not followed.
	target := filepath.Join(t.TempDir(), "target")
	os.WriteFile(target, []byte("{}"), 0o600)
	os.Remove(path)
	if err := os.Symlink(target, path); err == nil {
		if _, err := ReadStatus(dir, "work"); err == nil {
			t.Errorf("a symbolic link was followed")
		}
	}
}

// BenchmarkRecordRun: what recording a run's status costs a sync (read, update, write, rename; no
// fsync), with a day of buckets in the file.
func BenchmarkRecordRun(b *testing.B) {
	dir := b.TempDir()
	t0 := time.Now().Add(-24 * time.Hour)
	for i := range 144 {
		RecordRun(dir, "work", Run{End: t0.Add(time.Duration(i) * 10 * time.Minute), Result: RunOK, Fetched: 1, KeptOnServer: -1})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := RecordRun(dir, "work", Run{End: time.Now(), Result: RunOK, Fetched: 1, KeptOnServer: -1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStateAppend is the comparison for BenchmarkRecordRun: one record appended to the state
// journal and fsync'd, which every batch of a sync already does several times.
func BenchmarkStateAppend(b *testing.B) {
	st, err := OpenState(b.TempDir(), "work")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := st.SetLoginDelayUntil(time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}
