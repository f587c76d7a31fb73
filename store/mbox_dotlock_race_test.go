package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 12 point 9: stealing a stale dotlock is race-free. Two processes (this test binary re-executed
// in helper mode, like the crash tests) find the same stale PATH.lock. The first judges it stale and is
// held right there, before it acts; the second steals it and takes the mbox; then the first goes on.
// "stat, then remove" removed the second one's fresh lock there (mutt or procmail, which trust the
// dotlock alone, could then write into the mbox during our append); popfetch must leave it in place.

const dotlockChildEnv = "POPFETCH_STORE_DOTLOCK_CHILD" // helper mode: "ROLE|MBOX"

// TestDotlockChild is a child's side; it does nothing in a normal test run. Role "judge" stops (fd 3
// "judged", then waits for a byte on fd 4) when it has judged the dotlock stale, then reports how
// NewMbox ended; role "holder" takes the mbox, says "holding" and keeps it until fd 4 is closed.
func TestDotlockChild(t *testing.T) {
	arg := os.Getenv(dotlockChildEnv)
	if arg == "" {
		t.Skip("helper process for TestMboxStaleDotlockStealIsRaceFree")
	}
	role, path, _ := strings.Cut(arg, "|")
	out, hold := os.NewFile(3, "out"), os.NewFile(4, "hold")
	switch role {
	case "judge":
		paused := false
		opts := MboxOptions{LockTimeout: 2 * time.Second, judgedStale: func() {
			if !paused {
				paused = true
				fmt.Fprintln(out, "judged")
				hold.Read(make([]byte, 1))
			}
		}}
		m, err := NewMbox(path, opts)
		var le *MboxLockedError
		switch {
		case err == nil:
			fmt.Fprintln(out, "result got the mbox")
			m.Close()
		case errors.As(err, &le):
			fmt.Fprintln(out, "result locked "+le.Lock)
		default:
			fmt.Fprintln(out, "result error "+err.Error())
		}
	case "holder":
		m, err := NewMbox(path, MboxOptions{LockTimeout: 5 * time.Second})
		if err != nil {
			fmt.Fprintln(out, "error "+err.Error())
			return
		}
		fmt.Fprintln(out, "holding")
		hold.Read(make([]byte, 1)) // until the parent closes its end
		m.Close()
		fmt.Fprintln(out, "released")
	}
}

// dotlockChild starts one child; its lines arrive on the returned channel, closing its hold pipe (or
// writing to it) lets it go on.
type dotlockChild struct {
	cmd   *exec.Cmd
	lines chan string
	hold  *os.File
	out   bytes.Buffer
}

func startDotlockChild(t *testing.T, role, path string) *dotlockChild {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	holdR, holdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &dotlockChild{lines: make(chan string, 8), hold: holdW}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestDotlockChild$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), dotlockChildEnv+"="+role+"|"+path)
	c.cmd.ExtraFiles = []*os.File{outW, holdR}
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	holdR.Close()
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		outR.Close()
	}()
	t.Cleanup(func() {
		c.hold.Close()
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	return c
}

// next returns the child's next line ("" if it ended without one).
func (c *dotlockChild) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-c.lines:
		return l
	case <-time.After(60 * time.Second): // a failure guard, not synchronisation
		t.Fatalf("child %v said nothing; output:\n%s", c.cmd.Args, c.out.String())
		return ""
	}
}

func TestMboxStaleDotlockStealIsRaceFree(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inbox")
	lock := path + ".lock"
	if err := os.WriteFile(lock, nil, 0o600); err != nil { // abandoned by a mail reader, long ago
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}

	judge := startDotlockChild(t, "judge", path)
	if l := judge.next(t); l != "judged" {
		t.Fatalf("judge: %q, want judged; output:\n%s", l, judge.out.String())
	}
	holder := startDotlockChild(t, "holder", path)
	if l := holder.next(t); l != "holding" {
		t.Fatalf("holder: %q, want holding; output:\n%s", l, holder.out.String())
	}
	wantLock, err := os.ReadFile(lock)
	if err != nil || string(wantLock) != strconv.Itoa(holder.cmd.Process.Pid)+"\n" {
		t.Fatalf("the holder's dotlock: %q, %v", wantLock, err)
	}
	judge.hold.Write([]byte{1}) // the judge acts on its (now outdated) judgement
	res := judge.next(t)
	if !strings.HasPrefix(res, "result locked") {
		t.Errorf("the judge: %q, want the mbox locked by the holder; output:\n%s", res, judge.out.String())
	}
	// The holder still holds the mbox: its dotlock must still be there, with its pid.
	got, err := os.ReadFile(lock)
	if err != nil || !bytes.Equal(got, wantLock) {
		t.Errorf("while the holder holds the mbox, %s is %q (%v), want the holder's %q", lock, got, err, wantLock)
	}
	if names, _ := filepath.Glob(lock + ".stale-*"); len(names) > 0 {
		t.Errorf("left behind: %v", names)
	}
	holder.hold.Close()
	if l := holder.next(t); l != "released" {
		t.Errorf("holder: %q, want released", l)
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dotlock after the holder released it: %v", err)
	}
}
