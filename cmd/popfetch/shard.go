package main

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
)

// shard is --shard I/N: this process takes only the accounts whose name hashes to I of N. The
// zero value (N = 0) is no sharding: every account.
type shard struct{ i, n int }

// parseShard reads "I/N" with 0 ≤ I < N (a StatefulSet's ordinal is I).
func parseShard(s string) (shard, error) {
	if s == "" {
		return shard{}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return shard{}, withCode(exitUsage, fmt.Errorf("--shard %q: want I/N with 0 ≤ I < N, e.g. 0/3 (shards 0/3, 1/3 and 2/3 share one configuration)", s))
	}
	return shard{i: i, n: n}, nil
}

func (s shard) String() string { return fmt.Sprintf("%d/%d", s.i, s.n) }

// shardOf returns the shard of n an account name belongs to: FNV-1a (64 bits) of the name, mod n.
// It depends on the name and n only: adding or removing an account moves no other.
func shardOf(name string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int(h.Sum64() % uint64(n))
}

// has reports whether the account named name is this shard's.
func (s shard) has(name string) bool { return s.n == 0 || shardOf(name, s.n) == s.i }

// filter returns the accounts of this shard, in their order.
func (s shard) filter(accts []*config.Account) []*config.Account {
	if s.n == 0 {
		return accts
	}
	var out []*config.Account
	for _, a := range accts {
		if s.has(a.Name) {
			out = append(out, a)
		}
	}
	return out
}

// shardFlag is --shard, for sync, check and the daemon (a new value each time: urfave/cli writes
// into its flags).
func shardFlag() cli.Flag {
	return &cli.StringFlag{Name: "shard", EnvVars: []string{"POPFETCH_SHARD"},
		Usage: "take only the accounts whose name hashes to shard `I/N` (0 ≤ I < N): N hosts or replicas share one configuration"}
}

// shardAccounts narrows selected accounts to the shard. Accounts named on the command line that
// belong to another shard are a usage error.
func shardAccounts(sh shard, accts []*config.Account, named bool) ([]*config.Account, error) {
	if sh.n == 0 {
		return accts, nil
	}
	if named {
		for _, a := range accts {
			if !sh.has(a.Name) {
				return nil, withCode(exitUsage, fmt.Errorf("account %q is in shard %d/%d, not %s", a.Name, shardOf(a.Name, sh.n), sh.n, sh))
			}
		}
		return accts, nil
	}
	return sh.filter(accts), nil
}
