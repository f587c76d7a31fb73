// Package pop3test provides an in-process POP3 server for tests, in the
// style of net/http/httptest.
//
// [NewServer] starts a server on 127.0.0.1 with an ephemeral port, a
// maildrop, one user and a TLS certificate issued by a test CA; it is shut
// down by t.Cleanup. The server implements the server side of:
//
//   - RFC 1939, Post Office Protocol - Version 3 (USER/PASS, APOP, STAT,
//     LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, QUIT, the UPDATE state);
//   - RFC 2449, POP3 Extension Mechanism (CAPA, PIPELINING, RESP-CODES,
//     EXPIRE, LOGIN-DELAY, IMPLEMENTATION);
//   - RFC 2595, Using TLS with IMAP, POP3 and ACAP (STLS);
//   - RFC 3206, The SYS and AUTH POP Response Codes;
//   - RFC 5034, POP3 SASL Authentication Mechanism (AUTH), with PLAIN
//     (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195), SCRAM-SHA-1 and SCRAM-SHA-256
//     (RFC 5802, RFC 7677), XOAUTH2 (Google) and OAUTHBEARER (RFC 7628);
//   - RFC 6856, POP3 Support for UTF-8 (the UTF8 command and capability).
//
// Behaviour can be narrowed by [Options] (no CAPA, no UIDL, no TOP, ...) and
// broken on purpose by [Fault]s, which replace, truncate, stall, slow down or
// corrupt the reply to selected commands.
//
// Commands are read up to [MaxCommandLine] octets (AUTH lines up to
// [MaxAuthLine]) and may end in CRLF or a bare LF. Pipelined commands are
// answered in order, and replies are flushed when no more input is
// buffered, so a client may send many commands before reading.
//
// The server is deliberately an independent implementation: it does not
// import the popfetch POP3 client, so that the two can test each other.
//
// Messages are sent as a Dovecot server sends them: bare LF line endings
// become CRLF, lines starting with "." are dot-stuffed, and a CRLF is added
// before the terminating "." when the stored message does not end with a
// newline. LIST and RETR report sizes in octets of the message so converted,
// without dot-stuffing. An empty message is sent as no lines at all.
//
// There is no maildrop locking: each session takes a snapshot of the
// maildrop when it enters the TRANSACTION state, and a QUIT in that state
// removes the messages the session deleted from the shared maildrop (even
// if SetMessages replaced it meanwhile, or UIDs are duplicated). Use a [Fault] replying "-ERR [IN-USE] ..." to simulate a locked
// maildrop.
package pop3test
