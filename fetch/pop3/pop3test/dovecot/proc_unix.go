//go:build unix && !linux

package dovecot

import "syscall"

const supported = true

// sysProcAttr puts Dovecot in its own process group.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func killGroup(pgid int) { syscall.Kill(-pgid, syscall.SIGKILL) }

// groupMembers would list the processes left in the group; without /proc it reports none.
func groupMembers(pgid int) []int { return nil }
