//go:build unix

package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The exactly-once crash test for mbox, the counterpart of crash_test.go's for maildir. A child
// process (this test binary in helper mode, TestCrashChild with the engine "mbox") runs the real code in the engine's
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

func init() { crashEngines["mbox"] = mboxCrashEngine }

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
			if _, _, err := crashChild("mbox", mbox, sd, at, 0); err != nil {
				return err
			}
		}
		if _, _, err := crashChild("mbox", mbox, sd, 0, 0); err != nil {
			return err
		}
		if err := checkMboxExactlyOnce(mbox, sd); err != nil {
			return fmt.Errorf("killed at steps %v: %w", killAts, err)
		}
		return os.RemoveAll(dir)
	}

	// A run without a crash tells how many steps there are.
	dir := t.TempDir()
	lines, _, err := crashChild("mbox", filepath.Join(dir, "inbox"), filepath.Join(dir, "state"), 0, 0)
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
