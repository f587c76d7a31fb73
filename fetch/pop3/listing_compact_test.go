package pop3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// TestListingOutOfOrder: a LIST reply whose numbers are not 1..n in order (a server may list
// them so) is still merged with UIDL by number.
func TestListingOutOfOrder(t *testing.T) {
	c, done, err := scripted(t, nil, "+OK hi", []step{
		{"LIST", "+OK\n3 300\n1 100\n."},
		{"UIDL", "+OK\n1 one\n2 gone\n3 three\n."},
		{"LIST", "+OK\n1 5\n2 6\n."},
		{"UIDL", "+OK\n1 a\n1 b\n."},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Listing(context.Background())
	want := []MessageInfo{{3, 300, "three"}, {1, 100, "one"}}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Listing = %v, %v; want %v", got, err, want)
	}
	if _, err := c.Listing(context.Background()); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "listed twice") {
		t.Fatalf("Listing with a UIDL named twice: err = %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestListingTooLong: a LIST reply of more than MaxListing lines is refused with
// ErrListingTooLong (not a generic protocol error: the CLI exits 65 for it), and the connection is
// given up.
func TestListingTooLong(t *testing.T) {
	var b strings.Builder
	b.WriteString("+OK\n")
	for i := 1; i <= MaxListing+1; i++ {
		fmt.Fprintf(&b, "%d 1\n", i)
	}
	b.WriteString(".")
	c, _, err := scripted(t, nil, "+OK hi", []step{{"LIST", b.String()}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Listing(context.Background())
	if !errors.Is(err, ErrListingTooLong) || !strings.Contains(err.Error(), "names more than 1000000") {
		t.Fatalf("Listing = %v, want ErrListingTooLong", err)
	}
	if c.Err() == nil {
		t.Error("the connection is still usable in the middle of a reply")
	}
}

// TestRetrManyAbandon: a RetrFunc error wrapping ErrAbandon stops RetrMany at once, with that
// error: the rest of the body (endless here) and the replies in flight are not read.
func TestRetrManyAbandon(t *testing.T) {
	endless := "+OK\nSubject: big\n\n" + strings.Repeat(strings.Repeat("x", 998)+"\n", 4096) // no terminator
	c, _, err := scripted(t, &Options{Timeout: 20 * time.Second}, "+OK hi", []step{
		{"CAPA", "+OK\nPIPELINING\n."},
		{"RETR 1", endless},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Capa(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop := fmt.Errorf("too big: %w", ErrAbandon)
	start := time.Now()
	err = c.RetrMany(context.Background(), []int{1, 2, 3}, func(n int, body io.Reader, err error) error {
		if _, rerr := io.CopyN(io.Discard, body, 64<<10); rerr != nil {
			t.Errorf("reading the body: %v", rerr)
		}
		return stop
	})
	if err != stop {
		t.Fatalf("RetrMany = %v, want the RetrFunc's error", err)
	}
	if !errors.Is(c.Err(), ErrAbandon) {
		t.Errorf("Err = %v, want the abandonment", c.Err())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("RetrMany took %v: it waited for the rest of the body", d)
	}
	if err := c.Noop(context.Background()); !errors.Is(err, ErrUnusable) {
		t.Errorf("a command after abandoning: %v, want ErrUnusable", err)
	}
}
