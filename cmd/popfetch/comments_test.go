package main

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// externalRef matches a comment that cites a document a reader of the repository does not have:
// the design notes ("DESIGN §2", "DESIGN.md"), the style notes ("STYLE #7") or an issue number
// ("issue 12.5").
var externalRef = regexp.MustCompile(`//.*(DESIGN|STYLE #|[Ii]ssue [0-9])`)

// commentsExempt are files exempt from the rule (none today).
var commentsExempt = []string{}

// TestCommentsStandAlone: no comment in shipped code (not _test.go, not the vendored go-imap)
// cites a document outside the repository; docs/ARCHITECTURE.md (§n) is where the design lives.
func TestCommentsStandAlone(t *testing.T) {
	root := filepath.Join("..", "..")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, root+string(filepath.Separator)))
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "testdata" || rel == "internal/go-imap-v2" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		for _, p := range commentsExempt {
			if strings.HasPrefix(rel, p) {
				return nil
			}
		}
		n++
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			if externalRef.MatchString(sc.Text()) {
				t.Errorf("%s:%d cites a document outside the repository: %s", rel, line, strings.TrimSpace(sc.Text()))
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("checked only %d files", n)
	}
}
