// Package childenv builds the environment of the programs popfetch runs (an MDA, password_command,
// client_secret_command): popfetch's own environment without the variables that hold secrets.
//
// A variable named by password_env or oauth2.client_secret_env holds a password or a client secret;
// a child inherits it by default (exec.Cmd with a nil Env, or os.Environ()), and from there it can end
// up in the MDA's logs, in a core dump or in the environment of whatever the child runs in turn.
// popfetch passes every child the environment Environ returns instead.
package childenv

import (
	"os"
	"strings"
)

// Environ returns os.Environ() without the variables named in drop, followed by extra ("NAME=value"
// pairs, which replace any inherited variable of the same name).
func Environ(drop []string, extra ...string) []string {
	return Filter(os.Environ(), drop, extra...)
}

// Filter is Environ for a given environment env.
func Filter(env, drop []string, extra ...string) []string {
	gone := make(map[string]bool, len(drop)+len(extra))
	for _, name := range drop {
		gone[name] = true
	}
	for _, kv := range extra {
		name, _, _ := strings.Cut(kv, "=")
		gone[name] = true
	}
	out := make([]string, 0, len(env)+len(extra))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !gone[name] {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}
