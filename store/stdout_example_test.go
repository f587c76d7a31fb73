package store_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/popfetch/popfetch/store"
)

// popfetch --stdout writes mboxrd: a From line per message, one more '>' on lines matching ^>*From,
// a newline after each message. NewMboxrdReader undoes it.
func ExampleNewStdout() {
	env := store.Envelope{UID: "1", Received: time.Date(2026, 11, 23, 9, 5, 7, 0, time.UTC)}
	out := store.NewStdout(os.Stdout, store.StdoutOptions{})
	out.Deliver(context.Background(), env, strings.NewReader("Return-Path: <bob@example.org>\nSubject: hi\n\nFrom here\n>From there\n"))
	out.Commit(context.Background(), nil)
	// Output:
	// From bob@example.org Mon Nov 23 09:05:07 2026
	// Return-Path: <bob@example.org>
	// Subject: hi
	//
	// >From here
	// >>From there
}

func ExampleNewMboxrdReader() {
	r := store.NewMboxrdReader(strings.NewReader("From a@b Mon Nov 23 09:05:07 2026\nSubject: one\n\n>From x\n\nFrom MAILER-DAEMON Mon Nov 23 09:05:08 2026\nSubject: two\n\nbody\n\n"))
	for {
		msg, err := r.Next()
		if err != nil {
			break // io.EOF at the end
		}
		b, _ := io.ReadAll(msg)
		fmt.Printf("%s: %q\n", r.From(), b)
	}
	// Output:
	// a@b Mon Nov 23 09:05:07 2026: "Subject: one\n\nFrom x\n"
	// MAILER-DAEMON Mon Nov 23 09:05:08 2026: "Subject: two\n\nbody\n"
}
