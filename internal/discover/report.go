package discover

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3"
)

// Report writes what DNS said and what each probe found, one line each, indented. Probes that failed
// because the host does not exist are summed up in one line unless verbose; timeout is the probes'
// (for "no answer within ...").
func (d *Discovery) Report(w io.Writer, verbose bool, timeout time.Duration) {
	for _, n := range d.Notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
	var unknown, skipped []string
	for _, r := range d.Results {
		switch {
		case errors.Is(r.Err, ErrNotNeeded):
			skipped = append(skipped, r.Addr()+" ("+ModeLabel(r.Mode)+")")
		case r.Err == nil:
			fmt.Fprintf(w, "  ok      %s  %s (%s): %s\n", r.Addr(), ModeLabel(r.Mode), r.Source, CapsSummary(r))
		case NotFound(r.Err) && !verbose:
			if !slices.Contains(unknown, r.Host) {
				unknown = append(unknown, r.Host)
			}
		default:
			fmt.Fprintf(w, "  failed  %s  %s (%s): %s\n", r.Addr(), ModeLabel(r.Mode), r.Source, DescribeErr(r.Err, timeout))
		}
	}
	if len(unknown) > 0 {
		fmt.Fprintf(w, "  no such host: %s\n", strings.Join(unknown, ", "))
	}
	if len(skipped) > 0 {
		fmt.Fprintf(w, "  not waited for (a safer setting works): %s\n", strings.Join(skipped, ", "))
	}
}

// Advice says what the chosen server's capabilities mean for a profile with the given auth: value
// (as the profile spells it; "" or "auto" for the default), for an address in domain ("" when the
// server was given rather than discovered). One sentence per item.
func Advice(r Result, auth, domain string) []string {
	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	if domain != "" && r.SRV && r.Source != "--host" && r.Host != domain && !strings.HasSuffix(r.Host, "."+domain) {
		note("the server %s named by DNS is not in %s: check that it is your provider's", r.Host, domain)
	}
	if r.Mode == pop3.TLSNone {
		note("tls: none sends everything in clear; auth auto uses only SCRAM there (APOP and CRAM-MD5 digests can be cracked offline), unless you add allow_plaintext_auth: true")
	}
	if r.Err != nil || r.Caps == nil {
		return notes
	}
	if !r.Caps.UIDL {
		note("the server has no UIDL: popfetch deletes messages once delivered (keep: true is impossible)")
	}
	oauthOnly := len(r.Caps.SASL) > 0 && !r.Caps.User
	for _, m := range r.Caps.SASL {
		if m != "XOAUTH2" && m != "OAUTHBEARER" {
			oauthOnly = false
		}
	}
	if oauthOnly {
		note("the server offers only OAuth2 (%s): see the README on OAuth2", strings.Join(r.Caps.SASL, " "))
	}
	if auth != "" && auth != "auto" {
		offered := true
		switch auth {
		case "user":
			offered = r.Caps.User
		case "apop":
		default:
			offered = r.Caps.HasSASL(strings.ToUpper(auth))
		}
		if !offered {
			note("the server does not advertise %s (CAPA); auth: %s may be refused", strings.ToUpper(auth), auth)
		}
	}
	return notes
}
