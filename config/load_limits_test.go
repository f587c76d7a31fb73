package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bigConfig returns a profile of about lines lines of lineLen bytes (comments inside an account), with
// a mis-indented key on the last line, and that line's number.
func bigConfig(lines, lineLen int) (string, int) {
	var b strings.Builder
	b.WriteString("accounts:\n  work:\n    host: pop.example.com\n    user: alice\n    deliver: {maildir: /var/mail/alice}\n")
	n := 5
	comment := "    # " + strings.Repeat("x", max(lineLen-7, 1)) + "\n"
	for ; n < lines-1; n++ {
		b.WriteString(comment)
	}
	b.WriteString("   password_env: POP_PASSWORD\n")
	return b.String(), n + 1
}

// TestLoadRefusesHugeFile: the 9 MB file of issue 12 (450 lines of 20 KB, an error on the last line)
// took 31 s to be refused for its syntax; now its size alone refuses it, at once, with exit 78's
// error type.
func TestLoadRefusesHugeFile(t *testing.T) {
	text, _ := bigConfig(450, 20<<10)
	path := filepath.Join(t.TempDir(), "popfetch.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load: %v, want a *config.Error", err)
	}
	want := path + ": the file is larger than 1 MiB (1048576 bytes), far more than any configuration needs: is it the right file?"
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
}

// TestLoadAtSizeLimit: a file of exactly MaxFileSize bytes is read; one byte more is refused.
func TestLoadAtSizeLimit(t *testing.T) {
	dir := t.TempDir()
	head := "accounts:\n  work:\n    host: pop.example.com\n    user: alice\n    deliver: {maildir: /var/mail/alice}\n    password_env: POP_PASSWORD\n"
	exact := head + "#" + strings.Repeat("x", (1<<20)-len(head)-2) + "\n"
	for _, tc := range []struct {
		text string
		ok   bool
	}{{exact, true}, {exact + "\n", false}} {
		path := filepath.Join(dir, fmt.Sprintf("p%d.yaml", len(tc.text)))
		if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if tc.ok && err != nil {
			t.Errorf("%d bytes: %v", len(tc.text), err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "larger than 1 MiB")) {
			t.Errorf("%d bytes: %v, want the size error", len(tc.text), err)
		}
	}
}

// TestLoadNamesBadLineOfLongFile: in a long file the syntax error is reported at the line that is
// wrong, not at the start of its block (yaml.v3's line); the prefix-by-prefix search gave up beyond
// 500 lines.
func TestLoadNamesBadLineOfLongFile(t *testing.T) {
	for _, size := range []struct{ lines, lineLen int }{{40, 80}, {2000, 80}, {400, 2 << 10}} {
		text, bad := bigConfig(size.lines, size.lineLen)
		_, err := load(t, text)
		want := fmt.Sprintf("test.yaml:%d:4: not valid YAML: did not find expected key", bad)
		if err == nil || err.Error() != want {
			t.Errorf("%d lines of %d bytes: error %v, want %s", size.lines, size.lineLen, err, want)
		}
	}
}

// BenchmarkLoadSyntaxError loads files of growing size with a syntax error on the last line: the time
// per byte should stay flat (it grew with the square of the size before).
func BenchmarkLoadSyntaxError(b *testing.B) {
	for _, kib := range []int{16, 64, 256, 1000} {
		text, _ := bigConfig(kib*1024/2048, 2048)
		b.Run(fmt.Sprintf("%dKiB", kib), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := parse("bench.yaml", []byte(text), 0o600, os.LookupEnv); err == nil {
					b.Fatal("no error")
				}
			}
		})
	}
}
