package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The exactly-once crash test (docs/ARCHITECTURE.md §4). A child process — this test binary
// re-executed in helper mode (TestCrashChild) — runs the real delivery code the way the engine will:
//
//	OpenAccount: Lock -> OpenState -> NewMaildir -> State.Recover(maildir)
//	for each batch: Maildir.Deliver x k -> Maildir.Commit(ctx, State.RecordPending) -> State.MarkDelivered
//
// It announces every point between two writes on a pipe (the maildir's and the state's step hooks:
// file created, file written, batch synced, journal written, journal synced, each rename, new/
// synced, ...) and, at the chosen point, blocks until the parent kills it with SIGKILL. The parent
// does this for every point of a whole run, then for chains of crashes (a crash during the recovery
// from a crash), then for kills at unsynchronised moments; after each, a child without a kill point
// finishes the job, and the parent checks that every message is in the maildir exactly once and the
// state lists every UIDL as delivered.
//
// kill -9 does not lose what a process wrote to the page cache, so this shows the order of writes
// is right; torn writes of a power cut are covered for the state by TestStateTornTail.

const (
	crashChildEnv   = "POPFETCH_STORE_CRASH_CHILD" // helper mode; holds "engine|dest|statedir|killAt"
	crashMessages   = 12
	crashBatch      = 5
	crashAccount    = "acct"
	crashSeqHeader  = "X-Crash-Seq: "
	crashBodyFiller = "The quick brown fox jumps over the lazy dog.\r\n"
)

// crashBody is message i as the server would send it.
func crashBody(i int) string {
	return fmt.Sprintf("Message-Id: <%d@crash.test>\r\n%s%d\r\nSubject: message %d\r\n\r\n%s", i, crashSeqHeader, i, i,
		strings.Repeat(crashBodyFiller, 40))
}

func crashUID(i int) string { return fmt.Sprintf("UID%04d", i) }

// crashEngines are the runs a crash child can make, by name: each runs one sync into the
// destination at its first argument with the state in the second, announcing its steps. The mbox
// crash test adds "mbox" (on Unix).
var crashEngines = map[string]func(dest, stateDir string, step func(string)) error{
	"maildir": crashEngine,
}

// TestCrashChild is the child's side of every crash test of this package; it does nothing in a
// normal test run.
func TestCrashChild(t *testing.T) {
	arg := os.Getenv(crashChildEnv)
	if arg == "" {
		t.Skip("helper process for TestCrashExactlyOnce and TestMboxCrashExactlyOnce")
	}
	parts := strings.Split(arg, "|")
	engine, dest, stateDir := crashEngines[parts[0]], parts[1], parts[2]
	if engine == nil {
		t.Fatalf("no crash engine %q", parts[0])
	}
	killAt, _ := strconv.Atoi(parts[3])
	steps := os.NewFile(3, "steps")
	hold := os.NewFile(4, "hold")
	n := 0
	step := func(point string) {
		n++
		if _, err := fmt.Fprintf(steps, "%d %s\n", n, point); err != nil {
			os.Exit(2)
		}
		if n == killAt {
			hold.Read(make([]byte, 1)) // the parent never writes: we block here until SIGKILL
			os.Exit(3)
		}
	}
	if err := engine(dest, stateDir, step); err != nil {
		t.Fatal(err)
	}
	step("done")
}

// crashEngine is one sync run, in the engine's order.
func crashEngine(mdPath, stateDir string, step func(string)) error {
	// The killed run's lock died with it.
	acc, err := OpenAccount(context.Background(), stateDir, crashAccount, AccountOptions{step: step,
		Destination: func() (Destination, error) {
			md, err := NewMaildir(mdPath, MaildirOptions{ReceivedHeader: true, Hostname: "crash.test"})
			if err != nil {
				return nil, err
			}
			md.step = step
			return md, nil
		}})
	if err != nil {
		return err
	}
	defer acc.Close()
	return crashSync(acc.State, acc.Dest, step)
}

// crashSync is the engine's part of a crash child's run, shared by the maildir and mbox crash
// tests, after OpenAccount settled what the last killed run left pending: deliver what is not yet
// seen, batch by batch, in the engine's order (Deliver, Commit with the state as journal,
// MarkDelivered).
func crashSync(st *State, d Destination, step func(string)) error {
	var todo []int
	for i := range crashMessages {
		if !st.Seen(crashUID(i)) {
			todo = append(todo, i)
		}
	}
	ctx := context.Background()
	for len(todo) > 0 {
		batch := todo[:min(crashBatch, len(todo))]
		todo = todo[len(batch):]
		var uids []string
		for _, i := range batch {
			env := Envelope{Account: crashAccount, Host: "pop.crash.test", UID: crashUID(i), Received: time.Now()}
			if _, err := d.Deliver(ctx, env, strings.NewReader(crashBody(i))); err != nil {
				d.Abort()
				return err
			}
			uids = append(uids, env.UID)
		}
		if err := d.Commit(ctx, st.RecordPending); err != nil {
			return err
		}
		if err := st.MarkDelivered(uids, time.Now()); err != nil {
			return err
		}
		step("batch.delivered") // DELE would go here
	}
	return nil
}

// crashChild runs one child that makes the run crashEngines[engine] into dest. With killAt > 0 it is killed once it reports step killAt; with
// killLine > 0 it is killed when the parent has read that many step lines, wherever the child has got
// to by then. It returns the step lines read and whether the child was killed; a child that was not
// killed must have finished its run.
func crashChild(engine, dest, stateDir string, killAt, killLine int) (lines []string, killed bool, err error) {
	stepsR, stepsW, err := os.Pipe()
	if err != nil {
		return nil, false, err
	}
	holdR, holdW, err := os.Pipe()
	if err != nil {
		return nil, false, err
	}
	defer holdW.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s|%d", crashChildEnv, engine, dest, stateDir, killAt))
	cmd.ExtraFiles = []*os.File{stepsW, holdR}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	stepsW.Close()
	holdR.Close()
	if err != nil {
		stepsR.Close()
		return nil, false, err
	}
	sc := bufio.NewScanner(stepsR)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		num, _, _ := strings.Cut(sc.Text(), " ")
		if (killAt > 0 && num == strconv.Itoa(killAt)) || (killLine > 0 && len(lines) == killLine) {
			if err := cmd.Process.Kill(); err == nil {
				killed = true
			}
			break
		}
	}
	stepsR.Close()
	err = cmd.Wait()
	finishedFirst := false
	if killed {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != -1 { // -1: terminated by a signal
			// It had finished before the signal arrived; the steps after the kill point (its last
			// one, "done", among them) were not read, so its exit status says whether it succeeded.
			killed, finishedFirst = false, err == nil
		}
	}
	if !killed && !finishedFirst && (err != nil || len(lines) == 0 || !strings.HasSuffix(lines[len(lines)-1], " done")) {
		return lines, false, fmt.Errorf("%s child (kill at %d, line %d) failed: %v\n%s", engine, killAt, killLine, err, out.String())
	}
	return lines, killed, nil
}

var seqRE = regexp.MustCompile(`(?m)^` + crashSeqHeader + `(\d+)$`)

// checkExactlyOnce verifies the maildir and the state after a finished run.
func checkExactlyOnce(mdPath, stateDir string) error {
	count := map[int]int{}
	file := map[int]string{}
	for _, sub := range []string{"new", "cur"} {
		names, err := readDirNames(filepath.Join(mdPath, sub))
		if err != nil {
			return err
		}
		for _, name := range names {
			b, err := os.ReadFile(filepath.Join(mdPath, sub, name))
			if err != nil {
				return err
			}
			m := seqRE.FindSubmatch(b)
			if m == nil || !bytes.HasSuffix(b, []byte(strings.ReplaceAll(crashBodyFiller, "\r\n", "\n"))) {
				return fmt.Errorf("%s/%s is not a whole message:\n%s", sub, name, b)
			}
			i, _ := strconv.Atoi(string(m[1]))
			count[i]++
			file[i] = name
		}
	}
	st, err := OpenState(stateDir, crashAccount)
	if err != nil {
		return err
	}
	defer st.Close()
	var errs []error
	for i := range crashMessages {
		if count[i] != 1 {
			errs = append(errs, fmt.Errorf("message %d is in the maildir %d times", i, count[i]))
		}
		e, ok := st.Lookup(crashUID(i))
		if !ok || e.Status != StatusDelivered || e.Ref != file[i] {
			errs = append(errs, fmt.Errorf("state for %s = %+v (found %v), want delivered as %s", crashUID(i), e, ok, file[i]))
		}
	}
	if len(count) != crashMessages || st.Len() != crashMessages {
		errs = append(errs, fmt.Errorf("%d distinct messages, %d state entries; want %d", len(count), st.Len(), crashMessages))
	}
	return errors.Join(errs...)
}

// crashScenario is one case: kill points for successive children, then a child that finishes.
type crashScenario struct {
	name     string
	killAt   []int // deterministic kill points, one child each
	killLine int   // or: kill one free-running child after this many step lines
}

// run plays the scenario in fresh directories and checks the outcome.
func (sc crashScenario) run(base string) error {
	dir, err := os.MkdirTemp(base, "crash")
	if err != nil {
		return err
	}
	md, sd := filepath.Join(dir, "Maildir"), filepath.Join(dir, "state")
	for _, at := range sc.killAt {
		if _, _, err := crashChild("maildir", md, sd, at, 0); err != nil {
			return err
		}
	}
	if sc.killLine > 0 {
		if _, _, err := crashChild("maildir", md, sd, 0, sc.killLine); err != nil {
			return err
		}
	}
	if _, _, err := crashChild("maildir", md, sd, 0, 0); err != nil {
		return err
	}
	return checkExactlyOnce(md, sd)
}

func TestCrashExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes; skipped with -short")
	}
	base := t.TempDir()

	// A run without a crash tells how many points there are.
	md, sd := filepath.Join(base, "Maildir"), filepath.Join(base, "state")
	lines, _, err := crashChild("maildir", md, sd, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkExactlyOnce(md, sd); err != nil {
		t.Fatalf("no crash: %v", err)
	}
	total := len(lines)
	kinds := map[string]int{}
	for _, l := range lines {
		_, p, _ := strings.Cut(l, " ")
		kinds[p]++
	}
	t.Logf("%d kill points in a run of %d messages in batches of %d: %v", total, crashMessages, crashBatch, kinds)

	var scenarios []crashScenario
	// Every point of a run, one at a time.
	for s := 1; s < total; s++ {
		scenarios = append(scenarios, crashScenario{name: fmt.Sprintf("killed at step %s", lines[s-1]), killAt: []int{s}})
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("POPFETCH_CRASH_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("random kill points: POPFETCH_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	// Chains of crashes: killed again while recovering from the last crash.
	for c := range 8 {
		at := []int{1 + rng.IntN(total), 1 + rng.IntN(total), 1 + rng.IntN(total)}
		scenarios = append(scenarios, crashScenario{name: fmt.Sprintf("chain %d killed at steps %v", c, at), killAt: at})
	}
	// Kills at unsynchronised moments: the child runs on while the parent reads its steps.
	for c := range 8 {
		line := 1 + rng.IntN(total)
		scenarios = append(scenarios, crashScenario{name: fmt.Sprintf("free run %d killed after line %d", c, line), killLine: line})
	}

	// The children mostly wait (process start-up, fsync), so run many at once.
	work := make(chan crashScenario)
	errs := make(chan error)
	for range 12 {
		go func() {
			for sc := range work {
				err := sc.run(base)
				if err != nil {
					err = fmt.Errorf("%s: %w", sc.name, err)
				}
				errs <- err
			}
		}()
	}
	go func() {
		for _, sc := range scenarios {
			work <- sc
		}
		close(work)
	}()
	for range scenarios {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d scenarios", len(scenarios))
}
