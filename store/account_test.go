package store

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
)

// accountDest is a destination that resolves from a fixed set and says whether it was closed.
type accountDest struct {
	fakeResolver
	closed bool
}

func (d *accountDest) Deliver(context.Context, Envelope, io.Reader) (Pending, error) {
	return Pending{}, errors.New("not used")
}
func (d *accountDest) Commit(context.Context, func([]Pending) error) error { return nil }
func (d *accountDest) Abort() error                                        { return nil }
func (d *accountDest) Close() error                                        { d.closed = true; return nil }

// pendingState leaves a state in dir with two pending UIDLs, as a killed run does: "a" (its message,
// ref "ra", made it into the destination) and "b" (it did not).
func pendingState(t *testing.T, dir string) {
	t.Helper()
	st, err := OpenState(dir, "acct")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.RecordPending([]Pending{{UID: "a", Ref: "ra"}, {UID: "b", Ref: "rb"}}); err != nil {
		t.Fatal(err)
	}
}

// TestOpenAccount: one call takes the lock, loads the state, opens the destination and settles what a
// killed run left pending with it; Close releases all of it, so the next run gets the lock.
func TestOpenAccount(t *testing.T) {
	dir := t.TempDir()
	pendingState(t, dir)
	d := &accountDest{fakeResolver: fakeResolver{"ra": true}}
	acc, err := OpenAccount(t.Context(), dir, "acct", AccountOptions{Destination: func() (Destination, error) { return d, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(acc.Delivered, []string{"a"}) || !slices.Equal(acc.Discarded, []string{"b"}) || acc.Dest != d {
		t.Errorf("recovered %v, discarded %v; want [a], [b]", acc.Delivered, acc.Discarded)
	}
	if e, _ := acc.State.Lookup("a"); e.Status != StatusDelivered || acc.State.Seen("b") {
		t.Errorf("state after recovery: a is %v, b seen %v", e.Status, acc.State.Seen("b"))
	}
	// A second run meanwhile: the lock is held, and its destination is never opened.
	opened := false
	_, err = OpenAccount(t.Context(), dir, "acct", AccountOptions{Destination: func() (Destination, error) { opened = true; return d, nil }})
	if !errors.Is(err, ErrLocked) || opened {
		t.Errorf("second OpenAccount: %v (destination opened: %v), want ErrLocked and nothing opened", err, opened)
	}
	if err := acc.Close(); err != nil || !d.closed {
		t.Fatalf("Close: %v (destination closed: %v)", err, d.closed)
	}
	l, err := Lock(dir, "acct", false)
	if err != nil {
		t.Fatalf("lock after Close: %v", err)
	}
	l.Unlock()
}

// TestOpenAccountNoDestination: without a destination (a dry run, a state import) nothing pending is
// settled: the next real run does it.
func TestOpenAccountNoDestination(t *testing.T) {
	dir := t.TempDir()
	pendingState(t, dir)
	acc, err := OpenAccount(t.Context(), dir, "acct", AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	if e, _ := acc.State.Lookup("a"); e.Status != StatusPending || acc.Delivered != nil || acc.Discarded != nil {
		t.Errorf("a is %v after a dry open (recovered %v, %v), want still pending", e.Status, acc.Delivered, acc.Discarded)
	}
}

// TestOpenAccountFailures: a destination that cannot be opened, or a wait for the lock cut short by
// ctx, return their error as it is and leave the account unlocked.
func TestOpenAccountFailures(t *testing.T) {
	dir := t.TempDir()
	boom := &IOError{Op: "mkdir", Path: "/nowhere", Err: errors.New("boom")}
	_, err := OpenAccount(t.Context(), dir, "acct", AccountOptions{Destination: func() (Destination, error) { return nil, boom }})
	if err != boom {
		t.Errorf("destination failure: %v, want it as it is", err)
	}
	held, err := Lock(dir, "acct", false)
	if err != nil {
		t.Fatalf("lock after a failed OpenAccount: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := OpenAccount(ctx, dir, "acct", AccountOptions{Wait: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with ctx done: %v, want context.Canceled", err)
	}
	held.Unlock()
}
