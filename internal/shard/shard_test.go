package shard

import (
	"fmt"
	"testing"
)

func TestParseShard(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Shard
		ok   bool
	}{
		{"", Shard{}, true}, {"0/1", Shard{0, 1}, true}, {"2/3", Shard{2, 3}, true}, {" 1 / 4 ", Shard{1, 4}, true},
		{"3/3", Shard{}, false}, {"-1/3", Shard{}, false}, {"1/0", Shard{}, false}, {"1", Shard{}, false}, {"a/b", Shard{}, false},
	} {
		got, err := Parse(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestShardCoversOnce: across N shards every account is in exactly one, the shards are about
// equal, and adding accounts moves none of the others.
func TestShardCoversOnce(t *testing.T) {
	names := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%05d", prefix, i)
		}
		return out
	}
	for _, n := range []int{1, 2, 3, 5, 16} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			before := map[string]int{}
			count := make([]int, n)
			for _, name := range names("user", 10000) {
				in := 0
				for i := range n {
					if (Shard{i, n}).Has(name) {
						in++
						before[name] = i
					}
				}
				if in != 1 {
					t.Fatalf("%s is in %d of %d shards", name, in, n)
				}
				count[before[name]]++
			}
			for i, c := range count {
				if mean := 10000 / n; c < mean*9/10 || c > mean*11/10 {
					t.Errorf("shard %d/%d has %d accounts, want about %d (%v)", i, n, c, mean, count)
				}
			}
			// Stable: the same names land where they did, whatever else the configuration holds.
			for _, name := range append(names("user", 10000), names("new", 3000)...) {
				if i, ok := before[name]; ok && Of(name, n) != i {
					t.Fatalf("%s moved from shard %d to %d", name, i, Of(name, n))
				}
			}
		})
	}
}
