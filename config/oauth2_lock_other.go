//go:build !unix

package config

import "os"

// tryLock does nothing where flock(2) does not exist: two processes refreshing one account's token at
// the same instant may then spend a rotated refresh token twice.
func tryLock(*os.File) (busy bool, err error) { return false, nil }
