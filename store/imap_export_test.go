package store

// DisableIMAPStreamForTest makes d append its batches at Commit with pipelined APPENDs (no
// MULTIAPPEND), as for a server without MULTIAPPEND.
func DisableIMAPStreamForTest(d *IMAP) { d.o.noMulti = true }
