//go:build linux

package main

// Hardening, issue 17 points 4 and 5, with the real binary:
//   - 17.4: an imported list of UIDLs cannot make popfetch delete mail it never fetched, and an import
//     refuses a file that names another account;
//   - 17.5: signals always work: a second SIGINT/SIGTERM ends popfetch whatever it is blocked on, an
//     input file is read before the account's lock is taken, and the daemon handles SIGHUP from its
//     start.
//
// The tests synchronise on what the kernel shows: a thread of popfetch waiting in fifo_open for a FIFO's
// other end, or in pipe_write on a full pipe (/proc/PID/task/*/wchan), and the server's record of
// commands. None sleeps.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/store"
)

// relSignalDeadline bounds how long popfetch may take to exit after the signals: "at once" with
// room for a loaded machine. Before the fix, these runs never exited.
const relSignalDeadline = 5 * time.Second

// relProc is a running popfetch, killed when the test ends.
type relProc struct {
	cmd    *exec.Cmd
	stderr syncBuffer
	done   chan struct{}
}

// relStart starts popfetch with env and args; stdout goes to stdout (nil: discarded).
func relStart(t *testing.T, env []string, stdout *os.File, args ...string) *relProc {
	t.Helper()
	p := &relProc{cmd: exec.Command(popfetchBin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stderr = &p.stderr
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *relProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *relProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	// ErrProcessDone: an earlier signal already ended it, which the caller checks.
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// code is the exit status, 128+N when killed by signal N.
func (p *relProc) code() int {
	return resultOf(p.cmd, "", "", 0).code
}

// waitExit waits until popfetch exits, at most d, and returns its exit status and how long it took;
// -1 if it did not exit (it is then killed).
func (p *relProc) waitExit(d time.Duration) (int, time.Duration) {
	start := time.Now()
	if p.exited() {
		return p.code(), 0
	}
	select {
	case <-p.done:
		return p.code(), time.Since(start)
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
		return -1, time.Since(start)
	}
}

// relBlockedIn reports whether a thread of process pid sleeps in one of the kernel functions fns.
func relBlockedIn(pid int, fns ...string) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/wchan", pid, task.Name()))
		if err == nil && slices.Contains(fns, string(b)) {
			return true
		}
	}
	return false
}

// waitBlocked waits until popfetch sleeps in one of the kernel functions fns (fifo_open:
// "wait_for_partner"; a full pipe: "pipe_write", "anon_pipe_write" since Linux 6.13); it fails the
// test if popfetch exits first.
func (p *relProc) waitBlocked(t *testing.T, fns ...string) {
	t.Helper()
	fn := strings.Join(fns, " or ")
	if !relWaitFor(relRunTimeout, func() bool { return p.exited() || relBlockedIn(p.cmd.Process.Pid, fns...) }) {
		t.Fatalf("popfetch is not blocked in %s after %v (does /proc/PID/task/*/wchan work here?); stderr:\n%s",
			fn, relRunTimeout, p.stderr.String())
	}
	if p.exited() {
		t.Fatalf("popfetch exited %d before blocking in %s; stderr:\n%s", p.code(), fn, p.stderr.String())
	}
}

func relMkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

// relWriteFIFO opens the FIFO at path for writing (popfetch must be waiting on its other end, or
// about to) and writes data.
func relWriteFIFO(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestRelHardeningImportOtherAccount (17.4): a getmail file named for bob is refused for alice's
// profile (65); imported anyway with --force, the next default (delete-mode) sync fetches the others
// and sends no DELE for the message it never had, which stays on the server.
func TestRelHardeningImportOtherAccount(t *testing.T) {
	relTrack(t)
	t.Parallel()
	seeded := relMessages("imp", 3)
	s, ca := relServer(t, pop3test.Options{Messages: relToServer(seeded)})
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("work", s.Port(), "ca_file: "+ca)
	// bob's getmail file happens to list the UIDL of alice's first message.
	file := filepath.Join(setup.dir, fmt.Sprintf("oldmail-127.0.0.1-%d-bob", s.Port()))
	if err := os.WriteFile(file, []byte(seeded[0].UID+"\x001700000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := setup.run("state", "import", "--from", "getmail", file, "work")
	line := strings.TrimSuffix(r.stderr, "\n")
	if r.code != exitDataErr || strings.Contains(line, "\n") || !strings.Contains(line, file) ||
		!strings.Contains(line, "alice@127.0.0.1") || !strings.Contains(line, "--force") {
		t.Errorf("import of another account's file: exit %d, stderr %q; want 65 and one line naming the file, alice@127.0.0.1 and --force", r.code, r.stderr)
	}
	if st, err := store.OpenState(setup.stateDir, "work"); err == nil {
		if n := st.Len(); n != 0 {
			t.Errorf("the refused import left %d UIDL(s) in the state", n)
		}
		st.Close()
	}
	relRecord("hardening", "`state import --from getmail oldmail-127.0.0.1-PORT-bob work` into alice's profile",
		"refused: one line naming the file, the account (alice@127.0.0.1) and --force; nothing imported", r.code, 0, 0)

	r = setup.run("state", "import", "--force", "--from", "getmail", file, "work")
	if r.code != 0 {
		t.Fatalf("import --force: exit %d: %s", r.code, r.stderr)
	}
	if r = setup.run("list", "work"); r.code != 0 || !strings.Contains(r.stdout, seeded[0].UID) ||
		!strings.Contains(strings.SplitAfter(r.stdout, seeded[0].UID)[1], "imported\n") {
		t.Errorf("list: exit %d, stdout:\n%s\nwant %s shown as imported", r.code, r.stdout, seeded[0].UID)
	}
	before := len(s.Received())
	r = setup.run("sync")
	if r.code != 0 {
		t.Errorf("sync: exit %d: %s", r.code, r.stderr)
	}
	if n := relCountCommands(s, before, "DELE 1"); n != 0 {
		t.Errorf("the server received DELE 1 for the imported message popfetch never fetched")
	}
	md := relReadMaildir(t, relMaildir(setup.dir, "work"))
	tally := relCount(seeded, md, relServerData(s))
	if md[string(seeded[0].Data)] != 0 || tally.delivered != 2 {
		t.Errorf("maildir: %v; want the 2 messages not imported", tally)
	}
	left := s.Messages()
	if len(left) != 1 || left[0].UID != seeded[0].UID {
		t.Errorf("left on the server: %d message(s); want only the imported one", len(left))
	}
	if !tally.ok() {
		t.Error(tally)
	}
	relRecord("hardening", "the same file imported with --force, then a default (delete-mode) sync",
		"the imported message was neither fetched nor deleted (no DELE 1; it stays on the server until `sync --delete-imported`); the 2 others fetched and deleted",
		r.code, tally.lost, tally.duplicated)
}

// TestRelHardeningSignalConfigFIFO (17.5): popfetch waiting for its configuration on a FIFO nobody
// writes exits 130 on SIGTERM (sent twice) at once.
func TestRelHardeningSignalConfigFIFO(t *testing.T) {
	relTrack(t)
	t.Parallel()
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("work", 1)
	fifo := filepath.Join(setup.dir, "config-fifo.yaml")
	relMkfifo(t, fifo)
	p := relStart(t, setup.env, nil, "--config", fifo, "sync")
	p.waitBlocked(t, "wait_for_partner")
	p.signal(t, syscall.SIGTERM)
	p.signal(t, syscall.SIGTERM)
	code, took := p.waitExit(relSignalDeadline)
	t.Logf("exit %d, %v after the last signal", code, took)
	if code != exitInterrupted {
		t.Errorf("exit %d after %v (-1: still running, killed), want 130; stderr:\n%s", code, took.Round(time.Millisecond), p.stderr.String())
	}
	if line := strings.TrimSuffix(p.stderr.String(), "\n"); code == exitInterrupted &&
		(strings.Contains(line, "\n") || !strings.Contains(line, "interrupted while reading "+fifo)) {
		t.Errorf("stderr %q: want one line saying it was interrupted while reading the file", p.stderr.String())
	}
	relRecord("hardening", "`popfetch --config FIFO sync`, nobody writing the FIFO; two SIGTERMs",
		fmt.Sprintf("exited in %v: \"interrupted while reading FIFO\"", took.Round(time.Millisecond)), code, 0, 0)
}

// TestRelHardeningSignalImportFIFO (17.5): `state import` of a FIFO nobody writes does not hold the
// account's lock while it waits, and two signals end it at once.
func TestRelHardeningSignalImportFIFO(t *testing.T) {
	relTrack(t)
	t.Parallel()
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("work", 1110)
	fifo := filepath.Join(setup.dir, "oldmail-127.0.0.1-1110-alice")
	relMkfifo(t, fifo)
	p := relStart(t, setup.env, nil, "--config", setup.path, "state", "import", "--from", "getmail", fifo, "work")
	p.waitBlocked(t, "wait_for_partner")
	heldWhileWaiting := false
	if l, err := store.Lock(setup.stateDir, "work", false); err != nil {
		heldWhileWaiting = true
		t.Errorf("the account's lock is held while the import waits for its file: %v", err)
	} else {
		l.Unlock()
	}
	p.signal(t, syscall.SIGTERM)
	p.signal(t, syscall.SIGINT)
	code, took := p.waitExit(relSignalDeadline)
	t.Logf("exit %d, %v after the last signal", code, took)
	if code != exitInterrupted {
		t.Errorf("exit %d after %v (-1: still running, killed), want 130; stderr:\n%s", code, took.Round(time.Millisecond), p.stderr.String())
	}
	l, err := store.Lock(setup.stateDir, "work", false)
	if err != nil {
		t.Errorf("the account's lock is not free after the import ended: %v", err)
	} else {
		l.Unlock()
	}
	did := fmt.Sprintf("the lock was free while it waited; exited in %v, lock free", took.Round(time.Millisecond))
	if heldWhileWaiting {
		did = "held the account's lock while waiting"
	}
	relRecord("hardening", "`state import --from getmail FIFO work`, nobody writing the FIFO; SIGTERM then SIGINT", did, code, 0, 0)
}

// TestRelHardeningSignalStdoutBlocked (17.5): `sync --stdout` into a pipe nobody reads blocks in
// write(2), where no context reaches; SIGTERM then SIGINT still end it (130) at once, and nothing
// was deleted on the server.
func TestRelHardeningSignalStdoutBlocked(t *testing.T) {
	relTrack(t)
	t.Parallel()
	seeded := relMessages("pipe", 3)
	big := bytes.Repeat([]byte("a line of a large message, more than a pipe holds\n"), 1<<15) // 1.6 MiB
	seeded[0].Data = append(seeded[0].Data, big...)
	s, ca := relServer(t, pop3test.Options{Messages: relToServer(seeded)})
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("work", s.Port(), "ca_file: "+ca)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	p := relStart(t, setup.env, pw, "--config", setup.path, "sync", "--stdout")
	pw.Close()
	p.waitBlocked(t, "pipe_write", "anon_pipe_write")
	p.signal(t, syscall.SIGTERM)
	p.signal(t, syscall.SIGINT)
	code, took := p.waitExit(relSignalDeadline)
	t.Logf("exit %d, %v after the last signal", code, took)
	if code != exitInterrupted {
		t.Errorf("exit %d after %v (-1: still running, killed), want 130; stderr:\n%s", code, took.Round(time.Millisecond), p.stderr.String())
	}
	if n := relCountCommands(s, 0, "DELE"); n != 0 {
		t.Errorf("the server received %d DELE for messages nobody read", n)
	}
	tally := relCount(seeded, nil, relServerData(s))
	if !tally.ok() {
		t.Error(tally)
	}
	relRecord("hardening", "`sync --stdout` into a pipe nobody reads (blocked in write(2)); SIGTERM then SIGINT",
		fmt.Sprintf("exited in %v; no DELE, every message still on the server", took.Round(time.Millisecond)), code, tally.lost, tally.duplicated)
}

// TestRelHardeningSignalDaemonEarlyHUP (17.5): SIGHUP sent to `popfetch daemon` before it has read
// its configuration (here a FIFO, written only after the signal) does not kill it (129): the daemon
// starts and reloads once. A later SIGHUP makes it wait for the FIFO again; SIGTERM then still stops
// it (0) at once.
func TestRelHardeningSignalDaemonEarlyHUP(t *testing.T) {
	relTrack(t)
	t.Parallel()
	s, ca := relServer(t, pop3test.Options{})
	setup := relNewProfile(t, t.TempDir())
	setup.addAt("work", s.Port(), "ca_file: "+ca, "interval: 1h")
	cfg, err := os.ReadFile(setup.path)
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(setup.dir, "config-fifo.yaml")
	relMkfifo(t, fifo)
	p := relStart(t, setup.env, nil, "--config", fifo, "daemon")
	p.waitBlocked(t, "wait_for_partner")
	p.signal(t, syscall.SIGHUP)
	relWriteFIFO(t, fifo, cfg)
	waitLog := func(s string) bool {
		return relWaitFor(relRunTimeout, func() bool { return p.exited() || strings.Contains(p.stderr.String(), s) }) && !p.exited()
	}
	started := waitLog("popfetch: daemon started")
	reloaded := false
	if started {
		// The SIGHUP reloads the file: the daemon reads the FIFO once more.
		p.waitBlocked(t, "wait_for_partner")
		relWriteFIFO(t, fifo, cfg)
		reloaded = waitLog("SIGHUP: reloaded")
	}
	if !started || !reloaded {
		code, _ := p.waitExit(0)
		t.Fatalf("started %v, reloaded %v, exit %d (129: killed by SIGHUP); log:\n%s", started, reloaded, code, p.stderr.String())
	}
	p.signal(t, syscall.SIGHUP)
	p.waitBlocked(t, "wait_for_partner")
	p.signal(t, syscall.SIGTERM)
	code, took := p.waitExit(relSignalDeadline)
	t.Logf("exit %d, %v after the last signal", code, took)
	if code != 0 {
		t.Errorf("exit %d after %v (-1: still running, killed), want 0; log:\n%s", code, took.Round(time.Millisecond), p.stderr.String())
	}
	relRecord("hardening", "SIGHUP to `popfetch daemon` before it has read its configuration (a FIFO written after the signal); later a SIGHUP while nobody writes the FIFO, then SIGTERM",
		fmt.Sprintf("not killed (was 129): started and reloaded once; the second reload gave up on SIGTERM and the daemon stopped in %v", took.Round(time.Millisecond)), code, 0, 0)
}
