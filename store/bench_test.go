package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Benchmarks for docs/BENCHMARKS.md ("store"):
//
//	go test -run '^$' -bench . -benchtime 3x ./store/

const (
	benchMessages = 1000
	benchSize     = 4 << 10
	benchBatch    = 100
	benchUIDLs    = 100_000
)

// benchMessage is a 4 KiB message with CRLF line ends, as it comes off the wire.
var benchMessage = func() string {
	var b strings.Builder
	b.WriteString("From: a@example.org\r\nTo: b@example.org\r\nSubject: benchmark\r\n\r\n")
	for b.Len() < benchSize-80 {
		b.WriteString("0123456789012345678901234567890123456789012345678901234567890123456789012\r\n")
	}
	return b.String()
}()

// BenchmarkMaildirBatch delivers 1,000 × 4 KiB messages durably in batches of 100 (syncfs, rename,
// fsync new/ per batch), with and without the state journal of the exactly-once order, and, for
// comparison, the naive durable order with two fsyncs per message.
func BenchmarkMaildirBatch(b *testing.B) {
	for _, withState := range []bool{false, true} {
		name := "maildir-only"
		if withState {
			name = "with-state"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				md, err := NewMaildir(filepath.Join(dir, "Maildir"), MaildirOptions{ReceivedHeader: true})
				if err != nil {
					b.Fatal(err)
				}
				var st *State
				var journal func([]Pending) error
				if withState {
					if st, err = OpenState(filepath.Join(dir, "state"), "bench"); err != nil {
						b.Fatal(err)
					}
					journal = st.RecordPending
				}
				b.StartTimer()
				deliverAll(b, md, st, journal)
				b.StopTimer()
				md.Close()
				if st != nil {
					st.Close()
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(benchMessages*b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.SetBytes(benchMessages * benchSize)
		})
	}
	b.Run("naive-fsync-per-message", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			md, err := NewMaildir(filepath.Join(b.TempDir(), "Maildir"), MaildirOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			for i := range benchMessages {
				tmp := filepath.Join(md.Path(), "tmp", fmt.Sprint(i))
				f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					b.Fatal(err)
				}
				f.WriteString(benchMessage)
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				f.Close()
				if err := os.Rename(tmp, filepath.Join(md.Path(), "new", fmt.Sprint(i))); err != nil {
					b.Fatal(err)
				}
				if err := syncDir(filepath.Join(md.Path(), "new")); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			md.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(benchMessages*b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.SetBytes(benchMessages * benchSize)
	})
}

// deliverAll runs the engine's order for benchMessages messages.
func deliverAll(b *testing.B, md *Maildir, st *State, journal func([]Pending) error) {
	ctx := context.Background()
	for i := 0; i < benchMessages; i += benchBatch {
		uids := make([]string, 0, benchBatch)
		for j := i; j < i+benchBatch; j++ {
			uid := fmt.Sprintf("UID%08d", j)
			if _, err := md.Deliver(ctx, Envelope{UID: uid, Host: "pop.example.org", Account: "bench"}, strings.NewReader(benchMessage)); err != nil {
				b.Fatal(err)
			}
			uids = append(uids, uid)
		}
		if err := md.Commit(ctx, journal); err != nil {
			b.Fatal(err)
		}
		if st != nil {
			if err := st.MarkDelivered(uids, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchUID is a realistic UIDL (Dovecot's default is 8+8 hex digits).
func benchUID(i int) string { return fmt.Sprintf("%08x%08x", 0x5f000000+i/7, i) }

// benchStateDir writes a compacted state of benchUIDLs delivered UIDLs with maildir refs.
func benchStateDir(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	st, err := OpenState(dir, "bench")
	if err != nil {
		b.Fatal(err)
	}
	ps := make([]Pending, benchUIDLs)
	uids := make([]string, benchUIDLs)
	for i := range ps {
		uids[i] = benchUID(i)
		ps[i] = Pending{UID: uids[i], Ref: fmt.Sprintf("17%08d.M%06dP%dQ%dR%016x.host.example.org", i, i%1000000, 4242, i, i*7919)}
	}
	if err := st.RecordPending(ps); err != nil {
		b.Fatal(err)
	}
	if err := st.MarkDelivered(uids, time.Now()); err != nil {
		b.Fatal(err)
	}
	if err := st.Compact(); err != nil {
		b.Fatal(err)
	}
	st.Close()
	return dir
}

// BenchmarkState100k measures the state with 100,000 UIDLs: loading it (OpenState), saving it (a
// compaction: snapshot, fsync, rename, fsync dir), one batch's updates (RecordPending + MarkDelivered
// of 100 new UIDLs), MarkDelivered of all 100,000 at once, and Retain after a listing of 100,000.
func BenchmarkState100k(b *testing.B) {
	dir := benchStateDir(b)
	fi, err := os.Stat(filepath.Join(dir, "bench.state"))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("state file: %d UIDLs, %d bytes", benchUIDLs, fi.Size())

	b.Run("load", func(b *testing.B) {
		for b.Loop() {
			st, err := OpenState(dir, "bench")
			if err != nil {
				b.Fatal(err)
			}
			if st.Len() != benchUIDLs {
				b.Fatal(st.Len())
			}
			st.Close()
		}
	})
	st, err := OpenState(dir, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.Run("save", func(b *testing.B) {
		for b.Loop() {
			if err := st.Compact(); err != nil {
				b.Fatal(err)
			}
		}
	})
	n := 0
	b.Run("batch-of-100", func(b *testing.B) {
		for b.Loop() {
			ps := make([]Pending, benchBatch)
			uids := make([]string, benchBatch)
			for i := range ps {
				n++
				uids[i] = fmt.Sprintf("new%08d", n)
				ps[i] = Pending{UID: uids[i], Ref: uids[i] + ".ref"}
			}
			if err := st.RecordPending(ps); err != nil {
				b.Fatal(err)
			}
			if err := st.MarkDelivered(uids, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	all := make([]string, benchUIDLs)
	for i := range all {
		all[i] = benchUID(i)
	}
	b.Run("mark-delivered-100k", func(b *testing.B) {
		for b.Loop() {
			// Pending first, so that MarkDelivered has 100,000 records to write.
			b.StopTimer()
			ps := make([]Pending, len(all))
			for i, u := range all {
				ps[i] = Pending{UID: u, Ref: "r"}
			}
			if err := st.RecordPending(ps); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := st.MarkDelivered(all, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("retain-100k", func(b *testing.B) {
		for b.Loop() {
			if err := st.Retain(all); err != nil {
				b.Fatal(err)
			}
		}
	})
}
