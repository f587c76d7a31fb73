//go:build !linux

package courier

import "syscall"

const supported = false

func sysProcAttr() *syscall.SysProcAttr { return nil }

func sessionProcesses(init int) ([]int, error) { return nil, nil }

func listeners(init, port int) (ours, others bool, err error) { return false, false, nil }
