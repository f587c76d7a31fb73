package pop3

import (
	"strconv"
	"strings"
)

// Capabilities is the server's reply to CAPA (RFC 2449 §6), parsed.
type Capabilities struct {
	Top            bool     // TOP (§6.2)
	User           bool     // USER (§6.3)
	SASL           []string // SASL mechanisms, upper case (§6.4, RFC 5034)
	RespCodes      bool     // RESP-CODES (§6.5)
	LoginDelay     Delay    // LOGIN-DELAY (§6.6), seconds
	Pipelining     bool     // PIPELINING (§6.7)
	Expire         Delay    // EXPIRE (§6.8), days; Never for "NEVER"
	UIDL           bool     // UIDL (§6.9)
	Implementation string   // IMPLEMENTATION (§6.10)
	STLS           bool     // STLS (RFC 2595 §4)
	AuthRespCode   bool     // AUTH-RESP-CODE (RFC 3206 §6)
	UTF8           bool     // UTF8 (RFC 6856 §2)
	UTF8User       bool     // "UTF8 USER": UTF-8 user names and passwords are accepted
	// All holds every capability line: the upper-case tag and its arguments.
	All map[string][]string
}

// Delay is the argument of LOGIN-DELAY or EXPIRE.
type Delay struct {
	Set     bool // the capability was advertised
	Never   bool // EXPIRE NEVER
	Value   int  // seconds for LOGIN-DELAY, days for EXPIRE
	PerUser bool // "USER": the value may differ per user after login
}

// Has reports whether the capability tag (case-insensitive) was advertised.
func (c *Capabilities) Has(tag string) bool {
	if c == nil {
		return false
	}
	_, ok := c.All[strings.ToUpper(tag)]
	return ok
}

// HasSASL reports whether the SASL mechanism (case-insensitive) was advertised.
func (c *Capabilities) HasSASL(mech string) bool {
	if c == nil {
		return false
	}
	for _, m := range c.SASL {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

// parseCapa parses the lines of a CAPA reply (without the terminating "."). Unknown tags are kept in
// All; malformed arguments of known tags are ignored rather than refused, since a capability the client
// does not understand must not stop it.
func parseCapa(lines []string) *Capabilities {
	c := &Capabilities{All: make(map[string][]string, len(lines))}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		tag, args := strings.ToUpper(f[0]), f[1:]
		c.All[tag] = args
		switch tag {
		case "TOP":
			c.Top = true
		case "USER":
			c.User = true
		case "SASL":
			for _, m := range args {
				c.SASL = append(c.SASL, strings.ToUpper(m))
			}
		case "RESP-CODES":
			c.RespCodes = true
		case "LOGIN-DELAY":
			c.LoginDelay = parseDelay(args)
		case "PIPELINING":
			c.Pipelining = true
		case "EXPIRE":
			c.Expire = parseDelay(args)
		case "UIDL":
			c.UIDL = true
		case "IMPLEMENTATION":
			c.Implementation = strings.TrimSpace(line[len(f[0]):])
		case "STLS":
			c.STLS = true
		case "AUTH-RESP-CODE":
			c.AuthRespCode = true
		case "UTF8":
			c.UTF8 = true
			for _, a := range args {
				if strings.EqualFold(a, "USER") {
					c.UTF8User = true
				}
			}
		}
	}
	return c
}

func parseDelay(args []string) Delay {
	d := Delay{Set: true}
	if len(args) == 0 {
		return d
	}
	if strings.EqualFold(args[0], "NEVER") {
		d.Never = true
	} else if n, err := strconv.Atoi(args[0]); err == nil && n >= 0 {
		d.Value = n
	}
	if len(args) > 1 && strings.EqualFold(args[1], "USER") {
		d.PerUser = true
	}
	return d
}
