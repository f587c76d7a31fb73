package main

import "testing"

// TestParseShardUsage: a malformed --shard is a usage error (internal/shard parses it).
func TestParseShardUsage(t *testing.T) {
	for _, in := range []string{"3/3", "-1/3", "1/0", "1", "a/b"} {
		if _, err := parseShard(in); exitCode(err) != exitUsage {
			t.Errorf("parseShard(%q): exit %d, want %d", in, exitCode(err), exitUsage)
		}
	}
	if sh, err := parseShard("2/3"); err != nil || sh.I != 2 || sh.N != 3 {
		t.Errorf("parseShard(2/3) = %v, %v", sh, err)
	}
}
