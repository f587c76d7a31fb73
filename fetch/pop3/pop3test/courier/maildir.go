package courier

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test/realserver"
)

// Seed delivers msgs, in order, into user's mailbox: each is written to the maildir's tmp/ and
// renamed into new/ under a unique name whose timestamp grows (the file's modification time is set
// to the same instant), so that Courier numbers the messages in the order given. The bytes are
// stored as they are; the name (before any ":2,") is the message's UIDL.
func (s *Server) Seed(t testing.TB, user string, msgs ...[]byte) {
	t.Helper()
	if err := s.Deliver(user, msgs...); err != nil {
		t.Fatalf("courier: Seed: %v", err)
	}
}

// Deliver is Seed for callers without a testing.TB: it returns the first error.
func (s *Server) Deliver(user string, msgs ...[]byte) error {
	md, ok := s.maildirs[user]
	if !ok {
		return fmt.Errorf("no user %q", user)
	}
	return realserver.Deliver(md, &s.names, func(tmp string, when time.Time) error {
		if err := os.Lchown(tmp, s.mailUID, s.mailGID); err != nil {
			return err
		}
		return os.Chtimes(tmp, when, when)
	}, msgs...)
}

// Maildir returns the path of user's maildir ("" for an unknown user).
func (s *Server) Maildir(user string) string { return s.maildirs[user] }

// Mailbox returns the messages in user's mailbox now (maildir new/ and cur/), in the order Seed
// delivered them, as stored on disk.
func (s *Server) Mailbox(t testing.TB, user string) [][]byte {
	t.Helper()
	msgs, err := s.Messages(user)
	if err != nil {
		t.Fatalf("courier: Mailbox: %v", err)
	}
	return msgs
}

// Messages is Mailbox for callers without a testing.TB.
//
// Courier answers QUIT before it removes the deleted messages, so a client can be gone while the
// server still holds them: Messages first waits (up to 10 seconds) until no POP3 connection is
// being served, and fails if one still is.
func (s *Server) Messages(user string) ([][]byte, error) {
	md, ok := s.maildirs[user]
	if !ok {
		return nil, fmt.Errorf("no user %q", user)
	}
	if err := s.waitIdle(); err != nil {
		return nil, err
	}
	return realserver.ReadMaildir(md, compareNames)
}

var nameTime = regexp.MustCompile(`^([0-9]+)\.M([0-9]+)P[0-9]+Q([0-9]+)\.`)

// compareNames orders the names nextName makes by their time and sequence number, and any other
// names after them, by name.
func compareNames(a, b string) int {
	key := func(s string) ([3]int64, bool) {
		m := nameTime.FindStringSubmatch(s)
		if m == nil {
			return [3]int64{}, false
		}
		var k [3]int64
		for i := range k {
			k[i], _ = strconv.ParseInt(m[i+1], 10, 64)
		}
		return k, true
	}
	ka, oka := key(a)
	kb, okb := key(b)
	switch {
	case oka && okb:
		if c := slices.Compare(ka[:], kb[:]); c != 0 {
			return c
		}
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}

// waitIdle waits until no process of the server serves a POP3 connection.
func (s *Server) waitIdle() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	deadline := time.Now().Add(stopTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		pids, err := sessionProcesses(s.cmd.Process.Pid)
		if err != nil {
			return fmt.Errorf("sessions: %v", err)
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("POP3 sessions still open after %v: processes %v", stopTimeout, pids)
		}
		select {
		case <-s.exited:
			return errors.New("the server has stopped")
		case <-tick.C:
		}
	}
}
