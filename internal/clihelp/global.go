package clihelp

import "github.com/urfave/cli/v2"

// setLocally returns the innermost context of c's lineage where the flag name was given on the
// command line, or nil. (urfave/cli's own lookup stops at the innermost command that defines the
// flag, set or not, which would hide `popfetch -v sync` behind sync's own -v.)
func setLocally(c *cli.Context, name string) *cli.Context {
	for _, ctx := range c.Lineage() {
		if ctx.Command == nil && ctx.App == nil {
			continue
		}
		for _, n := range ctx.LocalFlagNames() {
			if n == name {
				return ctx
			}
		}
	}
	return nil
}

// GlobalBool is a global flag's value wherever on the command line it was given.
func GlobalBool(c *cli.Context, name string) bool {
	if ctx := setLocally(c, name); ctx != nil {
		return ctx.Bool(name)
	}
	return c.Bool(name)
}

// GlobalString is GlobalBool for a string flag (its environment variable applies when it was not
// given).
func GlobalString(c *cli.Context, name string) string {
	if ctx := setLocally(c, name); ctx != nil {
		return ctx.String(name)
	}
	return c.String(name)
}
