package main

// Shared helpers of the reliability and security suite: the reliability_*_test.go files run the
// real binary (popfetchBin, built by TestMain in cli_test.go, run by binary_test.go) against
// pop3test servers and a real Dovecot, and check what it leaves behind. Every top-level identifier of the suite starts
// with "rel" so that it cannot clash with the other tests of the package.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/store"
)

// relPassword is the password every test account uses (pop3test's default is "secret"; ours is
// long and unusual so that a leak is found by a plain substring search).
const relPassword = "Pw-7f3c9a1e-HUNTER2-zq"

// relPasswordEnv is the environment variable profiles read the password from.
const relPasswordEnv = "REL_POPFETCH_PASSWORD"

// relRunTimeout bounds every run of the binary: a run that takes longer has hung.
const relRunTimeout = 30 * time.Second

// relNewProfile is a profile of the suite in dir: an account reads its password from
// relPasswordEnv, has a timeout of 5s (generous, so that a loaded CI machine never turns a slow
// handshake into a failure) and its maildir in relMaildir(dir, NAME); a run has binEnv(dir) with the
// password and no progress, and relRunTimeout.
func relNewProfile(t testing.TB, dir string) *profile {
	p := newProfileIn(t, dir, binEnv(dir, relPasswordEnv+"="+relPassword, "POPFETCH_NO_PROGRESS=1"), relRunTimeout)
	p.account = func(name string, port int) ([]string, map[string]string, string) {
		maildir := relMaildir(dir, name)
		return []string{"host", "port", "tls", "user", "timeout", "ca_file", "tls_fingerprint", "auth", "keep", "deliver", "password_env"},
			map[string]string{
				"host": "127.0.0.1", "port": strconv.Itoa(port), "tls": "implicit", "user": "alice", "timeout": "5s",
				"ca_file": "-", "tls_fingerprint": "-", "auth": "-", "keep": "-", "deliver": "{maildir: " + maildir + "}",
				"password_env": relPasswordEnv,
			}, maildir
	}
	return p
}

// relKeep is the key line of keep mode for addAt: "keep: true", or none (the default, delete).
func relKeep(keep bool) string {
	if keep {
		return "keep: true"
	}
	return "keep: -"
}

// relMaildir is the maildir path used for account name in dir.
func relMaildir(dir, name string) string { return filepath.Join(dir, "mail", name) }

// relServer starts a pop3test server with implicit TLS, alice and relPassword, and writes its CA
// to a file for ca_file.
func relServer(t testing.TB, opts pop3test.Options) (*pop3test.Server, string) {
	t.Helper()
	if opts.Password == "" {
		opts.Password = relPassword
	}
	if opts.TLS == pop3test.Plain {
		opts.TLS = pop3test.ImplicitTLS
	}
	s := pop3test.NewServer(t, &opts)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, s.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, ca
}

// relMessage is a seeded message: a sequence header to tell messages apart, and a body.
type relMessage struct {
	UID  string
	Data []byte // as stored on the server, LF line endings
}

// relMessages makes n distinct small messages; size varies with the index. tag makes them
// distinct between tests that share nothing anyway, and readable in a failure.
func relMessages(tag string, n int) []relMessage {
	out := make([]relMessage, n)
	for i := range n {
		var b strings.Builder
		fmt.Fprintf(&b, "From: sender%d@example.org\nTo: alice@example.org\nSubject: %s message %d\nX-Rel-Seq: %s-%d\n\n", i, tag, i, tag, i)
		for l := range 3 + (i*7)%20 {
			switch l % 5 {
			case 1:
				fmt.Fprintf(&b, ".line %d starts with a dot (dot-stuffed on the wire)\n", l)
			case 3:
				fmt.Fprintf(&b, "From line %d, as mbox would quote it\n", l)
			default:
				fmt.Fprintf(&b, "Line %d of message %d: the quick brown fox jumps over the lazy dog.\n", l, i)
			}
		}
		out[i] = relMessage{UID: fmt.Sprintf("%s-uid-%03d", tag, i), Data: []byte(b.String())}
	}
	return out
}

func relToServer(msgs []relMessage) []pop3test.Message {
	out := make([]pop3test.Message, len(msgs))
	for i, m := range msgs {
		out[i] = pop3test.Message{UID: m.UID, Data: m.Data}
	}
	return out
}

// relStripReceived removes the Received: header popfetch prepends (one line and its continuation
// lines), so that the rest can be compared with what the server holds.
func relStripReceived(b []byte) []byte {
	if !bytes.HasPrefix(b, []byte("Received: ")) {
		return b
	}
	i := bytes.IndexByte(b, '\n')
	for i >= 0 && i+1 < len(b) && (b[i+1] == '\t' || b[i+1] == ' ') {
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			return nil
		}
		i += 1 + j
	}
	if i < 0 {
		return nil
	}
	return b[i+1:]
}

// relReadMaildir returns the messages in new/ and cur/ of a maildir (Received: header removed),
// keyed by content, with how many times each is there. A missing maildir is empty.
func relReadMaildir(t testing.TB, md string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(md, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Error(err)
			continue
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(md, sub, e.Name()))
			if err != nil {
				t.Error(err)
				continue
			}
			out[string(relStripReceived(b))]++
		}
	}
	return out
}

// relTally compares what a maildir holds with what was seeded and what the server still holds.
type relTally struct {
	lost, duplicated, foreign int
	delivered                 int      // seeded messages in the maildir exactly once
	onServer                  int      // seeded messages still on the server
	problems                  []string // readable details
}

func (r relTally) ok() bool { return r.lost == 0 && r.duplicated == 0 && r.foreign == 0 }

func (r relTally) String() string {
	s := fmt.Sprintf("lost %d, duplicated %d (delivered %d, on the server %d)", r.lost, r.duplicated, r.delivered, r.onServer)
	if r.foreign > 0 {
		s += fmt.Sprintf(", %d unknown or damaged", r.foreign)
	}
	if len(r.problems) > 0 {
		s += ": " + strings.Join(r.problems[:min(len(r.problems), 5)], "; ")
	}
	return s
}

// relCount checks that every seeded message is either in the maildir or still on the server (none
// lost), none is in the maildir twice, and nothing else is in the maildir.
func relCount(seeded []relMessage, inMaildir map[string]int, onServer [][]byte) relTally {
	var r relTally
	server := map[string]bool{}
	for _, d := range onServer {
		server[string(d)] = true
	}
	known := map[string]bool{}
	for _, m := range seeded {
		k := string(m.Data)
		known[k] = true
		n := inMaildir[k]
		switch {
		case n > 1:
			r.duplicated += n - 1
			r.problems = append(r.problems, fmt.Sprintf("%s delivered %d times", m.UID, n))
		case n == 1:
			r.delivered++
		}
		if server[k] {
			r.onServer++
		} else if n == 0 {
			r.lost++
			r.problems = append(r.problems, fmt.Sprintf("%s lost", m.UID))
		}
	}
	for k, n := range inMaildir {
		if !known[k] {
			r.foreign += n
			r.problems = append(r.problems, fmt.Sprintf("unknown file in the maildir: %.60q", k))
		}
	}
	return r
}

func relServerData(s *pop3test.Server) [][]byte {
	var out [][]byte
	for _, m := range s.Messages() {
		out = append(out, m.Data)
	}
	return out
}

// relCheckState opens the account's state the way popfetch does and checks that it is intact:
// readable, no pending entry left, and every message in the maildir recorded as delivered when
// keep is set (in delete mode delivered UIDLs are forgotten once the server has deleted them).
func relCheckState(t testing.TB, stateDir, account string, seeded []relMessage, inMaildir map[string]int, keep bool) error {
	t.Helper()
	if _, err := os.Stat(filepath.Join(stateDir, account+".state")); errors.Is(err, os.ErrNotExist) {
		return nil // never created: nothing to be intact
	}
	st, err := store.OpenState(stateDir, account)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer st.Close()
	var errs []error
	for _, uid := range st.UIDs() {
		if e, _ := st.Lookup(uid); e.Status != store.StatusDelivered {
			errs = append(errs, fmt.Errorf("state: %s is %s", uid, e.Status))
		}
	}
	delivered := 0
	for _, uid := range st.UIDs() {
		if e, _ := st.Lookup(uid); e.Status == store.StatusDelivered {
			delivered++
		}
	}
	inMd := 0
	for _, m := range seeded {
		if inMaildir[string(m.Data)] > 0 {
			inMd++
		}
	}
	if keep && delivered != inMd {
		errs = append(errs, fmt.Errorf("state: %d UIDLs delivered, %d messages in the maildir", delivered, inMd))
	}
	for _, m := range seeded {
		if m.UID == "" {
			continue // the server assigns it: only the count above is checked
		}
		e, ok := st.Lookup(m.UID)
		in := inMaildir[string(m.Data)] > 0
		if keep && in && (!ok || e.Status != store.StatusDelivered) {
			errs = append(errs, fmt.Errorf("state: %s is in the maildir but not recorded as delivered", m.UID))
		}
		if ok && e.Status == store.StatusDelivered && !in {
			errs = append(errs, fmt.Errorf("state: %s is recorded as delivered but is not in the maildir", m.UID))
		}
	}
	return errors.Join(errs...)
}

// relOneLine checks that stderr is exactly one line "popfetch: ACCOUNT: ..." and returns it.
func relOneLine(stderr, account string) (string, error) {
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if stderr == "" || len(lines) != 1 {
		return "", fmt.Errorf("stderr is not one line:\n%s", stderr)
	}
	prefix := "popfetch: " + account + ": "
	if !strings.HasPrefix(lines[0], prefix) {
		return lines[0], fmt.Errorf("stderr %q does not start with %q", lines[0], prefix)
	}
	return lines[0], nil
}

// relWaitFor polls cond every millisecond until it holds or timeout passes.
func relWaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// relCountCommands counts the lines received by s since the first skip lines that start with
// prefix.
func relCountCommands(s *pop3test.Server, skip int, prefix string) int {
	n := 0
	lines := s.Received()
	if skip > len(lines) {
		skip = len(lines)
	}
	for _, l := range lines[skip:] {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// relSeed returns the seed of the randomised tests: POPFETCH_CRASH_SEED or the clock.
func relSeed(t testing.TB) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("POPFETCH_CRASH_SEED"), 10, 64); err == nil {
		seed = s
	}
	return seed
}

// relLong reports whether the long variants run (POPFETCH_LONG=1).
func relLong() bool { return os.Getenv("POPFETCH_LONG") == "1" }
