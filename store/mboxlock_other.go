//go:build !unix

package store

import "os"

// mboxFcntlLock does nothing where there is no fcntl: the dotlock alone protects the mbox.
func mboxFcntlLock(f *os.File) (bool, error) { return true, nil }

// mboxPidAlive cannot tell here: every dotlock is left to the age rule.
func mboxPidAlive(pid int) bool { return true }
