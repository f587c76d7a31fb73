//go:build !linux

package courier

import "syscall"

const supported = false

func sysProcAttr() *syscall.SysProcAttr { return nil }
