package discover

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Limits of discovery: a domain's DNS decides what `popfetch init` connects to, and an
// SRV answer of thousands of records must not turn into thousands of connections.
const (
	// MaxSRVTargets is how many targets (distinct host and port) of one SRV name are probed, in
	// the order RFC 2782 says to try them; the others are dropped with a note. No provider publishes
	// more than a couple.
	MaxSRVTargets = 4
	// MaxProbes is how many probes are in flight at once.
	MaxProbes = 8
)

// capRecords keeps the first MaxSRVTargets distinct targets of l.records (a target repeated,
// same host and port, counts once) and counts the records it dropped in l.dropped.
func (l *srvLookup) capRecords() {
	seen := map[string]bool{}
	var kept []*net.SRV
	for _, r := range l.records {
		key := net.JoinHostPort(strings.ToLower(strings.TrimSuffix(r.Target, ".")), strconv.Itoa(int(r.Port)))
		if seen[key] || len(kept) >= MaxSRVTargets {
			l.dropped++
			continue
		}
		seen[key] = true
		kept = append(kept, r)
	}
	l.records = kept
}

// droppedNote says what capRecords dropped.
func (l *srvLookup) droppedNote() string {
	return fmt.Sprintf("SRV %s: %d more record(s) ignored: popfetch probes at most %d targets per SRV name (the first in RFC 2782 order, repeats removed)",
		l.name, l.dropped, MaxSRVTargets)
}
