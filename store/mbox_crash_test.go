//go:build unix

package store

import (
	"bufio"
	"bytes"
	"context"
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

// The exactly-once crash test for mbox, the counterpart of crash_test.go's for maildir. A child
// process (this test binary in helper mode, TestMboxCrashChild) runs the real code in the engine's
// order:
//
//	OpenAccount: Lock -> OpenState -> NewMbox -> State.Recover(mbox)
//	for each batch: Mbox.Deliver x k -> Mbox.Commit(ctx, State.RecordPending) -> State.MarkDelivered
//
// announcing every point between two writes (spooled, journal written and synced, journaled, half
// appended, appended, synced, marked delivered, ...) and blocking at the chosen one until the parent
// kills it with SIGKILL. The parent does this for every point of a run and for chains of two
// crashes, lets a child finish, and checks that the mbox holds every message exactly once, whole,
// and that the state lists every UIDL as delivered.

const mboxCrashChildEnv = "POPFETCH_STORE_MBOX_CRASH_CHILD" // "mbox|statedir|killAt"

func TestMboxCrashChild(t *testing.T) {
	arg := os.Getenv(mboxCrashChildEnv)
	if arg == "" {
		t.Skip("helper process for TestMboxCrashExactlyOnce")
	}
	parts := strings.Split(arg, "|")
	killAt, _ := strconv.Atoi(parts[2])
	steps, hold := os.NewFile(3, "steps"), os.NewFile(4, "hold")
	n := 0
	step := func(point string) {
		n++
		if _, err := fmt.Fprintf(steps, "%d %s\n", n, point); err != nil {
			os.Exit(2)
		}
		if n == killAt {
			hold.Read(make([]byte, 1)) // blocks until SIGKILL
			os.Exit(3)
		}
	}
	if err := mboxCrashEngine(parts[0], parts[1], step); err != nil {
		t.Fatal(err)
	}
	step("done")
}

func mboxCrashEngine(mboxPath, stateDir string, step func(string)) error {
	acc, err := OpenAccount(context.Background(), stateDir, crashAccount, AccountOptions{step: step,
		Destination: func() (Destination, error) {
			mb, err := NewMbox(mboxPath, MboxOptions{ReceivedHeader: true, LockTimeout: 10 * time.Second})
			if err != nil {
				return nil, err
			}
			mb.step, mb.stepHalf = step, true
			return mb, nil
		}})
	if err != nil {
		return err
	}
	defer acc.Close()
	return crashSync(acc.State, acc.Dest, step)
}

// mboxCrashChild runs one child, killed when it reports step killAt (0: never). It returns the
// steps it reported.
func mboxCrashChild(mboxPath, stateDir string, killAt int) ([]string, error) {
	stepsR, stepsW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	holdR, holdW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer holdW.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMboxCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%d", mboxCrashChildEnv, mboxPath, stateDir, killAt))
	cmd.ExtraFiles = []*os.File{stepsW, holdR}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	stepsW.Close()
	holdR.Close()
	if err != nil {
		stepsR.Close()
		return nil, err
	}
	var lines []string
	killed := false
	sc := bufio.NewScanner(stepsR)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if killAt > 0 && len(lines) == killAt {
			killed = cmd.Process.Kill() == nil
			break
		}
	}
	stepsR.Close()
	err = cmd.Wait()
	if !killed && (err != nil || len(lines) == 0 || !strings.HasSuffix(lines[len(lines)-1], " done")) {
		return lines, fmt.Errorf("child (kill at %d) failed: %v\n%s", killAt, err, out.String())
	}
	return lines, nil
}

func checkMboxExactlyOnce(mboxPath, stateDir string) error {
	b, err := os.ReadFile(mboxPath)
	if err != nil {
		return err
	}
	msgs, err := SplitMboxrd(bytes.NewReader(b))
	if err != nil {
		return err
	}
	count := map[int]int{}
	filler := strings.ReplaceAll(crashBodyFiller, "\r\n", "\n")
	for _, m := range msgs {
		sm := seqRE.FindSubmatch(m)
		if sm == nil || !bytes.HasSuffix(m, []byte(filler)) {
			return fmt.Errorf("the mbox holds a broken message:\n%s", m)
		}
		i, _ := strconv.Atoi(string(sm[1]))
		count[i]++
	}
	st, err := OpenState(stateDir, crashAccount)
	if err != nil {
		return err
	}
	defer st.Close()
	var errs []error
	for i := range crashMessages {
		if count[i] != 1 {
			errs = append(errs, fmt.Errorf("message %d is in the mbox %d times", i, count[i]))
		}
		if e, ok := st.Lookup(crashUID(i)); !ok || e.Status != StatusDelivered || !strings.HasPrefix(e.Ref, "mbox:") {
			errs = append(errs, fmt.Errorf("state for %s = %+v (found %v), want delivered", crashUID(i), e, ok))
		}
	}
	if len(msgs) != crashMessages {
		errs = append(errs, fmt.Errorf("the mbox holds %d messages, want %d", len(msgs), crashMessages))
	}
	return errors.Join(errs...)
}

func TestMboxCrashExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a hundred processes")
	}
	base := t.TempDir()
	run := func(killAts ...int) error {
		dir, err := os.MkdirTemp(base, "crash")
		if err != nil {
			return err
		}
		mbox, sd := filepath.Join(dir, "mail", "inbox"), filepath.Join(dir, "state")
		for _, at := range killAts {
			if _, err := mboxCrashChild(mbox, sd, at); err != nil {
				return err
			}
		}
		if _, err := mboxCrashChild(mbox, sd, 0); err != nil {
			return err
		}
		if err := checkMboxExactlyOnce(mbox, sd); err != nil {
			return fmt.Errorf("killed at steps %v: %w", killAts, err)
		}
		return os.RemoveAll(dir)
	}

	// A run without a crash tells how many steps there are.
	dir := t.TempDir()
	lines, err := mboxCrashChild(filepath.Join(dir, "inbox"), filepath.Join(dir, "state"), 0)
	total := len(lines)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkMboxExactlyOnce(filepath.Join(dir, "inbox"), filepath.Join(dir, "state")); err != nil {
		t.Fatal(err)
	}
	for at := 1; at < total; at++ {
		if err := run(at); err != nil {
			t.Fatal(err)
		}
	}
	// Crashes in the recovery from a crash: killed mid-append, then again early in the next run.
	var halves []int
	for i, l := range lines {
		if strings.HasSuffix(l, " mbox.append.half") {
			halves = append(halves, i+1)
		}
	}
	for _, h := range halves {
		for _, again := range []int{1, 4} {
			if err := run(h, again); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d kill points, %d chains", total-1, 2*len(halves))
}
