package fetch

// ImportedState is implemented by a State that knows which UIDLs were imported from another
// fetcher's list rather than delivered by popfetch (store.State does). Sync consults it, unless
// Policy.DeleteImported, so that a list imported by mistake (another account's, say) can make
// popfetch skip messages but never delete mail it did not deliver.
type ImportedState interface {
	Imported(uid string) bool
}

// keepImported moves out of p.Delete the messages that would be deleted without retrieval only
// because the state has them (delete mode: "retrieved before"; keep mode: older than keep_days),
// when their UIDL was imported: they become Skip with ReasonImported. Deletions the profile asks for
// regardless of the state (oversize: delete) stay. It is pure, like MakePlan.
func keepImported(p Plan, imported func(uid string) bool) Plan {
	if imported == nil || len(p.Delete) == 0 {
		return p
	}
	del := p.Delete[:0:0]
	for _, it := range p.Delete {
		if (it.Reason == ReasonNotDeleted || it.Reason == ReasonExpired) && it.UID != "" && imported(it.UID) {
			it.Reason, it.Delete = ReasonImported, false
			p.Skip = append(p.Skip, it)
			continue
		}
		del = append(del, it)
	}
	p.Delete = del
	return p
}
