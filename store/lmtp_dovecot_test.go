package store_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test/dovecot"
	"github.com/popfetch/popfetch/store"
)

// TestLMTPDovecot delivers over LMTP to a real dovecot-lmtpd and reads the user's maildir back. It is
// skipped when Dovecot is not installed (unless POPFETCH_REQUIRE_DOVECOT=1).
func TestLMTPDovecot(t *testing.T) {
	srv := dovecot.Start(t, &dovecot.Options{LMTP: true})
	ctx := context.Background()
	d, err := store.NewLMTP("unix:"+srv.LMTPSocket, "alice@example.org", store.LMTPOptions{ReceivedHeader: true, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	env := store.Envelope{Account: "work", User: "alice", Host: "pop.example.org", UID: "u1",
		Received: time.Date(2026, 11, 23, 9, 5, 7, 0, time.UTC)}
	msgs := []string{
		"Return-Path: <bob@example.org>\r\nSubject: dots\r\n\r\n.\r\n..two\r\nFrom x\r\n>From y\r\n",
		"Subject: lf and no final newline\n\nlast line",
	}
	for _, m := range msgs {
		if _, err := d.Deliver(ctx, env, strings.NewReader(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}

	// Dovecot stores LF line endings and adds its own trace headers (Return-Path, Delivered-To,
	// Received) above ours; everything from our Received header on is the message as sent.
	got := srv.Mailbox(t, "alice")
	if len(got) != len(msgs) {
		t.Fatalf("mailbox holds %d messages, want %d", len(got), len(msgs))
	}
	for i, m := range msgs {
		want := store.ReceivedHeader(env) + strings.ReplaceAll(m, "\r\n", "\n")
		if !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		stored := got[i]
		if j := bytes.Index(stored, []byte("Received: from pop.example.org by popfetch")); j < 0 || string(stored[j:]) != want {
			t.Errorf("message %d stored as %q, want it to end with %q", i, stored, want)
		}
	}
	if !bytes.Contains(got[0], []byte("Return-Path: <bob@example.org>\n")) {
		t.Errorf("envelope sender not taken from Return-Path: %q", got[0])
	}

	// An unknown user is refused for good.
	d2, err := store.NewLMTP("unix:"+srv.LMTPSocket, "nobody@example.org", store.LMTPOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	_, err = d2.Deliver(ctx, env, strings.NewReader("Subject: x\n\n"))
	var re *store.RelayError
	if !errors.As(err, &re) || re.Code != 550 || re.Temporary() || !errors.Is(err, store.ErrRefused) {
		t.Fatalf("unknown user: %v", err)
	}
}
