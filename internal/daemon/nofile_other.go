//go:build !unix

package daemon

// openFileLimit: unknown here.
func openFileLimit() uint64 { return 0 }
