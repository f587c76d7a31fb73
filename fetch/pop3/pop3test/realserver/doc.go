// Package realserver holds what the harnesses of real POP3 servers (../dovecot, ../courier) share:
// a test certificate authority and server certificate, a maildir that the server numbers in the
// order messages were seeded, reading a mailbox back, and making a test directory reachable by a
// server's unprivileged processes. It is imported only by those harnesses.
package realserver
