package store

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// unsent returns how many octets c has sent that the peer has not acknowledged yet (the socket's
// send queue, SIOCOUTQ), or -1 when that cannot be told.
func unsent(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
			n = v
		}
	})
	return n
}
