package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	gombox "github.com/emersion/go-mbox"
)

func dstEnv(uid string) Envelope {
	return Envelope{Account: "work", User: "alice", Host: "pop.example.org", UID: uid,
		Received: time.Date(2026, 11, 23, 9, 5, 7, 0, time.UTC)}
}

func openMbox(t *testing.T, path string, opts MboxOptions) *Mbox {
	t.Helper()
	m, err := NewMbox(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func dstDeliver(t *testing.T, d Destination, uid, msg string) Pending {
	t.Helper()
	p, err := d.Deliver(context.Background(), dstEnv(uid), strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dstReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mboxMessages(t *testing.T, path string) []string {
	t.Helper()
	msgs, err := SplitMboxrd(bytes.NewReader(dstReadFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	s := make([]string, len(msgs))
	for i, m := range msgs {
		s[i] = string(m)
	}
	return s
}

const (
	msgQuoting = "Return-Path: <bob@example.org>\nSubject: quoting\n\nFrom x\n>From x\n>>From x\n"
	msgNoEOL   = "Subject: no final newline\n\nlast line"
)

func TestMboxDeliverCommit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	path := filepath.Join(dir, "inbox")
	m := openMbox(t, path, MboxOptions{})
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v", fi.Mode(), err)
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Errorf("no dotlock while open: %v", err)
	}

	p1 := dstDeliver(t, m, "u1", msgQuoting)
	p2 := dstDeliver(t, m, "u2", msgNoEOL)
	if n := len(dstReadFile(t, path)); n != 0 {
		t.Fatalf("mbox has %d bytes before Commit", n)
	}
	var journaled []Pending
	err := m.Commit(context.Background(), func(ps []Pending) error {
		if n := len(dstReadFile(t, path)); n != 0 {
			t.Errorf("mbox has %d bytes when journal runs", n)
		}
		journaled = ps
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(journaled) != 2 || journaled[0] != p1 || journaled[1] != p2 || p1.UID != "u1" || !strings.HasPrefix(p1.Ref, "mbox:0:") {
		t.Fatalf("journal got %+v; Deliver returned %+v %+v", journaled, p1, p2)
	}
	got := mboxMessages(t, path)
	if len(got) != 2 || got[0] != msgQuoting || got[1] != msgNoEOL {
		t.Fatalf("mbox holds %q", got)
	}
	if !bytes.HasPrefix(dstReadFile(t, path), []byte("From bob@example.org Mon Nov 23 09:05:07 2026\n")) {
		t.Errorf("separator: %q", dstReadFile(t, path)[:60])
	}
	vis, err := m.Resolve([]string{p1.Ref, p2.Ref})
	if err != nil || !vis[p1.Ref] || !vis[p2.Ref] {
		t.Errorf("Resolve = %v, %v", vis, err)
	}

	// A second batch, with the Received header, after reopening: appended after the first.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dotlock left after Close: %v", err)
	}
	m = openMbox(t, path, MboxOptions{ReceivedHeader: true})
	dstDeliver(t, m, "u3", "Subject: crlf\r\n\r\nline\r\n")
	if err := m.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	got = mboxMessages(t, path)
	want := ReceivedHeader(dstEnv("u3")) + "Subject: crlf\n\nline\n"
	if len(got) != 3 || got[2] != want {
		t.Fatalf("third message %q, want %q", got[2:], want)
	}
}

func TestMboxFailedDeliverLeavesFileIdentical(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inbox")
	m := openMbox(t, path, MboxOptions{})
	dstDeliver(t, m, "u1", msgQuoting)
	if err := m.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	before := dstReadFile(t, path)

	boom := errors.New("connection reset mid-RETR")
	body := io.MultiReader(strings.NewReader("Subject: half\n\n"+strings.Repeat("From x\n", 20000)), iotest.ErrReader(boom))
	_, err := m.Deliver(context.Background(), dstEnv("u2"), body)
	var ioe *IOError
	if !errors.Is(err, boom) || errors.As(err, &ioe) {
		t.Fatalf("Deliver error = %v, want the stream's error, not an IOError", err)
	}
	if err := m.Commit(context.Background(), func([]Pending) error { t.Error("journal called for a failed message"); return nil }); err != nil {
		t.Fatal(err)
	}
	if after := dstReadFile(t, path); !bytes.Equal(before, after) {
		t.Fatalf("mbox changed by a failed delivery: %d -> %d bytes", len(before), len(after))
	}
	// The next message lands right after the first, whole.
	dstDeliver(t, m, "u3", msgNoEOL)
	if err := m.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := mboxMessages(t, path); len(got) != 2 || got[1] != msgNoEOL {
		t.Fatalf("mbox holds %q", got)
	}

	// A cancelled context stops a delivery the same way.
	before = dstReadFile(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Deliver(ctx, dstEnv("u4"), strings.NewReader("x\n")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Deliver: %v", err)
	}
	if err := m.Commit(context.Background(), nil); err != nil || !bytes.Equal(before, dstReadFile(t, path)) {
		t.Fatalf("cancelled delivery changed the mbox (%v)", err)
	}
}

func TestMboxAbortAndJournalFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inbox")
	m := openMbox(t, path, MboxOptions{})
	dstDeliver(t, m, "u1", msgQuoting)
	if err := m.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	before := dstReadFile(t, path)
	dstDeliver(t, m, "u2", "Subject: aborted\n\n")
	if err := m.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(context.Background(), func([]Pending) error { t.Error("journal after Abort"); return nil }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, dstReadFile(t, path)) {
		t.Fatal("Abort left bytes in the mbox")
	}

	// A failing journal: nothing becomes visible.
	dstDeliver(t, m, "u3", "Subject: unjournaled\n\n")
	jerr := errors.New("state unwritable")
	if err := m.Commit(context.Background(), func([]Pending) error { return jerr }); !errors.Is(err, jerr) {
		t.Fatalf("Commit = %v", err)
	}
	if !bytes.Equal(before, dstReadFile(t, path)) {
		t.Fatal("a failed journal let the batch into the mbox")
	}
	if err := m.Abort(); err != nil {
		t.Fatal(err)
	}
	dstDeliver(t, m, "u4", msgNoEOL)
	if err := m.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := mboxMessages(t, path); len(got) != 2 || got[0] != msgQuoting || got[1] != msgNoEOL {
		t.Fatalf("mbox holds %q", got)
	}
}

// TestMboxResolveAfterCrash plays the states a crash can leave between the journal and the end of
// the append: nothing appended, half appended, all appended, and somebody else's mail after ours.
func TestMboxResolveAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inbox")
	m := openMbox(t, path, MboxOptions{})
	dstDeliver(t, m, "u0", msgQuoting)
	if err := m.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	base := dstReadFile(t, path)
	p1 := dstDeliver(t, m, "u1", "Subject: one\n\n"+strings.Repeat("x", 1000)+"\n")
	p2 := dstDeliver(t, m, "u2", "Subject: two\n\nbody\n")
	if err := m.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	full := dstReadFile(t, path)
	m.Close()
	refs := []string{p1.Ref, p2.Ref}

	resolve := func(content []byte) (map[string]bool, []byte) {
		t.Helper()
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		m := openMbox(t, path, MboxOptions{})
		vis, err := m.Resolve(refs)
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		return vis, dstReadFile(t, path)
	}

	// Killed before the append: nothing visible, file unchanged.
	if vis, after := resolve(base); vis[p1.Ref] || vis[p2.Ref] || !bytes.Equal(after, base) {
		t.Errorf("nothing appended: %v, %d bytes", vis, len(after))
	}
	// Killed in the middle of the first message: cut back to where the batch began.
	if vis, after := resolve(full[:len(base)+300]); vis[p1.Ref] || vis[p2.Ref] || !bytes.Equal(after, base) {
		t.Errorf("half of the first: %v, %d bytes (base %d)", vis, len(after), len(base))
	}
	// Killed in the middle of the second: the first is in, the second is cut off.
	cut := len(full) - 5
	vis, after := resolve(full[:cut])
	if !vis[p1.Ref] || vis[p2.Ref] {
		t.Errorf("half of the second: %v", vis)
	}
	if got, _ := SplitMboxrd(bytes.NewReader(after)); len(got) != 2 || !strings.HasPrefix(string(got[1]), "Subject: one") {
		t.Errorf("half of the second: mbox holds %q", got)
	}
	// All appended (killed before the state recorded it): both visible, not fetched again.
	if vis, after := resolve(full); !vis[p1.Ref] || !vis[p2.Ref] || !bytes.Equal(after, full) {
		t.Errorf("all appended: %v", vis)
	}
	// Half appended, then another program appended its own message: ours is not visible, theirs
	// stays.
	foreign := append(append([]byte{}, full[:cut]...), "\n\nFrom other Mon Nov 23 10:00:00 2026\nSubject: theirs\n\n"...)
	if vis, after := resolve(foreign); vis[p2.Ref] || !bytes.Equal(after, foreign) {
		t.Errorf("foreign tail: %v, changed %v", vis, !bytes.Equal(after, foreign))
	}
	if vis, err := (openMbox(t, path, MboxOptions{})).Resolve([]string{"123.M1P2.host"}); err != nil || vis["123.M1P2.host"] {
		t.Errorf("a maildir reference: %v, %v", vis, err)
	}
}

func TestMboxAppendsAfterForeignTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inbox")
	if err := os.WriteFile(path, []byte("From a Mon Nov 23 10:00:00 2026\nSubject: cut short"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := openMbox(t, path, MboxOptions{})
	p := dstDeliver(t, m, "u1", msgQuoting)
	if err := m.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	got := mboxMessages(t, path)
	if len(got) != 2 || got[1] != msgQuoting {
		t.Fatalf("mbox holds %q", got)
	}
	if vis, err := m.Resolve([]string{p.Ref}); err != nil || !vis[p.Ref] {
		t.Errorf("Resolve = %v %v", vis, err)
	}
}

func TestMboxLocking(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inbox")
	short := MboxOptions{LockTimeout: 50 * time.Millisecond}

	m := openMbox(t, path, MboxOptions{})
	var le *MboxLockedError
	_, err := NewMbox(path, short)
	if !errors.As(err, &le) || le.Lock != "dotlock" || !errors.Is(err, ErrTemporary) {
		t.Fatalf("second writer: %v", err)
	}
	// Without the dotlock (a program that only uses fcntl), the fcntl lock still excludes.
	if err := os.Rename(path+".lock", path+".lock.aside"); err != nil {
		t.Fatal(err)
	}
	_, err = NewMbox(path, short)
	if !errors.As(err, &le) || le.Lock != "fcntl" {
		t.Fatalf("second writer without dotlock: %v", err)
	}
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed NewMbox left its dotlock behind: %v", err)
	}
	os.Rename(path+".lock.aside", path+".lock")

	// A waiting writer gets the mbox once the first closes.
	done := make(chan error, 1)
	go func() {
		m2, err := NewMbox(path, MboxOptions{LockTimeout: time.Minute})
		if err == nil {
			err = m2.Close()
		}
		done <- err
	}()
	m.Close()
	if err := <-done; err != nil {
		t.Fatalf("waiting writer: %v", err)
	}

	// A fresh foreign dotlock excludes, whether it names no pid (mutt) or a live one; a stale one is
	// removed, and so is one naming a process that has died (a popfetch killed with -9).
	for _, content := range []string{"", fmt.Sprintf("%d\n", os.Getppid())} {
		if err := os.WriteFile(path+".lock", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := NewMbox(path, short); !errors.As(err, &le) {
			t.Fatalf("fresh foreign dotlock %q: %v", content, err)
		}
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".lock", []byte(fmt.Sprintf("%d\n", dead.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	m = openMbox(t, path, short)
	m.Close()
	if err := os.WriteFile(path+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-10 * time.Minute)
	os.Chtimes(path+".lock", old, old)
	m = openMbox(t, path, short)
	m.Close()
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale dotlock not cleaned up: %v", err)
	}
}

// TestMboxReadableByGoMbox reads our file with another implementation (github.com/emersion/go-mbox's
// reader, which undoes mboxo quoting and yields CRLF): it finds the same messages.
func TestMboxReadableByGoMbox(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inbox")
	m := openMbox(t, path, MboxOptions{})
	msgs := []string{"Subject: one\n\nFrom here\nbody\n", "Subject: two\n\n\nblank line above\n", "Subject: three\n\nx\n"}
	for i, msg := range msgs {
		dstDeliver(t, m, fmt.Sprint(i), msg)
	}
	if err := m.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	r := gombox.NewReader(bytes.NewReader(dstReadFile(t, path)))
	for i, want := range msgs {
		mr, err := r.NextMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		b, err := io.ReadAll(mr)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.ReplaceAll(string(b), "\r\n", "\n"); got != want {
			t.Errorf("message %d: go-mbox read %q, want %q", i, got, want)
		}
	}
	if _, err := r.NextMessage(); err != io.EOF {
		t.Errorf("after the last message: %v", err)
	}
}
