// Package certfp parses and formats SHA-256 certificate fingerprints, the pins of the
// tls_fingerprint profile key: "sha256:" and 64 hex digits, colons allowed between them, as
// `openssl x509 -noout -fingerprint -sha256` prints them.
package certfp

import (
	"encoding/hex"
	"errors"
	"strings"
)

// Prefix names the hash in the written form.
const Prefix = "sha256:"

// ErrSyntax is the error of Parse: s is not a SHA-256 fingerprint.
var ErrSyntax = errors.New("want 64 hex digits, colons allowed, optionally after sha256:")

// Parse parses a SHA-256 fingerprint: 64 hex digits of either case, colons allowed anywhere between
// them, surrounding white space ignored. The Prefix (any case) is optional; hasPrefix says whether
// it was there.
func Parse(s string) (fp [32]byte, hasPrefix bool, err error) {
	h := strings.TrimSpace(s)
	if len(h) >= len(Prefix) && strings.EqualFold(h[:len(Prefix)], Prefix) {
		h, hasPrefix = h[len(Prefix):], true
	}
	b, err := hex.DecodeString(strings.ReplaceAll(h, ":", ""))
	if err != nil || len(b) != len(fp) {
		return fp, hasPrefix, ErrSyntax
	}
	copy(fp[:], b)
	return fp, hasPrefix, nil
}

// Canonical is the form a loaded profile keeps: Prefix and 64 lowercase hex digits, no colons.
func Canonical(fp [32]byte) string { return Prefix + hex.EncodeToString(fp[:]) }
