//go:build unix

package store

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// writeScript writes an executable shell script and returns its path.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mda.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func newTestMDA(t *testing.T, argv []string, opts MDAOptions) *MDA {
	t.Helper()
	m, err := NewMDA(argv, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMDADeliversBytes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	script := writeScript(t, `cat > "$1"`)
	m := newTestMDA(t, []string{script, out}, MDAOptions{})
	msg := "Subject: mda\n\nFrom x\n>From y\n.\nno final newline"
	p := dstDeliver(t, m, "u1", msg)
	if got := string(dstReadFile(t, out)); got != msg {
		t.Fatalf("MDA got %q, want %q", got, msg)
	}
	var journaled []Pending
	if err := m.Commit(context.Background(), func(ps []Pending) error { journaled = ps; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(journaled) != 1 || journaled[0] != p || p.UID != "u1" {
		t.Errorf("journal got %+v", journaled)
	}

	// CRLF becomes LF; the Received header comes first when asked for.
	m = newTestMDA(t, []string{script, out}, MDAOptions{ReceivedHeader: true})
	dstDeliver(t, m, "u2", "Subject: crlf\r\n\r\nbody\r\n")
	if got, want := string(dstReadFile(t, out)), ReceivedHeader(dstEnv("u2"))+"Subject: crlf\n\nbody\n"; got != want {
		t.Fatalf("MDA got %q, want %q", got, want)
	}
}

func TestMDASubstitution(t *testing.T) {
	dir := t.TempDir()
	m := newTestMDA(t, []string{"/bin/sh", "-c", `printf '%s|%s|%s' "$1" "$2" "$POPFETCH_ACCOUNT" > "$3"`, "sh",
		"user=%u", "acct=%a 100%%", filepath.Join(dir, "%a.out")}, MDAOptions{})
	dstDeliver(t, m, "u1", "x\n")
	if got := string(dstReadFile(t, filepath.Join(dir, "work.out"))); got != "user=alice|acct=work 100%|work" {
		t.Errorf("arguments: %q", got)
	}

	// With a shell, substituted values are quoted: a hostile user name stays one word.
	out := filepath.Join(dir, "shell.out")
	m = newTestMDA(t, []string{`printf '%s' %u > ` + out}, MDAOptions{Shell: true})
	env := dstEnv("u2")
	env.User = "a b'; touch " + filepath.Join(dir, "pwned") + "; '"
	if _, err := m.Deliver(context.Background(), env, strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	if got := string(dstReadFile(t, out)); got != env.User {
		t.Errorf("shell argument %q, want %q", got, env.User)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("a user name was run by the shell")
	}
	// The configuration's form of a shell command.
	m = newTestMDA(t, []string{"sh", "-c", `printf '%s' %a > ` + out}, MDAOptions{Shell: true})
	dstDeliver(t, m, "u3", "x\n")
	if got := string(dstReadFile(t, out)); got != "work" {
		t.Errorf("sh -c form: %q", got)
	}
	if _, err := NewMDA([]string{"a", "b"}, MDAOptions{Shell: true}); err == nil {
		t.Error("Shell with several arguments accepted")
	}
	if _, err := NewMDA(nil, MDAOptions{}); err == nil {
		t.Error("empty command accepted")
	}
}

func mdaErr(t *testing.T, err error) *MDAError {
	t.Helper()
	var me *MDAError
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T), want *MDAError", err, err)
	}
	return me
}

func TestMDAFailures(t *testing.T) {
	ctx := context.Background()
	body := func() io.Reader { return strings.NewReader("Subject: x\n\n" + strings.Repeat("line\n", 50000)) }

	// Exit 1 without reading its input (the write side sees EPIPE): the exit status decides.
	m := newTestMDA(t, []string{writeScript(t, "echo 'procmail: Error while writing to \"/var/mail/alice\"' >&2\nexit 1\n")}, MDAOptions{})
	_, err := m.Deliver(ctx, dstEnv("u1"), body())
	me := mdaErr(t, err)
	if me.Status != 1 || me.Temporary() || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `Error while writing to "/var/mail/alice"`) {
		t.Errorf("exit 1: %v (status %d, refused %v)", err, me.Status, errors.Is(err, ErrRefused))
	}
	if err := m.Commit(ctx, func(ps []Pending) error { t.Errorf("journal for a failed delivery: %v", ps); return nil }); err != nil {
		t.Fatal(err)
	}

	// EX_TEMPFAIL.
	m = newTestMDA(t, []string{writeScript(t, "cat >/dev/null; echo 'over quota' >&2; exit 75\n")}, MDAOptions{})
	_, err = m.Deliver(ctx, dstEnv("u1"), body())
	if me := mdaErr(t, err); !me.Temporary() || !errors.Is(err, ErrTemporary) || !strings.Contains(err.Error(), "over quota") {
		t.Errorf("exit 75: %v", err)
	}

	// Killed by a signal.
	m = newTestMDA(t, []string{writeScript(t, "kill -KILL $$\n")}, MDAOptions{})
	_, err = m.Deliver(ctx, dstEnv("u1"), body())
	if me := mdaErr(t, err); me.Signal != "SIGKILL" || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "killed by signal SIGKILL") {
		t.Errorf("signal: %v (signal %q)", err, me.Signal)
	}

	// Only the tail of a chatty MDA's output is kept.
	m = newTestMDA(t, []string{writeScript(t, "i=0; while [ $i -lt 2000 ]; do echo noise $i; i=$((i+1)); done; echo LAST >&2; exit 2\n")},
		MDAOptions{OutputLimit: 256})
	_, err = m.Deliver(ctx, dstEnv("u1"), body())
	if me := mdaErr(t, err); len(me.Output) > 3*256 || strings.Contains(me.Output, "noise 1 ") || !strings.HasSuffix(me.Output, "LAST") || me.Status != 2 {
		t.Errorf("output tail: %q", me.Output)
	}

	// A command that does not exist.
	m = newTestMDA(t, []string{filepath.Join(t.TempDir(), "no-such-mda")}, MDAOptions{})
	_, err = m.Deliver(ctx, dstEnv("u1"), body())
	if me := mdaErr(t, err); !errors.Is(me, ErrRefused) {
		t.Errorf("missing command: %v", err)
	}
}

func TestMDATimeoutKillsProcessGroup(t *testing.T) {
	// The script's child (sleep) would keep the output pipe open if only the shell were killed.
	m := newTestMDA(t, []string{writeScript(t, "cat >/dev/null\nsleep 100 &\nexec sleep 100\n")}, MDAOptions{Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := m.Deliver(context.Background(), dstEnv("u1"), strings.NewReader("x\n"))
	if me := mdaErr(t, err); !me.TimedOut || !errors.Is(err, ErrRefused) {
		t.Errorf("timeout: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Deliver took %v: the process group was not killed", d)
	}
}

func TestMDAStreamErrorKillsMDA(t *testing.T) {
	// The server stream breaks mid-message: the MDA must not see EOF and deliver a truncated
	// message. This one writes what it read only after a clean EOF.
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	m := newTestMDA(t, []string{writeScript(t, `cat > "$1.tmp" && mv "$1.tmp" "$1"`), out}, MDAOptions{})
	boom := errors.New("connection reset")
	_, err := m.Deliver(context.Background(), dstEnv("u1"),
		io.MultiReader(strings.NewReader(strings.Repeat("line\n", 30000)), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("Deliver = %v, want the stream's error", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the MDA delivered a truncated message: %v", err)
	}
}
