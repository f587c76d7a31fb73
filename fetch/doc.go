// Package fetch is popfetch's sync engine: one account's sync as docs/ARCHITECTURE.md §2 describes it.
//
//	lock (by the caller) → dial, authenticate → LIST+UIDL → Plan (pure) → for each batch:
//	pipelined RETR streamed into the Destination → Commit (durability barrier, pending entries in
//	the State) → MarkDelivered → pipelined DELE → QUIT → the State forgets UIDLs gone from the server.
//
// Nothing is deleted on the server before it is durable at its destination and recorded in the state,
// so a crash at any point loses nothing; with a destination that can resolve pending deliveries (a
// maildir) nothing is delivered twice either.
//
// The package declares the small interfaces it consumes (Destination, State); package store satisfies
// them through adapters in cmd/popfetch. It imports fetch/pop3 for the protocol.
package fetch
