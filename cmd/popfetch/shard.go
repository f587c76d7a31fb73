package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/internal/shard"
)

// parseShard reads --shard I/N (internal/shard); a malformed value is a usage error.
func parseShard(s string) (shard.Shard, error) {
	sh, err := shard.Parse(s)
	if err != nil {
		return shard.Shard{}, withCode(exitUsage, err)
	}
	return sh, nil
}

// shardFlag is --shard, for sync, check and the daemon (a new value each time: urfave/cli writes
// into its flags).
func shardFlag() cli.Flag {
	return &cli.StringFlag{Name: "shard", EnvVars: []string{"POPFETCH_SHARD"},
		Usage: "take only the accounts whose name hashes to shard `I/N` (0 ≤ I < N): N hosts or replicas share one configuration"}
}

// shardAccounts narrows selected accounts to the shard. Accounts named on the command line that
// belong to another shard are a usage error.
func shardAccounts(sh shard.Shard, accts []*config.Account, named bool) ([]*config.Account, error) {
	if sh.N == 0 {
		return accts, nil
	}
	if named {
		for _, a := range accts {
			if !sh.Has(a.Name) {
				return nil, withCode(exitUsage, fmt.Errorf("account %q is in shard %d/%d, not %s", a.Name, shard.Of(a.Name, sh.N), sh.N, sh))
			}
		}
		return accts, nil
	}
	return sh.Filter(accts), nil
}

// hostSemaphores returns a semaphore per host of accts, sized by their max_connections (for sync
// --jobs, as the daemon limits its polls).
func hostSemaphores(accts []*config.Account) map[string]chan struct{} {
	out := map[string]chan struct{}{}
	for h, n := range config.HostLimits(accts) {
		out[h] = make(chan struct{}, n)
	}
	return out
}
