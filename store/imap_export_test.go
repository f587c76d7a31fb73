package store

import (
	"strconv"
	"time"
)

// DisableIMAPStreamForTest makes d append its batches at Commit with pipelined APPENDs (no
// MULTIAPPEND), as for a server without MULTIAPPEND.
func DisableIMAPStreamForTest(d *IMAP) { d.o.noMulti = true }

// PendingRefForTest returns the Ref the journal will record for d's first spooled message.
func PendingRefForTest(d *IMAP) string {
	return d.batch[0].p.Ref + "@" + strconv.FormatInt(time.Now().Unix(), 10)
}
