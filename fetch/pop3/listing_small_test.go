package pop3

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestSmallListingAllocatesLittle: the listing of a maildrop of 20 messages costs a few KiB of heap,
// not the megabyte block and 128 KiB chunk that every sync allocated before (issue 16: part of a
// sync's peak RSS).
func TestSmallListingAllocatesLittle(t *testing.T) {
	var list, uidl strings.Builder
	list.WriteString("+OK\n")
	uidl.WriteString("+OK\n")
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&list, "%d 5000000\n", i)
		fmt.Fprintf(&uidl, "%d %016x\n", i, i)
	}
	list.WriteString(".")
	uidl.WriteString(".")
	c, done, err := scripted(t, nil, "+OK hi", []step{{"LIST", list.String()}, {"UIDL", uidl.String()}})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := c.Listing(context.Background())
	runtime.ReadMemStats(&after)
	if err != nil || len(got) != 20 || got[19].UID != fmt.Sprintf("%016x", 20) {
		t.Fatalf("Listing = %v, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The scripted server runs in this process too; its share is small.
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("listing 20 messages allocated %d KiB, want at most 64", n>>10)
	}
}
