package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: any input either loads into accounts that satisfy the documented invariants, or fails
// with a *Error whose every line starts with the file name; it never panics.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.yaml")
	seeds = append(seeds, "testdata/example.yaml")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	env := func(k string) (string, bool) {
		if k == "HOME" {
			return "/home/fuzz", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse("fuzz.yaml", data, 0o600, env)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Issues) == 0 {
				t.Fatalf("error %T %v", err, err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.yaml") {
					t.Fatalf("error line without the file name: %q", line)
				}
			}
			return
		}
		if len(cfg.Accounts) == 0 {
			t.Fatal("loaded without accounts")
		}
		for _, a := range cfg.Accounts {
			if a.Host == "" || a.User == "" || a.Port < 1 || a.Port > 65535 || a.Deliver.Kind == "" ||
				a.Timeout <= 0 || a.MaxSize < 0 || a.Password.Kind == "" || !accountName.MatchString(a.Name) {
				t.Fatalf("invalid account loaded: %+v", a)
			}
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "10MB", "512KiB", "1.5GiB", "7 b", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseSize(s); err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}
