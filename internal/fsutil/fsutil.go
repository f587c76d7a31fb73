// Package fsutil answers one question for popfetch's files: is this path safe to trust, that is, can
// no other local user change it? The rule is ssh's StrictModes: a directory popfetch keeps its state
// in must belong to the running user and be writable by no one else, and so must every directory
// above it (root may own those; a world-writable one must be sticky, like /tmp); a file popfetch
// reads instructions from must belong to the user (or root) and be writable by no one else.
//
// Files popfetch writes are opened with NoFollow, so that a symbolic link planted where popfetch
// writes is refused instead of followed.
package fsutil

import (
	"fmt"
)

// UnsafeError reports a path that another user could change. Its message names the path, what is
// wrong and the fix; the setup must change (the CLI exits 78 for it).
type UnsafeError struct {
	Path    string // the file or directory concerned
	What    string // "state directory", "configuration file", ...
	Problem string // "is owned by uid 65534, not by you (uid 0)", ...
	Why     string // "another user could change it", ...
	Fix     string // a command or a sentence
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("%s %s %s: %s; %s", e.What, e.Path, e.Problem, e.Why, e.Fix)
}

const whyChange = "another user could change it, so popfetch refuses it (like ssh)"
