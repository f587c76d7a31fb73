package fetch

import (
	"fmt"
	"time"

	"github.com/popfetch/popfetch/internal/humanize"
)

// Summary says in one line what a sync that took took came to: "ACCOUNT: 3 fetched (12.0 KiB), 3
// deleted in 210ms", "ACCOUNT: no new mail (5 on the server)", or that it was deferred by the
// server's LOGIN-DELAY.
func (r Result) Summary(took time.Duration) string {
	if !r.DeferredUntil.IsZero() {
		return fmt.Sprintf("%s: not polled: the server asked not to log in again before %s (LOGIN-DELAY)",
			r.Account, r.DeferredUntil.Local().Format("15:04:05"))
	}
	if r.Retrieved == 0 && r.Deleted == 0 {
		return fmt.Sprintf("%s: no new mail (%d on the server)", r.Account, r.Listed)
	}
	s := fmt.Sprintf("%s: %d fetched (%s)", r.Account, r.Retrieved, humanize.Bytes(r.Bytes))
	if r.Deleted > 0 {
		s += fmt.Sprintf(", %d deleted", r.Deleted)
	}
	if r.Skipped > 0 {
		s += fmt.Sprintf(", %d left on the server", r.Skipped)
	}
	return s + fmt.Sprintf(" in %s", took.Round(time.Millisecond))
}
