package fetch_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
)

// memDest is an in-memory Destination: delivered messages become visible only at Commit.
type memDest struct {
	mu        sync.Mutex
	pending   [][]byte
	pend      []fetch.Pending
	committed [][]byte
	failAt    int   // Deliver fails on this delivery (1-based count), 0 = never
	failErr   error // the failure
	count     int
}

func (d *memDest) Deliver(ctx context.Context, m pop3.MessageInfo, body io.Reader) (fetch.Pending, error) {
	d.count++
	data, err := io.ReadAll(body)
	if err != nil {
		return fetch.Pending{}, err
	}
	if d.failAt != 0 && d.count == d.failAt {
		return fetch.Pending{}, d.failErr
	}
	d.pending = append(d.pending, data)
	p := fetch.Pending{UID: m.UID, Ref: fmt.Sprint(d.count)}
	d.pend = append(d.pend, p)
	return p, nil
}

func (d *memDest) Commit(ctx context.Context, journal func([]fetch.Pending) error) error {
	if journal != nil {
		if err := journal(d.pend); err != nil {
			return err
		}
	}
	d.committed = append(d.committed, d.pending...)
	d.pending, d.pend = nil, nil
	return nil
}

func (d *memDest) Abort() error { d.pending, d.pend = nil, nil; return nil }

// memState is an in-memory State.
type memState struct {
	first     map[string]time.Time
	delivered map[string]bool
	delay     time.Time
	now       func() time.Time
	failPend  error
	oversize  map[string]int64
}

func newMemState(now func() time.Time) *memState {
	return &memState{first: map[string]time.Time{}, delivered: map[string]bool{}, now: now, oversize: map[string]int64{}}
}

func (s *memState) FirstSeen(uid string) (time.Time, bool) { t, ok := s.first[uid]; return t, ok }
func (s *memState) RecordPending(ps []fetch.Pending) error {
	if s.failPend != nil {
		return s.failPend
	}
	for _, p := range ps {
		if _, ok := s.first[p.UID]; !ok {
			s.first[p.UID] = s.now()
		}
	}
	return nil
}
func (s *memState) MarkDelivered(uids []string, at time.Time) error {
	for _, u := range uids {
		s.delivered[u] = true
		if _, ok := s.first[u]; !ok {
			s.first[u] = at
		}
	}
	return nil
}
func (s *memState) Retain(uids []string) error {
	keep := map[string]bool{}
	for _, u := range uids {
		keep[u] = true
	}
	for u := range s.first {
		if !keep[u] {
			delete(s.first, u)
			delete(s.delivered, u)
		}
	}
	return nil
}
func (s *memState) LoginDelayUntil() time.Time           { return s.delay }
func (s *memState) SetLoginDelayUntil(t time.Time) error { s.delay = t; return nil }

func messages(n int) []pop3test.Message {
	msgs := make([]pop3test.Message, n)
	for i := range msgs {
		msgs[i] = pop3test.Message{UID: fmt.Sprintf("uid-%03d", i+1),
			Data: []byte(fmt.Sprintf("Subject: %d\n\n.dotted line %d\n", i+1, i+1))}
	}
	return msgs
}

func account(s *pop3test.Server, pol fetch.Policy) *fetch.Account {
	return &fetch.Account{
		Name: "test", Addr: s.Addr(), TLS: pop3.TLSImplicit,
		Options:  pop3.Options{RootCAs: s.CACertPool(), Timeout: 5 * time.Second},
		Username: "alice", Secret: func(context.Context) (string, error) { return "secret", nil },
		Policy: pol, BatchSize: 4,
	}
}

// wantDelivered checks that dest holds exactly the messages with the given 1-based indexes of msgs,
// each once.
func wantDelivered(t *testing.T, dest *memDest, msgs []pop3test.Message, idx ...int) {
	t.Helper()
	var got, want []string
	for _, m := range dest.committed {
		got = append(got, string(m))
	}
	for _, i := range idx {
		want = append(want, string(msgs[i-1].Data))
	}
	sort.Strings(got)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %d messages:\n%q\nwant %d:\n%q", len(got), got, len(want), want)
	}
}

func serverUIDs(s *pop3test.Server) []string {
	var out []string
	for _, m := range s.Messages() {
		out = append(out, m.UID)
	}
	return out
}

func seq(a, b int) []int {
	var out []int
	for i := a; i <= b; i++ {
		out = append(out, i)
	}
	return out
}

func TestSyncDeleteMode(t *testing.T) {
	msgs := messages(10)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs})
	dest, st := &memDest{}, newMemState(time.Now)
	res, err := fetch.Sync(context.Background(), account(s, fetch.Policy{}), dest, st, fetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantDelivered(t, dest, msgs, seq(1, 10)...)
	if left := s.Messages(); len(left) != 0 {
		t.Fatalf("server still holds %d messages", len(left))
	}
	if res.Retrieved != 10 || res.Deleted != 10 || res.Listed != 10 {
		t.Errorf("result = %+v", res)
	}
}

func TestSyncKeepModeSecondRunFetchesNothing(t *testing.T) {
	msgs := messages(6)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs})
	dest, st := &memDest{}, newMemState(time.Now)
	acct := account(s, fetch.Policy{Keep: true})
	for run := 1; run <= 2; run++ {
		res, err := fetch.Sync(context.Background(), acct, dest, st, fetch.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[int]int{1: 6, 2: 0}[run]; res.Retrieved != want || res.Deleted != 0 {
			t.Fatalf("run %d: %+v", run, res)
		}
	}
	wantDelivered(t, dest, msgs, seq(1, 6)...)
	if len(s.Messages()) != 6 {
		t.Fatalf("keep mode changed the server: %v", serverUIDs(s))
	}
}

func TestSyncKeepDays(t *testing.T) {
	msgs := messages(4)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs[:2]})
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	dest, st := &memDest{}, newMemState(now)
	acct := account(s, fetch.Policy{Keep: true, KeepDays: 7})
	run := func() fetch.Result {
		t.Helper()
		res, err := fetch.Sync(context.Background(), acct, dest, st, fetch.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	run() // day 0: messages 1, 2
	clock = clock.Add(5 * 24 * time.Hour)
	s.SetMessages(append(s.Messages(), msgs[2:]...))
	run() // day 5: messages 3, 4; nothing old enough
	if len(s.Messages()) != 4 {
		t.Fatalf("day 5: server holds %v", serverUIDs(s))
	}
	clock = clock.Add(3 * 24 * time.Hour)
	res := run() // day 8: 1 and 2 are 8 days old
	if got := serverUIDs(s); fmt.Sprint(got) != "[uid-003 uid-004]" || res.Deleted != 2 {
		t.Fatalf("day 8: server holds %v (deleted %d), want uid-003 uid-004", got, res.Deleted)
	}
	wantDelivered(t, dest, msgs, 1, 2, 3, 4)
}

func TestSyncLimits(t *testing.T) {
	msgs := messages(5)
	msgs[1].Data = append(bytes.Repeat([]byte("x"), 5000), '\n')
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs})
	dest, st := &memDest{}, newMemState(time.Now)
	res, err := fetch.Sync(context.Background(), account(s, fetch.Policy{MaxSize: 1000, MaxMessages: 3}), dest, st, fetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantDelivered(t, dest, msgs, 1, 3, 4)
	if got := serverUIDs(s); fmt.Sprint(got) != "[uid-002 uid-005]" || res.Skipped != 2 {
		t.Fatalf("server holds %v, skipped %d; want the big one and the one over max_messages", got, res.Skipped)
	}
	// oversize: delete removes it without retrieving it.
	res, err = fetch.Sync(context.Background(), account(s, fetch.Policy{MaxSize: 1000, OversizeDelete: true}), dest, st, fetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantDelivered(t, dest, msgs, 1, 3, 4, 5)
	if left := serverUIDs(s); len(left) != 0 {
		t.Fatalf("server holds %v", left)
	}
}

func TestSyncDeliveryFailureDeletesOnlyWhatWasDelivered(t *testing.T) {
	msgs := messages(10)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs})
	diskFull := errors.New("no space left on device")
	dest, st := &memDest{failAt: 6, failErr: diskFull}, newMemState(time.Now)
	_, err := fetch.Sync(context.Background(), account(s, fetch.Policy{}), dest, st, fetch.Options{})
	if !errors.Is(err, diskFull) {
		t.Fatalf("err = %v, want the delivery error", err)
	}
	wantDelivered(t, dest, msgs, 1, 2, 3, 4, 5)
	if got := serverUIDs(s); fmt.Sprint(got) != fmt.Sprint([]string{"uid-006", "uid-007", "uid-008", "uid-009", "uid-010"}) {
		t.Fatalf("server holds %v, want 6..10", got)
	}
	// The next run (disk no longer full) gets the rest, and nothing twice.
	dest.failAt = 0
	if _, err := fetch.Sync(context.Background(), account(s, fetch.Policy{}), dest, st, fetch.Options{}); err != nil {
		t.Fatal(err)
	}
	wantDelivered(t, dest, msgs, seq(1, 10)...)
}

func TestSyncConnectionDropMidRetrieval(t *testing.T) {
	msgs := messages(10)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs,
		Faults: []pop3test.Fault{{Command: "RETR", Arg: "7", Action: pop3test.DropAfter, Bytes: 20, Count: 1}}})
	dest, st := &memDest{}, newMemState(time.Now)
	_, err := fetch.Sync(context.Background(), account(s, fetch.Policy{}), dest, st, fetch.Options{})
	if err == nil {
		t.Fatal("a dropped connection went unreported")
	}
	// Batches of 4: 1-4 were deleted (but the session never reached QUIT), 5-6 committed.
	wantDelivered(t, dest, msgs, 1, 2, 3, 4, 5, 6)
	if len(s.Messages()) != 10 {
		t.Fatalf("without QUIT nothing may be deleted, server holds %v", serverUIDs(s))
	}
	res, err := fetch.Sync(context.Background(), account(s, fetch.Policy{}), dest, st, fetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantDelivered(t, dest, msgs, seq(1, 10)...)
	if len(s.Messages()) != 0 || res.Retrieved != 4 || res.Deleted != 10 {
		t.Fatalf("second run: %+v, server %v", res, serverUIDs(s))
	}
}

func TestSyncStop(t *testing.T) {
	msgs := messages(10)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs})
	dest, st := &memDest{}, newMemState(time.Now)
	stop := make(chan struct{})
	prog := &stopAfter{n: 3, stop: stop}
	_, err := fetch.Sync(context.Background(), account(s, fetch.Policy{}), dest, st, fetch.Options{Stop: stop, Progress: prog})
	if !errors.Is(err, fetch.ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	wantDelivered(t, dest, msgs, 1, 2, 3)
	if got := len(s.Messages()); got != 7 {
		t.Fatalf("server holds %d messages, want 7 (the 3 delivered were deleted at QUIT)", got)
	}
}

// stopAfter closes stop once n messages are done, as a signal would.
type stopAfter struct {
	n    int
	stop chan struct{}
}

func (p *stopAfter) Planned(int, int64) {}
func (p *stopAfter) Retrieved(int64)    {}
func (p *stopAfter) MessageDone() {
	p.n--
	if p.n == 0 {
		close(p.stop)
	}
}

func TestSyncCommitFailureDeletesNothing(t *testing.T) {
	msgs := messages(3)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs})
	dest, st := &memDest{}, newMemState(time.Now)
	st.failPend = errors.New("state unwritable")
	_, err := fetch.Sync(context.Background(), account(s, fetch.Policy{}), dest, st, fetch.Options{})
	if err == nil || err.Error() != "state unwritable" {
		t.Fatalf("err = %v", err)
	}
	if len(dest.committed) != 0 || len(s.Messages()) != 3 {
		t.Fatalf("commit failed yet %d delivered, server holds %d", len(dest.committed), len(s.Messages()))
	}
}

func TestSyncWithoutUIDL(t *testing.T) {
	msgs := messages(3)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs, NoUIDL: true})
	dest, st := &memDest{}, newMemState(time.Now)
	if _, err := fetch.Sync(context.Background(), account(s, fetch.Policy{Keep: true}), dest, st, fetch.Options{}); !errors.Is(err, fetch.ErrNoUIDL) {
		t.Fatalf("keep mode without UIDL: err = %v", err)
	}
	if len(dest.committed) != 0 || len(s.Messages()) != 3 {
		t.Fatal("keep mode without UIDL changed something")
	}
	if _, err := fetch.Sync(context.Background(), account(s, fetch.Policy{}), dest, st, fetch.Options{}); err != nil {
		t.Fatalf("delete mode without UIDL: %v", err)
	}
	wantDelivered(t, dest, msgs, 1, 2, 3)
	if len(s.Messages()) != 0 {
		t.Fatal("delete mode without UIDL left messages")
	}
}

func TestSyncLoginDelay(t *testing.T) {
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: messages(1), LoginDelay: "900",
		Faults: []pop3test.Fault{{Command: "PASS", Action: pop3test.Reply, Reply: "-ERR [LOGIN-DELAY] wait", Count: 1}}})
	clock := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	dest, st := &memDest{}, newMemState(now)
	acct := account(s, fetch.Policy{})
	acct.Mechanism = "user"
	_, err := fetch.Sync(context.Background(), acct, dest, st, fetch.Options{Now: now})
	var perr *pop3.Error
	if !errors.As(err, &perr) || !perr.Temporary() {
		t.Fatalf("err = %v, want a temporary LOGIN-DELAY refusal", err)
	}
	sessions := s.Sessions()
	clock = clock.Add(10 * time.Minute)
	res, err := fetch.Sync(context.Background(), acct, dest, st, fetch.Options{Now: now})
	if err != nil || res.DeferredUntil.IsZero() || s.Sessions() != sessions {
		t.Fatalf("within the delay: %+v, %v, sessions %d -> %d; want deferred without connecting", res, err, sessions, s.Sessions())
	}
	clock = clock.Add(6 * time.Minute)
	if _, err := fetch.Sync(context.Background(), acct, dest, st, fetch.Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	if len(dest.committed) != 1 {
		t.Fatal("after the delay the message was not fetched")
	}
}

func TestSyncDryRunChangesNothing(t *testing.T) {
	msgs := messages(3)
	s := pop3test.NewServer(t, &pop3test.Options{TLS: pop3test.ImplicitTLS, Messages: msgs})
	dest, st := &memDest{}, newMemState(time.Now)
	res, err := fetch.Sync(context.Background(), account(s, fetch.Policy{}), dest, st, fetch.Options{DryRun: true})
	if err != nil || res.Plan == nil || len(res.Plan.Retrieve) != 3 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	if len(dest.committed)+len(dest.pending) != 0 || len(s.Messages()) != 3 || len(st.first) != 0 {
		t.Fatal("dry run changed something")
	}
}
