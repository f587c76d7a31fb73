package courier

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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
	for _, m := range msgs {
		name, when := s.nextName()
		tmp := filepath.Join(md, "tmp", name)
		if err := os.WriteFile(tmp, m, 0o600); err != nil {
			return err
		}
		if err := os.Lchown(tmp, s.mailUID, s.mailGID); err != nil {
			return err
		}
		if err := os.Chtimes(tmp, when, when); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(md, "new", name)); err != nil {
			return err
		}
	}
	return nil
}

// Maildir returns the path of user's maildir ("" for an unknown user).
func (s *Server) Maildir(user string) string { return s.maildirs[user] }

// nextName returns a maildir file name "<secs>.M<usecs>P<pid>Q<n>.popfetch-test" and its time:
// now, or a microsecond after the previous name's if the clock has not moved past it.
func (s *Server) nextName() (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().Truncate(time.Microsecond)
	if !now.After(s.lastName) {
		now = s.lastName.Add(time.Microsecond)
	}
	s.lastName = now
	s.seq++
	return fmt.Sprintf("%d.M%06dP%dQ%d.popfetch-test", now.Unix(), now.Nanosecond()/1000, os.Getpid(), s.seq), now
}

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
	for attempt := 1; ; attempt++ {
		msgs, err := readMaildir(md)
		if err == nil {
			return msgs, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 100 {
			return nil, err
		}
	}
}

func readMaildir(md string) ([][]byte, error) {
	var files []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(md, sub))
		if err != nil {
			return nil, fmt.Errorf("maildir: %v", err) // not retried: the maildir itself is gone
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
				files = append(files, filepath.Join(sub, e.Name()))
			}
		}
	}
	slices.SortFunc(files, func(a, b string) int { return compareNames(filepath.Base(a), filepath.Base(b)) })
	msgs := make([][]byte, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(md, f))
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, data)
	}
	return msgs, nil
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
