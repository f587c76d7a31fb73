package main

import (
	"errors"
	"syscall"
)

// resourceErrnos are the failures of a machine short of a resource rather than of anything
// popfetch or the server did wrong: file descriptors (per process or system-wide), memory, kernel
// buffers, processes. They pass (a poll later, with fewer accounts at once, may well work), so they
// are temporary (75) wherever they surface: the state file, the lock, the dial, the destination, an
// MDA that cannot be started.
var resourceErrnos = []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.ENOBUFS, syscall.EAGAIN}

// resourceExhausted reports whether err, anywhere in its chain, is one of resourceErrnos.
func resourceExhausted(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range resourceErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
