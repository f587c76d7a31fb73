//go:build !unix

package dovecot

import "syscall"

// Dovecot runs only on Unix systems.
const supported = false

func sysProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(pgid int) {}

func groupMembers(pgid int) []int { return nil }
