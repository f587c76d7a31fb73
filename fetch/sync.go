package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3"
)

// Pending is a delivered message that is not yet committed (see store.Pending).
type Pending struct {
	UID string
	Ref string
}

// Destination is where the engine delivers: a stream per message, then a durability barrier per batch.
// See store.Destination for the contract.
type Destination interface {
	// Deliver reads body to its end and writes the message; a failed Deliver leaves nothing behind.
	Deliver(ctx context.Context, m pop3.MessageInfo, body io.Reader) (Pending, error)
	// Commit makes the batch durable, calling journal once it is durable but before it is visible.
	Commit(ctx context.Context, journal func([]Pending) error) error
	// Abort discards what was delivered since the last Commit.
	Abort() error
}

// State is what the engine remembers per account (see store.State).
type State interface {
	FirstSeen(uid string) (time.Time, bool)
	RecordPending(batch []Pending) error
	MarkDelivered(uids []string, at time.Time) error
	Retain(uids []string) error
	LoginDelayUntil() time.Time
	SetLoginDelayUntil(t time.Time) error
	// Oversize returns the size recorded by MarkOversize, if any; MarkOversize durably remembers
	// that uid's stream passed max_size after size octets (see OversizeError). Retain forgets such
	// UIDLs too.
	Oversize(uid string) (size int64, ok bool)
	MarkOversize(uid string, size int64) error
}

// Account is one account's connection and policy, resolved from its profile.
type Account struct {
	Name           string
	Addr           string // host:port
	TLS            pop3.TLSMode
	Options        pop3.Options
	Username       string
	Mechanism      string // pop3 mechanism name; "" = auto
	AllowPlaintext bool
	// Secret yields the password or token; it is called once, after the greeting, only when needed.
	Secret func(ctx context.Context) (string, error)
	Policy Policy
	// A batch (one durability barrier, one round of DELE) holds up to BatchSize messages (default
	// 1000) and BatchBytes octets by LIST size (default 16 MiB), and at least one message. Larger
	// batches cost fewer barriers and round trips; smaller ones re-fetch less after a crash.
	BatchSize  int
	BatchBytes int64
}

const (
	defaultBatchSize  = 1000
	defaultBatchBytes = 16 << 20
)

// batches cuts items into batches of at most size messages and bytes octets (by LIST size), each
// holding at least one message.
func batches(items []Item, size int, bytes int64) [][]Item {
	if size <= 0 {
		size = defaultBatchSize
	}
	if bytes <= 0 {
		bytes = defaultBatchBytes
	}
	var out [][]Item
	start, sum := 0, int64(0)
	for i, it := range items {
		if i > start && (i-start >= size || sum+max(it.Size, 0) > bytes) {
			out = append(out, items[start:i])
			start, sum = i, 0
		}
		sum += max(it.Size, 0)
	}
	if start < len(items) {
		out = append(out, items[start:])
	}
	return out
}

// Progress receives what a sync does, for progress bars and verbose output. Methods are called from
// the sync's goroutine.
type Progress interface {
	Planned(messages int, bytes int64)
	Retrieved(bytes int64) // bytes of message body delivered since the last call
	MessageDone()
}

// Options are per-run settings.
type Options struct {
	DryRun   bool             // plan, print, change nothing
	Now      func() time.Time // clock; default time.Now
	Progress Progress         // nil: none
	// Stop, when closed, asks the sync to stop at the next message boundary: the batch delivered so far
	// is committed, recorded and deleted as usual, QUIT is sent, and Sync returns ErrInterrupted.
	// Cancelling ctx instead abandons everything not yet committed.
	Stop <-chan struct{}
}

// Result summarises one account's sync.
type Result struct {
	Account       string    `json:"account"`
	Listed        int       `json:"listed"`
	Retrieved     int       `json:"fetched"`
	Skipped       int       `json:"skipped"`
	Deleted       int       `json:"deleted"`
	Bytes         int64     `json:"bytes"`
	DeferredUntil time.Time `json:"deferred_until,omitzero"` // not polled: LOGIN-DELAY not over
	Plan          *Plan     `json:"-"`                       // the plan (set for dry runs and check)
}

var (
	// ErrInterrupted is returned when Options.Stop closed before the sync finished.
	ErrInterrupted = errors.New("interrupted")
	// ErrNoUIDL is returned when keep mode meets a server without UIDL.
	ErrNoUIDL = errors.New("the server does not support UIDL, which keep mode needs to know which messages it already has (set keep: false)")
	// ErrDuplicateUID is returned when keep mode meets a listing where two messages share a UIDL.
	ErrDuplicateUID = errors.New("the server lists two messages with the same UIDL; keep mode cannot tell them apart")
)

// defaultLoginDelay is how long popfetch waits after "-ERR [LOGIN-DELAY]" when the server did not
// advertise the delay in CAPA.
const defaultLoginDelay = 5 * time.Minute

// Sync runs one sync of acct into dest, remembering in st. The caller holds the account's lock and
// has settled pending entries (store.State.Recover) before. Cancelling ctx abandons the connection at
// once (nothing uncommitted is deleted); Options.Stop stops at the next safe point.
func Sync(ctx context.Context, acct *Account, dest Destination, st State, opts Options) (res Result, err error) {
	res.Account = acct.Name
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if until := st.LoginDelayUntil(); now().Before(until) {
		res.DeferredUntil = until
		return res, nil
	}

	c, caps, err := Connect(ctx, acct)
	if err != nil {
		var perr *pop3.Error
		if errors.As(err, &perr) && perr.HasCode("LOGIN-DELAY") {
			d := defaultLoginDelay
			if caps != nil && caps.LoginDelay.Value > 0 {
				d = time.Duration(caps.LoginDelay.Value) * time.Second
			}
			if serr := st.SetLoginDelayUntil(now().Add(d)); serr != nil {
				return res, serr
			}
		}
		return res, err
	}
	defer c.Close()
	if caps != nil && caps.LoginDelay.Value > 0 {
		// RFC 2449 §6.6: the minimum time between logins. Remember it so the next run does not try
		// before it is over.
		if err := st.SetLoginDelayUntil(now().Add(time.Duration(caps.LoginDelay.Value) * time.Second)); err != nil {
			return res, err
		}
	}

	listing, err := c.Listing(ctx)
	if err != nil {
		return res, err
	}
	res.Listed = len(listing)
	if err := checkUIDs(listing, acct.Policy.Keep); err != nil {
		return res, err
	}
	plan := MakePlan(oversizeSizes(listing, st), st.FirstSeen, acct.Policy, now())
	if is, ok := st.(ImportedState); ok && !acct.Policy.DeleteImported {
		plan = keepImported(plan, is.Imported)
	}
	res.Skipped = len(plan.Skip)
	if opts.DryRun {
		res.Plan = &plan
		c.QuitNoWait(ctx) // nothing to commit: the reply would only cost a round trip
		return res, nil
	}
	if opts.Progress != nil {
		opts.Progress.Planned(len(plan.Retrieve), plan.Bytes())
	}

	// Messages deleted without retrieval (already delivered, expired, oversize with "delete").
	var firstErr error
	if len(plan.Delete) > 0 {
		nums := make([]int, len(plan.Delete))
		for i, it := range plan.Delete {
			nums[i] = it.Number
		}
		n, err := deleteMany(ctx, c, nums)
		res.Deleted += n
		if err != nil {
			if !isBatchRefusal(err) {
				return res, err
			}
			firstErr = err
		}
	}

	for _, items := range batches(plan.Retrieve, acct.BatchSize, acct.BatchBytes) {
		if stopped(opts.Stop) {
			firstErr = ErrInterrupted
			break
		}
		n, bytes, deleted, err := runBatch(ctx, c, items, dest, st, acct.Policy, opts, now)
		res.Retrieved += n
		res.Bytes += bytes
		res.Deleted += deleted
		if err != nil {
			if c.Err() != nil {
				return res, err // no QUIT possible; what was committed is safe
			}
			if firstErr == nil {
				firstErr = err
			}
			if !isBatchRefusal(err) && !pop3.IsRefusal(err) {
				break // delivery failed, state failed or interrupted: QUIT to commit the DELEs so far
			}
		}
	}

	if res.Deleted > 0 {
		// Only a +OK to QUIT commits the deletions (RFC 1939 §6).
		if err := c.Quit(ctx); err != nil {
			return res, err
		}
	} else {
		c.QuitNoWait(ctx) // nothing to commit: the reply would only cost a round trip
	}
	// The server has committed this session's deletions: forget UIDLs no longer listed. Without UIDL
	// there is nothing to keep track of.
	if hasUIDs(listing) {
		uids := make([]string, 0, len(listing))
		for _, m := range listing {
			uids = append(uids, m.UID)
		}
		if err := st.Retain(uids); err != nil {
			return res, err
		}
	}
	return res, firstErr
}

// runBatch retrieves items (pipelined), commits them, records them and deletes those to delete. It
// returns what was retrieved even when it fails: messages delivered before a failure are committed
// and recorded (they are complete), so they are not lost and not fetched again.
func runBatch(ctx context.Context, c *pop3.Client, items []Item, dest Destination, st State, pol Policy,
	opts Options, now func() time.Time) (retrieved int, bytes int64, deleted int, err error) {
	byNum := make(map[int]Item, len(items))
	nums := make([]int, len(items))
	for i, it := range items {
		byNum[it.Number] = it
		nums[i] = it.Number
	}
	var (
		done    []Item
		refused error // the first RETR the server refused; the others go on
	)
	rerr := c.RetrMany(ctx, nums, func(n int, body io.Reader, err error) error {
		if err != nil {
			if refused == nil {
				refused = err
			}
			return nil
		}
		it := byNum[n]
		var capped *sizeCap
		if pol.MaxSize > 0 {
			capped = &sizeCap{r: body, limit: pol.MaxSize + streamSlack(pol.MaxSize)}
			body = capped
		}
		cr := &countingReader{r: body, p: opts.Progress}
		if _, err := dest.Deliver(ctx, it.MessageInfo, cr); err != nil {
			if capped != nil && capped.over {
				return &OversizeError{Number: n, UID: it.UID, ListSize: it.Size, Read: capped.n,
					MaxSize: pol.MaxSize, Delete: pol.OversizeDelete}
			}
			return fmt.Errorf("delivering message %d (UIDL %q): %w", n, it.UID, err)
		}
		if opts.Progress != nil {
			opts.Progress.MessageDone()
		}
		bytes += cr.n
		done = append(done, it)
		if stopped(opts.Stop) {
			return ErrInterrupted
		}
		return nil
	})
	// Whatever happened, the messages delivered are complete: make them durable and record them, so
	// they are neither lost nor fetched again.
	if len(done) > 0 {
		if err := dest.Commit(ctx, func(ps []Pending) error { return st.RecordPending(ps) }); err != nil {
			dest.Abort()
			return 0, 0, 0, err
		}
		uids := make([]string, 0, len(done))
		for _, it := range done {
			if it.UID != "" {
				uids = append(uids, it.UID)
			}
		}
		if err := st.MarkDelivered(uids, now()); err != nil {
			return 0, 0, 0, err // pending in the state: the next run resolves them
		}
	}
	retrieved = len(done)
	var oerr *OversizeError
	if errors.As(rerr, &oerr) && oerr.UID != "" {
		if err := st.MarkOversize(oerr.UID, oerr.Read); err != nil {
			return retrieved, bytes, 0, err
		}
	}
	if c.Err() != nil {
		return retrieved, bytes, 0, rerr // the connection is gone: no DELE
	}
	var del []int
	for _, it := range done {
		if it.Delete {
			del = append(del, it.Number)
		}
	}
	var derr error
	if len(del) > 0 {
		deleted, derr = deleteMany(ctx, c, del)
	}
	switch {
	case rerr != nil:
		return retrieved, bytes, deleted, rerr
	case derr != nil:
		return retrieved, bytes, deleted, derr
	}
	return retrieved, bytes, deleted, refused
}

// deleteMany sends DELE for nums and returns how many the server accepted.
func deleteMany(ctx context.Context, c *pop3.Client, nums []int) (int, error) {
	err := c.DeleMany(ctx, nums)
	var berr *pop3.BatchError
	if errors.As(err, &berr) {
		return len(nums) - len(berr.Refused), err
	}
	if err != nil {
		return 0, err
	}
	return len(nums), nil
}

// Connect dials the account's server, reads its capabilities and logs in. On success the caller owns
// the client. The capabilities are returned even when login fails (nil when the server has no CAPA).
//
// Nothing is sent behind the login's last message until its final reply: a server may hand the
// connection to another process at login (Courier's pop3login execs pop3d) and lose whatever the
// client pipelined behind it.
func Connect(ctx context.Context, acct *Account) (*pop3.Client, *pop3.Capabilities, error) {
	c, err := pop3.Dial(ctx, acct.Addr, acct.TLS, &acct.Options)
	if err != nil {
		return nil, nil, err
	}
	caps := c.Caps()
	if caps == nil {
		caps, err = c.Capa(ctx)
		if err != nil && !pop3.IsRefusal(err) {
			c.Close()
			return nil, nil, err // a server without CAPA says -ERR: go on without
		}
	}
	if err := login(ctx, c, acct); err != nil {
		c.Close()
		return nil, caps, err
	}
	return c, caps, nil
}

func login(ctx context.Context, c *pop3.Client, acct *Account) error {
	secret := ""
	if acct.Secret != nil {
		s, err := acct.Secret(ctx)
		if err != nil {
			return err
		}
		secret = s
	}
	err := c.Auth(ctx, pop3.Credentials{Username: acct.Username, Secret: secret,
		Mechanism: acct.Mechanism, AllowPlaintext: acct.AllowPlaintext})
	if errors.Is(err, pop3.ErrPlaintextAuth) {
		return fmt.Errorf("%w; use tls: implicit or starttls, or set allow_plaintext_auth: true to accept the risk", err)
	}
	return err
}

// checkUIDs refuses listings keep mode cannot work with.
func checkUIDs(listing []pop3.MessageInfo, keep bool) error {
	if !keep || len(listing) == 0 {
		return nil
	}
	for _, m := range listing {
		if m.UID == "" {
			return ErrNoUIDL
		}
	}
	if uid, ok := duplicateUID(listing); ok {
		return fmt.Errorf("%w (%q)", ErrDuplicateUID, uid)
	}
	return nil
}

func hasUIDs(listing []pop3.MessageInfo) bool {
	for _, m := range listing {
		if m.UID == "" {
			return false
		}
	}
	return true
}

func isBatchRefusal(err error) bool {
	var berr *pop3.BatchError
	return errors.As(err, &berr)
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// countingReader counts what the destination reads and reports it as progress.
type countingReader struct {
	r io.Reader
	p Progress
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.p != nil && n > 0 {
		c.p.Retrieved(int64(n))
	}
	return n, err
}
