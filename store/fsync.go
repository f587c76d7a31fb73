package store

import "github.com/popfetch/popfetch/internal/fsutil"

// syncDir makes the entries of directory path durable (fsync on the directory): the last step of
// "temp, fsync, rename, fsync the directory" (fsutil.SyncDir).
var syncDir = fsutil.SyncDir

// retryEINTR calls f again while it fails with EINTR (fsutil.RetryEINTR).
var retryEINTR = fsutil.RetryEINTR
