// Package pop3 is popfetch's POP3 client: a streaming, pipelining client on a net.Conn.
//
// It implements:
//   - RFC 1939, Post Office Protocol - Version 3 (USER/PASS, APOP, STAT, LIST, UIDL, RETR, TOP, DELE,
//     RSET, NOOP, QUIT);
//   - RFC 2449, the POP3 extension mechanism (CAPA, PIPELINING, RESP-CODES, EXPIRE, LOGIN-DELAY,
//     IMPLEMENTATION, AUTH-RESP-CODE) and its 512-octet bound on response lines;
//   - RFC 2595 §4, STLS (a profile that asks for STLS fails with ErrSTLSUnavailable when the server
//     does not offer it: never a silent fall-back to plaintext);
//   - RFC 3206, the SYS/TEMP, SYS/PERM and AUTH response codes;
//   - RFC 5034, SASL AUTH, with PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1, SCRAM-SHA-256, XOAUTH2 and
//     OAUTHBEARER (RFC 7628);
//   - RFC 6856, UTF8;
//   - RFC 8314, implicit TLS on port 995 as the default transport.
//
// Every server refusal ("-ERR") is returned as an *Error carrying the command and the RFC 2449 response
// code. A reply that breaks the protocol is an error wrapping ErrProtocol; after it, or after any I/O
// failure, the client refuses further commands with an error wrapping ErrUnusable. Every read has a
// deadline (Options.Timeout); a context cancels blocked I/O.
//
// Message bodies are streamed: Retr and Top return an io.Reader that undoes dot-stuffing, turns CRLF
// into LF, and is valid until the next command. RetrMany and DeleMany pipeline their commands when the
// server advertises PIPELINING (a writer goroutine and the caller's reader, with a bounded window) and
// fall back to lock-step otherwise.
//
// A Client is not safe for concurrent use.
package pop3
