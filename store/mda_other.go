//go:build !unix

package store

import "os/exec"

// mdaProcessGroup leaves the default: without process groups, a timeout kills the MDA process only.
func mdaProcessGroup(cmd *exec.Cmd) {}

// mdaKill kills the MDA process.
func mdaKill(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

// mdaSignal is always "" where processes do not end by signals.
func mdaSignal(xe *exec.ExitError) string { return "" }
