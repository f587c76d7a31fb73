package daemon

import "testing"

func TestJobLimit(t *testing.T) {
	const emfile = true // the poll ran out of file descriptors
	l := newJobLimit(8)
	for _, a := range []string{"a", "b", "c", "d"} {
		l.start(a)
	}
	// A wave of failures from polls started under one limit halves it once.
	if l.end("a", emfile) != -1 || l.cur != 4 {
		t.Fatalf("first failure: cur %d", l.cur)
	}
	if l.end("b", emfile) != 0 || l.cur != 4 {
		t.Fatalf("second failure of the same wave: cur %d", l.cur)
	}
	// A failure of a poll started under the lowered limit halves it again.
	l.start("e")
	if l.end("e", emfile) != -1 || l.cur != 2 {
		t.Fatalf("failure under the new limit: cur %d", l.cur)
	}
	l.end("c", false)
	l.end("d", false)
	// Recovery: +1 after 2·cur clean polls in a row.
	steps := 0
	for l.cur < 8 {
		l.start("x")
		if l.end("x", false) == +1 {
			steps++
		}
		if steps > 10 {
			t.Fatal("no recovery")
		}
	}
	if steps != 6 {
		t.Errorf("recovered in %d steps", steps)
	}
}
