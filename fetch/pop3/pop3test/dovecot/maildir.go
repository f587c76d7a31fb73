package dovecot

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test/realserver"
)

// Seed delivers msgs, in order, into user's mailbox: each is written to the maildir's tmp/ and
// renamed into new/ under a unique name whose timestamp grows, so that Dovecot numbers the
// messages in the order given. The bytes are stored as they are.
func (s *Server) Seed(t testing.TB, user string, msgs ...[]byte) {
	t.Helper()
	if err := s.Deliver(user, msgs...); err != nil {
		t.Fatalf("dovecot: Seed: %v", err)
	}
}

// Deliver is Seed for callers without a testing.TB: it returns the first error.
func (s *Server) Deliver(user string, msgs ...[]byte) error {
	md, ok := s.maildirs[user]
	if !ok {
		return fmt.Errorf("no user %q", user)
	}
	return realserver.Deliver(md, &s.names, func(tmp string, _ time.Time) error { return s.chown(tmp) }, msgs...)
}

// Maildir returns the path of user's maildir ("" for an unknown user). Files written there
// directly must belong to the mail user: Deliver does that.
func (s *Server) Maildir(user string) string { return s.maildirs[user] }

// Empty removes every message of user's mailbox and Dovecot's index and UIDL list, as if the
// mailbox had never been opened; no POP3 session of the user may be open.
func (s *Server) Empty(user string) error {
	md, ok := s.maildirs[user]
	if !ok {
		return fmt.Errorf("no user %q", user)
	}
	for _, sub := range []string{"new", "cur", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(md, sub))
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(md, sub, e.Name())); err != nil {
				return err
			}
		}
	}
	ents, err := os.ReadDir(md)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "dovecot") {
			if err := os.RemoveAll(filepath.Join(md, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// Mailbox returns the messages in user's mailbox now (maildir new/ and cur/), in Dovecot's order,
// as stored on disk. A POP3 session that is still ending (after Close) may be renaming files from
// new/ to cur/; Mailbox then reads the directories again.
func (s *Server) Mailbox(t testing.TB, user string) [][]byte {
	t.Helper()
	msgs, err := s.Messages(user)
	if err != nil {
		t.Fatalf("dovecot: Mailbox: %v", err)
	}
	return msgs
}

// Messages is Mailbox for callers without a testing.TB.
func (s *Server) Messages(user string) ([][]byte, error) {
	md, ok := s.maildirs[user]
	if !ok {
		return nil, fmt.Errorf("no user %q", user)
	}
	return realserver.ReadMaildir(md, compareMaildirNames)
}

var maildirTime = regexp.MustCompile(`^([0-9]+)(?:\.[^.:]*?M([0-9]+))?`)

// compareMaildirNames orders maildir file names as Dovecot's maildir_filename_sort_cmp does:
// seconds, then microseconds when both have them, then the base name (before ":").
func compareMaildirNames(a, b string) int {
	ma, mb := maildirTime.FindStringSubmatch(a), maildirTime.FindStringSubmatch(b)
	num := func(m []string, i int) (int64, bool) {
		if m == nil || m[i] == "" {
			return 0, false
		}
		n, err := strconv.ParseInt(m[i], 10, 64)
		return n, err == nil
	}
	sa, _ := num(ma, 1)
	sb, _ := num(mb, 1)
	if c := cmpInt(sa, sb); c != 0 {
		return c
	}
	ua, oka := num(ma, 2)
	ub, okb := num(mb, 2)
	if oka && okb {
		if c := cmpInt(ua, ub); c != 0 {
			return c
		}
	}
	base := func(s string) string { s, _, _ = strings.Cut(s, ":"); return s }
	return strings.Compare(base(a), base(b))
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Server) chown(path string) error {
	if s.mailUID < 0 {
		return nil
	}
	return os.Lchown(path, s.mailUID, s.mailGID)
}

// writeUsers writes the passwd-file and creates each user's home and maildir.
func (s *Server) writeUsers(users []User) (string, error) {
	uid, gid := s.mailUID, s.mailGID
	if uid < 0 {
		uid, gid = os.Getuid(), os.Getgid()
	}
	var b strings.Builder
	for _, u := range users {
		if _, dup := s.maildirs[u.Name]; dup {
			return "", fmt.Errorf("user %q twice", u.Name)
		}
		home := filepath.Join(s.dir, "home", u.Name)
		md := filepath.Join(home, "Maildir")
		for _, d := range []string{home, md, filepath.Join(md, "new"), filepath.Join(md, "cur"), filepath.Join(md, "tmp")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return "", err
			}
			if err := s.chown(d); err != nil {
				return "", err
			}
		}
		s.maildirs[u.Name] = md
		// user:password:uid:gid:gecos:home:shell:extra
		fmt.Fprintf(&b, "%s:{PLAIN}%s:%d:%d::%s::\n", u.Name, u.Password, uid, gid, home)
	}
	p := filepath.Join(s.dir, "passwd")
	return p, os.WriteFile(p, []byte(b.String()), 0o644)
}
