//go:build linux

package main

// System calls per delivered message (issue 16.4), counted by strace(1) around the real binary: the
// cost a user sees as system time. Skipped where strace is not installed or may not trace.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// straceCounts parses the table of strace -c: system call -> (calls, errors).
func straceCounts(t *testing.T, path string) map[string][2]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counts := map[string][2]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// % time, seconds, usecs/call, calls, [errors], syscall
		if len(fields) < 5 || fields[len(fields)-1] == "total" {
			continue
		}
		calls, err := strconv.Atoi(fields[3])
		if err != nil {
			continue
		}
		errs := 0
		if len(fields) == 6 {
			errs, _ = strconv.Atoi(fields[4])
		}
		counts[fields[len(fields)-1]] = [2]int{calls, errs}
	}
	return counts
}

// TestSyncSystemCallsPerMessage: a sync of 200 messages of 4 KB over TLS with ca_file (as the
// benchmark runs it) makes, per message, no fcntl and no failing stat or epoll_ctl, and the run
// reads no system trust store (no readlinkat of /etc/ssl/certs). Before: about 7 fcntl, 1.8
// epoll_ctl (1.8 failing), 1.4 readlinkat and one failing newfstatat per message.
func TestSyncSystemCallsPerMessage(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed (apt-get install strace)")
	}
	const n = 200
	msgs := make([]pop3test.Message, n)
	line := strings.Repeat("abcdefghij", 7) + "\n"
	for i := range msgs {
		body := fmt.Sprintf("From: bob@example.org\nSubject: message %d\n\n", i+1) + strings.Repeat(line, 4096/len(line))
		msgs[i] = pop3test.Message{UID: fmt.Sprintf("uid-%d", i+1), Data: []byte(body)}
	}
	s := newServer(t, msgs, nil)
	p := newProfile(t)
	md := p.add("work", s)

	out := filepath.Join(t.TempDir(), "strace.txt")
	cmd := exec.Command(strace, "-f", "-c", "-o", out, popfetchBin, "--config", p.path, "sync")
	cmd.Env = []string{"HOME=" + p.dir, "PATH=" + os.Getenv("PATH"), "DBUS_SESSION_BUS_ADDRESS="}
	if b, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(b), "ptrace") || strings.Contains(string(b), "PTRACE") {
			t.Skipf("strace may not trace here: %s", b)
		}
		t.Fatalf("strace popfetch sync: %v\n%s", err, b)
	}
	if got := len(maildirFiles(t, md)); got != n {
		t.Fatalf("%d messages delivered, want %d", got, n)
	}
	c := straceCounts(t, out)
	perMsg := func(name string, i int) float64 { return float64(c[name][i]) / n }
	t.Logf("per message: fcntl %.2f, epoll_ctl %.2f (failing %.2f), newfstatat failing %.2f, readlinkat %.2f, openat %.2f",
		perMsg("fcntl", 0), perMsg("epoll_ctl", 0), perMsg("epoll_ctl", 1), perMsg("newfstatat", 1), perMsg("readlinkat", 0), perMsg("openat", 0))
	for _, check := range []struct {
		what  string
		got   float64
		limit float64
	}{
		{"fcntl calls", perMsg("fcntl", 0), 0.5},
		{"failing epoll_ctl calls", perMsg("epoll_ctl", 1), 0.1},
		{"failing newfstatat calls", perMsg("newfstatat", 1), 0.1},
		{"readlinkat calls", perMsg("readlinkat", 0), 0.05},
		{"openat calls", perMsg("openat", 0), 1.25},
	} {
		if check.got > check.limit {
			t.Errorf("%.2f %s per delivered message, want at most %.2f", check.got, check.what, check.limit)
		}
	}
}
