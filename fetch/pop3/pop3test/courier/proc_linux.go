package courier

import "syscall"

const supported = true

// sysProcAttr makes the init script PID 1 of new PID and mount namespaces (killing it kills every
// Courier process), and kills it when the test binary dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
}
