package prompt

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLineAndYes(t *testing.T) {
	var out strings.Builder
	p := &Prompter{Ctx: context.Background(), R: bufio.NewReader(strings.NewReader("  pop.example.org \n\nmaybe\nYES\n")), W: &out}
	if s, err := p.Line("Server", ""); s != "pop.example.org" || err != nil {
		t.Errorf("Line = %q, %v", s, err)
	}
	if s, err := p.Line("Port", "995"); s != "995" || err != nil {
		t.Errorf("Line with an empty answer = %q, %v; want the default", s, err)
	}
	if ok, err := p.Yes("Keep mail on the server?", false); !ok || err != nil {
		t.Errorf("Yes after an unclear answer = %v, %v", ok, err)
	}
	if want := "Server: Port [995]: Keep mail on the server? [y/N]: Keep mail on the server? [y/N]: "; out.String() != want {
		t.Errorf("questions:\n got %q\nwant %q", out.String(), want)
	}
	if _, err := p.Line("More", ""); !errors.Is(err, ErrNoAnswer) {
		t.Errorf("at the end of the input: %v, want ErrNoAnswer", err)
	}
}

func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, _ := io.Pipe() // never answers
	p := &Prompter{Ctx: ctx, R: bufio.NewReader(r), W: io.Discard}
	if _, err := p.Line("Server", ""); !errors.Is(err, ErrInterrupted) {
		t.Errorf("interrupted question: %v, want ErrInterrupted", err)
	}
}

func TestSecretFromStdin(t *testing.T) {
	for _, c := range []struct {
		in, want string
		kind     error
	}{
		{"hunter2\r\nsecond line\n", "hunter2", nil},
		{"no newline", "no newline", nil},
		{"\n", "", ErrNoSecret},
		{"", "", ErrNoSecret},
		{strings.Repeat("x", MaxSecret+1), "", ErrNoSecret},
	} {
		got, err := Secret(strings.NewReader(c.in), io.Discard, "Password")
		if got != c.want || (c.kind == nil) != (err == nil) || (c.kind != nil && !errors.Is(err, c.kind)) {
			t.Errorf("Secret(%.20q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.kind)
		}
	}
	if _, err := Secret(nil, io.Discard, "Password"); !errors.Is(err, ErrNoSecret) {
		t.Errorf("no stdin: %v", err)
	}
	if _, err := Secret(iotest.ErrReader(errors.New("EIO")), io.Discard, "Password"); !errors.Is(err, ErrRead) {
		t.Errorf("a failing stdin: %v, want ErrRead", err)
	}
}
