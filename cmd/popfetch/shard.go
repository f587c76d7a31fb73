package main

import (
	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
)

// shardFlag is --shard, for sync, check and the daemon (a new value each time: urfave/cli writes
// into its flags).
func shardFlag() cli.Flag {
	return &cli.StringFlag{Name: "shard", EnvVars: []string{"POPFETCH_SHARD"},
		Usage: "take only the accounts whose name hashes to shard `I/N` (0 ≤ I < N): N hosts or replicas share one configuration"}
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
