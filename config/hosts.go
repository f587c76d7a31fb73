package config

import "strings"

// HostKey is the server host an account's sessions count against (max_connections).
func HostKey(a *Account) string { return strings.ToLower(a.Host) }

// HostLimits returns each host's limit of sessions at once: the smallest max_connections of the
// accounts that use it.
func HostLimits(accts []*Account) map[string]int {
	out := map[string]int{}
	for _, a := range accts {
		n := a.MaxConnections
		if n < 1 {
			n = DefaultMaxConnections
		}
		h := HostKey(a)
		if cur, ok := out[h]; !ok || n < cur {
			out[h] = n
		}
	}
	return out
}
