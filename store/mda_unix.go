//go:build unix

package store

import (
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// mdaProcessGroup runs the MDA in a process group of its own, so that a timeout or a cancelled run
// kills it together with its children (procmail's, a shell's), not just the first process.
func mdaProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		mdaKill(cmd)
		return nil
	}
}

// mdaKill kills the MDA's process group.
func mdaKill(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// mdaSignal returns the name of the signal that ended the MDA, "" if it exited.
func mdaSignal(xe *exec.ExitError) string {
	if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		if name := unix.SignalName(ws.Signal()); name != "" {
			return name // "SIGKILL": "killed by signal killed" reads badly
		}
		return ws.Signal().String()
	}
	return ""
}
