package main

import (
	"testing"

	"github.com/popfetch/popfetch/internal/shard"
)

// TestParseShardUsage: a malformed --shard is a usage error (internal/shard parses it).
func TestParseShardUsage(t *testing.T) {
	for _, in := range []string{"3/3", "-1/3", "1/0", "1", "a/b"} {
		if _, err := shard.Parse(in); exitCode(err) != exitUsage {
			t.Errorf("shard.Parse(%q): exit %d, want %d", in, exitCode(err), exitUsage)
		}
	}
	if sh, err := shard.Parse("2/3"); err != nil || sh.I != 2 || sh.N != 3 {
		t.Errorf("shard.Parse(2/3) = %v, %v", sh, err)
	}
}
