package store

import (
	"bytes"
	"testing"
)

// FuzzParseImport: no input makes ParseImport panic, and every UIDL it returns is non-empty.
func FuzzParseImport(f *testing.F) {
	f.Add([]byte("alice@pop.example.org <1.2@host>\n"))
	f.Add([]byte("# mpop\n 2 pop.example.org alice\na\nb\n"))
	f.Add([]byte("uid-1\x001700000000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, kind := range []string{ImportFetchmail, ImportMpop, ImportGetmail} {
			for _, opts := range []ImportOptions{{}, {User: "alice", Host: "pop.example.org"}} {
				ids, err := ParseImport(kind, bytes.NewReader(data), opts)
				if err != nil {
					continue
				}
				for _, id := range ids {
					if id.UID == "" {
						t.Fatalf("%s: empty UIDL from %q", kind, data)
					}
				}
			}
		}
	})
}
