package store

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	dir := t.TempDir() + "/state"
	l1, err := Lock(dir, "acct", false)
	if err != nil {
		t.Fatal(err)
	}
	// Another open file description conflicts, as another process would.
	_, err = Lock(dir, "acct", false)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock = %v, want ErrLocked", err)
	}
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrTemporary) || le.PID != os.Getpid() ||
		!strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("error %q (%+v): want exit code 75 and the holder's pid", err, le)
	}
	// Other accounts are independent.
	l2, err := Lock(dir, "other", false)
	if err != nil {
		t.Fatal(err)
	}
	l2.Unlock()

	// --wait: the waiter gets the lock once it is released.
	got := make(chan error, 1)
	go func() {
		l, err := Lock(dir, "acct", true)
		if err == nil {
			err = l.Unlock()
		}
		got <- err
	}()
	if err := l1.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // a failure guard, not synchronisation
		t.Fatal("waiting Lock never returned")
	}
	if err := l1.Unlock(); err != nil { // idempotent
		t.Fatal(err)
	}
	l3, err := Lock(dir, "acct", false)
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	l3.Unlock()
	if fi, err := os.Stat(dir + "/acct.lock"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v %v", fi.Mode(), err)
	}
}

func TestErrLockedIsTemporary(t *testing.T) {
	if !errors.Is(ErrLocked, ErrTemporary) {
		t.Error("ErrLocked is not temporary (exit 75)")
	}
}
