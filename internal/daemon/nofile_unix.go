//go:build unix

package daemon

import "syscall"

// openFileLimit returns the process's open-file limit (RLIMIT_NOFILE, soft), 0 if unknown.
func openFileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return uint64(r.Cur)
}
