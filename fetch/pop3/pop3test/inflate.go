package pop3test

import (
	"fmt"
	"strings"
)

// inflate answers a RETR with a generated message of n octets on the wire (the Inflate fault),
// writing it line by line: nothing of its size is held in memory. It stops early when the client
// goes away.
func (s *session) inflate(n int) {
	s.writef("+OK %d octets", n)
	s.srv.trace(s.id, "S:", fmt.Sprintf("(inflated message, %d octets)", n))
	head := "Subject: inflated\r\n\r\n"
	s.writeString(head)
	n -= len(head)
	line := strings.Repeat("x", 998) + "\r\n"
	sent := len(head)
	for n > 0 && s.werr == nil {
		if n < len(line) {
			s.writeString(line[len(line)-max(n, 2):])
			break
		}
		s.writeString(line)
		n -= len(line)
		sent += len(line)
	}
	if s.werr != nil {
		// What the client was handed at most (the rest of the socket buffers may never be read).
		s.srv.trace(s.id, "S:", fmt.Sprintf("(inflated message cut off: the client went away after at most %d octets)", sent))
		return
	}
	s.end3()
}
