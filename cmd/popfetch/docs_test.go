package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestArchitectureNamesExist: every file and package that docs/ARCHITECTURE.md names (in backquotes,
// relative to the repository's root; globs allowed) exists, so that a newcomer following it finds
// what it says.
// goIdent matches a qualified Go identifier such as store.Lock, which names no file.
var goIdent = regexp.MustCompile(`^\w+\.[A-Z]`)

func TestArchitectureNamesExist(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	prefixes := []string{"cmd/", "config", "fetch", "store", "internal/", "bench", "docs/", ".ci/"}
	n := 0
	for _, m := range regexp.MustCompile("`([^`\\s]+)`").FindAllStringSubmatch(string(doc), -1) {
		name := m[1]
		known := false
		for _, p := range prefixes {
			known = known || strings.HasPrefix(name, p)
		}
		if goFile.MatchString(name) { // a file named without its directory: it exists somewhere
			if !goFileExists(t, root, name) {
				t.Errorf("docs/ARCHITECTURE.md names %s, which no directory holds", name)
			}
			n++
			continue
		}
		if !known || strings.ContainsAny(name, "()<>") || goIdent.MatchString(name) {
			continue
		}
		matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil || len(matches) == 0 {
			t.Errorf("docs/ARCHITECTURE.md names %s, which does not exist", name)
		}
		n++
	}
	if n < 20 {
		t.Errorf("only %d names checked: has the document's form changed?", n)
	}
}

// goFile is a Go file named without its directory, perhaps as a pattern: "wire*.go".
var goFile = regexp.MustCompile(`^[a-z0-9_*]+\.go$`)

// goFileExists reports whether a file under root matches the pattern name.
func goFileExists(t *testing.T, root, name string) bool {
	found := false
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if ok, _ := filepath.Match(name, d.Name()); ok && !d.IsDir() {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
