package store

import (
	"fmt"
	"strings"
	"time"
)

// ReceivedHeader returns the Received: trace line popfetch adds to a message (with a trailing LF), like
// mpop's: it names the server, the account and the time of retrieval. Values that could break the
// header (CR, LF) are dropped.
func ReceivedHeader(env Envelope) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, s)
	}
	t := env.Received
	if t.IsZero() {
		t = time.Now()
	}
	return fmt.Sprintf("Received: from %s by popfetch (account %s);\n\t%s\n",
		clean(env.Host), clean(env.Account), t.Format(time.RFC1123Z))
}
