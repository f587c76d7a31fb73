// Package shard splits a configuration's accounts among processes that share it: --shard I/N takes
// only the accounts whose name hashes to I of N, so that N hosts or replicas poll each account once.
package shard

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/popfetch/popfetch/config"
)

// ErrUsage marks the errors that a command line caused: a malformed --shard, an account named that
// belongs to another shard.
var ErrUsage = errors.New("shard: usage")

// usageError gives err the meaning ErrUsage without changing its text.
type usageError struct{ err error }

func (e usageError) Error() string        { return e.err.Error() }
func (e usageError) Unwrap() error        { return e.err }
func (e usageError) Is(target error) bool { return target == ErrUsage }

// Shard is I/N: the accounts whose name hashes to I of N. The zero value (N = 0) is no sharding:
// every account.
type Shard struct{ I, N int }

// Parse reads "I/N" with 0 ≤ I < N (a StatefulSet's ordinal is I); "" is no sharding.
func Parse(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, usageError{fmt.Errorf("--shard %q: want I/N with 0 ≤ I < N, e.g. 0/3 (shards 0/3, 1/3 and 2/3 share one configuration)", s)}
	}
	return Shard{I: i, N: n}, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.I, s.N) }

// Of returns the shard of n an account name belongs to: FNV-1a (64 bits) of the name, mod n.
// It depends on the name and n only: adding or removing an account moves no other.
func Of(name string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int(h.Sum64() % uint64(n))
}

// Has reports whether the account named name is this shard's.
func (s Shard) Has(name string) bool { return s.N == 0 || Of(name, s.N) == s.I }

// Filter returns the accounts of this shard, in their order.
func (s Shard) Filter(accts []*config.Account) []*config.Account {
	if s.N == 0 {
		return accts
	}
	var out []*config.Account
	for _, a := range accts {
		if s.Has(a.Name) {
			out = append(out, a)
		}
	}
	return out
}

// Select narrows the accounts a command selected to the shard. Accounts named on the command line
// (named) must all be the shard's: one that is not is an error (ErrUsage).
func (s Shard) Select(accts []*config.Account, named bool) ([]*config.Account, error) {
	if s.N == 0 {
		return accts, nil
	}
	if named {
		for _, a := range accts {
			if !s.Has(a.Name) {
				return nil, usageError{fmt.Errorf("account %q is in shard %d/%d, not %s", a.Name, Of(a.Name, s.N), s.N, s)}
			}
		}
		return accts, nil
	}
	return s.Filter(accts), nil
}
