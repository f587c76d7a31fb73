package store

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// encodeMboxrd frames msgs the way Mbox and Stdout do.
func encodeMboxrd(t testing.TB, msgs ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range msgs {
		br := bufio.NewReader(strings.NewReader(m))
		sep := mboxrdFromLine(peekReturnPath(br), time.Date(2026, 11, 23, 9, 5, 7, 0, time.UTC))
		if rerr, werr := writeMboxrd(&buf, sep, "", br); rerr != nil || werr != nil {
			t.Fatal(rerr, werr)
		}
	}
	return buf.Bytes()
}

var mboxrdCases = []string{
	"Subject: quoting\n\nFrom x\n>From x\n>>From x\nFrom\nFrom: not a separator\n >From x\n",
	"Subject: no final newline\n\nlast line",
	"Subject: ends in From\n\nFrom x",
	"",
	"\n",
	"\n\n",
	"Subject: blank lines at the end\n\nbody\n\n\n",
	">From x\n",
	">>>>From \n",
	"From ",
	">",
	"Fro",
}

func TestMboxrdRoundTrip(t *testing.T) {
	for _, m := range mboxrdCases {
		enc := encodeMboxrd(t, m)
		got, err := SplitMboxrd(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("%q: %v", m, err)
		}
		if len(got) != 1 || string(got[0]) != m {
			t.Errorf("%q: encoded %q, read back %q", m, enc, got)
		}
	}
	// All of them in one stream, read through a one-byte reader (every line split at every byte).
	enc := encodeMboxrd(t, mboxrdCases...)
	got, err := SplitMboxrd(iotest.OneByteReader(bytes.NewReader(enc)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(mboxrdCases) {
		t.Fatalf("read %d messages, want %d: %q", len(got), len(mboxrdCases), got)
	}
	for i := range got {
		if string(got[i]) != mboxrdCases[i] {
			t.Errorf("message %d: %q, want %q", i, got[i], mboxrdCases[i])
		}
	}
}

func TestMboxrdQuotingBytes(t *testing.T) {
	enc := string(encodeMboxrd(t, "a\nFrom x\n>From x\n>>From x\nFromage\n>Fromage\n"))
	want := "From MAILER-DAEMON Mon Nov 23 09:05:07 2026\na\n>From x\n>>From x\n>>>From x\nFromage\n>Fromage\n\n"
	if enc != want {
		t.Errorf("got\n%q\nwant\n%q", enc, want)
	}
}

func TestMboxrdCRLFAndSender(t *testing.T) {
	msg := "Received: x\r\nReturn-Path:\r\n <bob@example.org>\r\nSubject: s\r\n\r\nFrom here\r\nbare\rCR\r\n"
	enc := string(encodeMboxrd(t, msg))
	want := "From bob@example.org Mon Nov 23 09:05:07 2026\nReceived: x\nReturn-Path:\n <bob@example.org>\n" +
		"Subject: s\n\n>From here\nbare\rCR\n\n"
	if enc != want {
		t.Errorf("got\n%q\nwant\n%q", enc, want)
	}
	for _, tc := range []struct{ msg, sender string }{
		{"Return-Path: <>\n\n", ""},
		{"return-path: <a@b>\n\n", "a@b"},
		{"Subject: x\n\nReturn-Path: <a@b>\n", ""}, // in the body
		{"Return-Path: <a b@c>\n\n", ""},           // unusable in a From line
		{"X: y\nReturn-Path: <a@b> (comment)\n\n", "a@b"},
	} {
		if got := peekReturnPath(bufio.NewReader(strings.NewReader(tc.msg))); got != tc.sender {
			t.Errorf("%q: sender %q, want %q", tc.msg, got, tc.sender)
		}
	}
}

func TestMboxrdReaderFrom(t *testing.T) {
	r := NewMboxrdReader(strings.NewReader("From a@b Mon Nov 23 09:05:07 2026\nx\n\nFrom MAILER-DAEMON Tue Nov 24 00:00:00 2026\ny\n\n"))
	var froms, bodies []string
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(m)
		froms, bodies = append(froms, r.From()), append(bodies, string(b))
	}
	if strings.Join(froms, "|") != "a@b Mon Nov 23 09:05:07 2026|MAILER-DAEMON Tue Nov 24 00:00:00 2026" ||
		strings.Join(bodies, "|") != "x\n|y\n" {
		t.Errorf("froms %q bodies %q", froms, bodies)
	}
	if _, err := SplitMboxrd(strings.NewReader("Subject: not an mbox\n")); err != ErrNotMboxrd {
		t.Errorf("err = %v, want ErrNotMboxrd", err)
	}
	if msgs, err := SplitMboxrd(strings.NewReader("")); err != nil || len(msgs) != 0 {
		t.Errorf("empty stream: %q, %v", msgs, err)
	}
}

func FuzzMboxrdRoundTrip(f *testing.F) {
	for _, m := range mboxrdCases {
		f.Add(m, "second\n")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		// CR is turned into LF on the way in (CRLF only), so compare against that.
		norm := func(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }
		enc := encodeMboxrd(t, a, b)
		got, err := SplitMboxrd(bytes.NewReader(enc))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || string(got[0]) != norm(a) || string(got[1]) != norm(b) {
			t.Fatalf("encoded %q, read back %q", enc, got)
		}
	})
}
