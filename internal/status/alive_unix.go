//go:build unix

package status

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process with this pid exists (signal 0). A daemon killed with
// SIGKILL leaves its status file behind; its pid is then usually free.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
