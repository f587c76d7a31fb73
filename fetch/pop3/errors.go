package pop3

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/popfetch/popfetch/internal/termsafe"
)

// Error is a refusal from the server: a "-ERR" reply. Code is the RFC 2449 response code without
// brackets (for example "IN-USE", "LOGIN-DELAY", "SYS/TEMP", "SYS/PERM", "AUTH"), or "" when the
// reply carried none.
type Error struct {
	Command string // the command keyword that was refused ("RETR", "PASS", "AUTH", "greeting", ...)
	Code    string
	Text    string // the rest of the reply, sanitised for display
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pop3: server refused ")
	b.WriteString(e.Command)
	b.WriteString(": -ERR")
	if e.Code != "" {
		b.WriteString(" [")
		b.WriteString(e.Code)
		b.WriteString("]")
	}
	if e.Text != "" {
		b.WriteString(" ")
		b.WriteString(e.Text)
	}
	return b.String()
}

// IsRefusal reports whether err is, or wraps, a refusal from the server (an *Error): the server
// answered -ERR, as opposed to the connection or the protocol breaking.
func IsRefusal(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// HasCode reports whether the reply carries code, matching hierarchically as RFC 2449 §8 describes:
// HasCode("SYS") is true for "SYS/TEMP".
func (e *Error) HasCode(code string) bool {
	c := strings.ToUpper(e.Code)
	code = strings.ToUpper(code)
	return c == code || strings.HasPrefix(c, code+"/")
}

// Temporary reports whether the refusal is temporary: IN-USE (RFC 2449 §8.1.1), LOGIN-DELAY (§8.1.2)
// or SYS/TEMP (RFC 3206 §4).
func (e *Error) Temporary() bool {
	return e.HasCode("IN-USE") || e.HasCode("LOGIN-DELAY") || e.HasCode("SYS/TEMP")
}

// AuthFailed reports whether the server refused the credentials themselves: an [AUTH] code (RFC 3206
// §5), or any refusal of PASS, APOP or AUTH that is not marked temporary or SYS/PERM.
func (e *Error) AuthFailed() bool {
	if e.HasCode("AUTH") {
		return true
	}
	switch e.Command {
	case "PASS", "APOP", "AUTH", "USER":
		return !e.Temporary() && !e.HasCode("SYS")
	}
	return false
}

var (
	// ErrProtocol is wrapped by every error caused by a reply that breaks the protocol: a line that is
	// neither "+OK" nor "-ERR", an oversized line, a malformed listing. The connection is unusable
	// afterwards.
	ErrProtocol = errors.New("pop3: protocol violation")
	// ErrUnusable is wrapped by the errors of commands issued after the connection broke (an I/O
	// error, a timeout, a protocol violation, a cancelled context, or after Quit/Close).
	ErrUnusable = errors.New("pop3: connection no longer usable")
	// ErrSTLSUnavailable is returned when STLS was required but the server does not offer it or
	// refuses it. Nothing but the greeting and CAPA (and the refused STLS) was exchanged in clear.
	ErrSTLSUnavailable = errors.New("pop3: server does not offer STLS; refusing to continue without TLS")
	// ErrPlaintextAuth is returned when authentication would send a secret over an unencrypted
	// connection and Credentials.AllowPlaintext is false. Nothing was sent.
	ErrPlaintextAuth = errors.New("pop3: refusing to send a password over an unencrypted connection")
	// ErrNoMechanism is returned when no authentication mechanism acceptable to both sides exists.
	ErrNoMechanism = errors.New("pop3: no usable authentication mechanism")
	// ErrFingerprintMismatch is wrapped in a *TLSError when the server's certificate does not match
	// Options.Fingerprint.
	ErrFingerprintMismatch = errors.New("certificate fingerprint does not match the pinned one")
)

// TLSError is a failed TLS handshake: certificate verification, fingerprint pinning, or negotiation.
type TLSError struct {
	Host string
	Err  error
}

// Error says what TLS decided. The text of Err can quote the server's certificate (x509's
// HostnameError lists its names, chosen by whoever is on the path): it is escaped and cut.
func (e *TLSError) Error() string {
	return fmt.Sprintf("pop3: TLS with %s failed: %s", e.Host, sanitizeN(e.Err.Error(), 500))
}

func (e *TLSError) Unwrap() error { return e.Err }

// protocolError builds an error wrapping ErrProtocol.
func protocolError(cmd, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrProtocol, cmd, fmt.Sprintf(format, args...))
}

// sanitize makes server text safe for one-line display (termsafe.String: controls, C1 and invalid
// UTF-8 escaped), and cuts long text.
func sanitize(s string) string { return sanitizeN(s, 200) }

// sanitizeN is sanitize with a limit of max bytes before escaping.
func sanitizeN(s string, max int) string {
	cut := false
	if len(s) > max {
		n := max
		for n > max-utf8.UTFMax && !utf8.RuneStart(s[n]) {
			n--
		}
		s, cut = s[:n], true
	}
	s = termsafe.String(s)
	if cut {
		s += "..."
	}
	return s
}

// ErrListingTooLong is matched (errors.Is) by the error of a LIST or UIDL reply longer than
// MaxListing lines. The connection is closed: the rest of the reply was not read.
var ErrListingTooLong = errors.New("pop3: the maildrop lists too many messages")
