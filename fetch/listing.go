package fetch

import (
	"hash/maphash"
	"slices"

	"github.com/popfetch/popfetch/fetch/pop3"
)

// duplicateUID returns a UIDL that two messages of listing share, if any. It sorts 64-bit hashes
// (8 bytes a message) instead of building a set of the UIDLs (a map of a million strings costs tens
// of MB on top of the listing), and compares the strings only when two hashes are equal.
func duplicateUID(listing []pop3.MessageInfo) (string, bool) {
	seed := maphash.MakeSeed()
	hashes := make([]uint64, len(listing))
	for i, m := range listing {
		hashes[i] = maphash.String(seed, m.UID)
	}
	slices.Sort(hashes)
	var same map[uint64]bool // hashes seen more than once: rare
	for i := 1; i < len(hashes); i++ {
		if hashes[i] == hashes[i-1] {
			if same == nil {
				same = make(map[uint64]bool)
			}
			same[hashes[i]] = true
		}
	}
	if same == nil {
		return "", false
	}
	byHash := make(map[uint64][]string)
	for _, m := range listing {
		h := maphash.String(seed, m.UID)
		if !same[h] {
			continue
		}
		if slices.Contains(byHash[h], m.UID) {
			return m.UID, true
		}
		byHash[h] = append(byHash[h], m.UID)
	}
	return "", false
}
