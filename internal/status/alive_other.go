//go:build !unix

package status

import "os"

// processAlive reports whether a process with this pid exists: on Windows, FindProcess opens it.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}
