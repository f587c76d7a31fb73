package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestStdoutMboxrdStream(t *testing.T) {
	var out bytes.Buffer
	s := NewStdout(&out, StdoutOptions{})
	msgs := []string{msgQuoting, msgNoEOL, "", "Subject: crlf\r\n\r\n>From x\r\n"}
	for i, m := range msgs {
		dstDeliver(t, s, string(rune('a'+i)), m)
	}
	var journaled []Pending
	if err := s.Commit(context.Background(), func(ps []Pending) error { journaled = ps; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(journaled) != len(msgs) || journaled[0].UID != "a" {
		t.Errorf("journal got %+v", journaled)
	}
	got, err := SplitMboxrd(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := append(msgs[:3:3], "Subject: crlf\n\n>From x\n")
	if len(got) != len(want) {
		t.Fatalf("read back %d messages: %q", len(got), got)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("message %d: %q, want %q", i, got[i], want[i])
		}
	}
	// The same bytes an mbox file gets.
	if !bytes.Equal(out.Bytes()[:len(encodeMboxrd(t, msgQuoting))], encodeMboxrd(t, msgQuoting)) {
		t.Error("stdout framing differs from the mbox framing")
	}
}

func TestStdoutRaw(t *testing.T) {
	var out bytes.Buffer
	s := NewStdout(&out, StdoutOptions{Raw: true, ReceivedHeader: true})
	msg := "Subject: raw\r\n\r\nFrom x\r\nno final newline\r"
	dstDeliver(t, s, "u1", msg)
	if _, err := s.Deliver(context.Background(), dstEnv("u2"), strings.NewReader("second\n")); !errors.Is(err, ErrRawSecondMessage) {
		t.Fatalf("second raw message: %v", err)
	}
	if err := s.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if out.String() != msg {
		t.Fatalf("raw output %q, want %q", out.String(), msg)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestStdoutErrors(t *testing.T) {
	// A closed pipe (the consumer went away) is a local I/O error.
	s := NewStdout(failWriter{errors.New("broken pipe")}, StdoutOptions{})
	_, err := s.Deliver(context.Background(), dstEnv("u1"), strings.NewReader(strings.Repeat("x", 100<<10)))
	var ioe *IOError
	if !errors.As(err, &ioe) || !errors.Is(err, ErrLocalIO) {
		t.Fatalf("write error: %v", err)
	}
	// A broken server stream is returned as it is.
	boom := errors.New("connection reset")
	s = NewStdout(io.Discard, StdoutOptions{})
	if _, err := s.Deliver(context.Background(), dstEnv("u1"), iotest.ErrReader(boom)); !errors.Is(err, boom) || errors.As(err, &ioe) {
		t.Fatalf("read error: %v", err)
	}
}
