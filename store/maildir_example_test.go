package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/popfetch/popfetch/store"
)

// The order of calls that makes a sync exactly-once on a maildir (DESIGN §2), as the engine makes
// them. Every step is durable before the next one starts; a kill -9 anywhere is settled by Recover
// on the next run.
func Example_exactlyOnce() {
	dir, _ := os.MkdirTemp("", "popfetch-example")
	defer os.RemoveAll(dir)
	stateDir := filepath.Join(dir, "state")

	// 1. The account's lock, then the state and the destination; then settle what a crashed run
	// left pending, before looking at the server's listing. OpenAccount does all four, in this order.
	ctx := context.Background()
	acc, err := store.OpenAccount(ctx, stateDir, "work", store.AccountOptions{
		Destination: func() (store.Destination, error) {
			return store.NewMaildir(filepath.Join(dir, "Maildir"), store.MaildirOptions{ReceivedHeader: true})
		}})
	if err != nil {
		log.Fatal(err) // held: *store.LockedError (store.ErrTemporary); *store.CorruptStateError or *store.IOError (store.ErrLocalIO)
	}
	defer acc.Close()
	st, md := acc.State, acc.Dest

	// 2. For each batch of messages the state has not seen: Deliver each, Commit with the state's
	// journal, mark the batch delivered, and only then DELE it on the server.
	server := map[string]string{"uid-1": "Subject: one\r\n\r\nhello\r\n", "uid-2": "Subject: two\r\n\r\nworld\r\n"}
	var batch []string
	for _, uid := range []string{"uid-1", "uid-2"} {
		if st.Seen(uid) {
			continue
		}
		env := store.Envelope{Account: "work", Host: "pop.example.org", UID: uid, Received: time.Now()}
		if _, err := md.Deliver(ctx, env, strings.NewReader(server[uid])); err != nil {
			md.Abort()
			log.Fatal(err) // *store.IOError: exit 74
		}
		batch = append(batch, uid)
	}
	if err := md.Commit(ctx, st.RecordPending); err != nil {
		log.Fatal(err) // stop the run: no MarkDelivered, no DELE
	}
	if err := st.MarkDelivered(batch, time.Now()); err != nil {
		log.Fatal(err)
	}
	// ... DELE the batch ...

	// 3. After QUIT was answered +OK: forget the UIDLs that are gone from the server.
	if err := st.Retain([]string{"uid-1", "uid-2"}); err != nil {
		log.Fatal(err)
	}
	e, _ := st.Lookup("uid-2")
	fmt.Println(st.Len(), e.Status)
	// Output: 2 delivered
}
