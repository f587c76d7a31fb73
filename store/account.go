package store

import "context"

// AccountOptions say how OpenAccount opens an account. The zero value takes the lock at once and
// opens no destination.
type AccountOptions struct {
	// Wait waits for a run that holds the account's lock, until ctx is done, instead of failing at
	// once with a *LockedError.
	Wait bool
	// Destination opens the account's destination; OpenAccount calls it once the lock is held and
	// the state is loaded (so that a second run never touches the destination, an mbox's locks say).
	// What a killed run left pending in the state is then settled with the destination if it is a
	// Resolver (maildir, mbox), and discarded (fetched again) if it is not. nil opens nothing and
	// settles nothing: a dry run, a state import.
	Destination func() (Destination, error)

	step func(point string) // test hook: the crash tests kill the process at each point of the state
}

// Account is one account opened for a sync: its lock held, its state loaded, its destination open
// and what a killed run left pending settled. Close releases them in reverse order.
type Account struct {
	Lock  *Lockfile
	State *State
	Dest  Destination // nil without AccountOptions.Destination

	// Delivered and Discarded are the pending UIDLs OpenAccount settled (State.Recover): found in
	// the destination, now delivered, or not found, to be fetched again.
	Delivered, Discarded []string
}

// OpenAccount opens the account name whose state lives in dir, in the order that keeps a sync
// exactly-once: the lock (Lock; a *LockedError, errors.Is ErrLocked, when another run holds it and
// opts.Wait is false), the state (OpenState), the destination (opts.Destination), and the recovery
// of pending entries (State.Recover). Whatever fails, what was opened before is closed again, and
// the failure is returned as it is. With
// opts.Wait, a ctx done before the lock is granted returns ctx's error (the lock, if granted later,
// is released at once).
func OpenAccount(ctx context.Context, dir, name string, opts AccountOptions) (*Account, error) {
	lock, err := lockCtx(ctx, dir, name, opts.Wait)
	if err != nil {
		return nil, err
	}
	a := &Account{Lock: lock}
	if a.State, err = OpenState(dir, name); err != nil {
		a.Close() // the first failure is the one to report
		return nil, err
	}
	if opts.step != nil {
		a.State.step = opts.step
	}
	if opts.Destination == nil {
		return a, nil
	}
	if a.Dest, err = opts.Destination(); err != nil {
		a.Dest = nil
		a.Close() // the first failure is the one to report
		return nil, err
	}
	resolver, _ := a.Dest.(Resolver)
	if a.Delivered, a.Discarded, err = a.State.Recover(resolver); err != nil {
		a.Close() // the first failure is the one to report
		return nil, err
	}
	return a, nil
}

// Close closes the destination and the state and releases the lock, in that order, and returns the
// first error.
func (a *Account) Close() error {
	var errs []error
	if a.Dest != nil {
		errs = append(errs, a.Dest.Close())
	}
	if a.State != nil {
		errs = append(errs, a.State.Close())
	}
	errs = append(errs, a.Lock.Unlock())
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// lockCtx is Lock; with wait it blocks until the lock is free or ctx is done.
func lockCtx(ctx context.Context, dir, account string, wait bool) (*Lockfile, error) {
	if !wait {
		return Lock(dir, account, false)
	}
	type result struct {
		l   *Lockfile
		err error
	}
	ch := make(chan result, 1)
	go func() {
		l, err := Lock(dir, account, true)
		ch <- result{l, err}
	}()
	select {
	case r := <-ch:
		return r.l, r.err
	case <-ctx.Done():
		go func() { // release the lock if it is granted after all
			if r := <-ch; r.l != nil {
				r.l.Unlock()
			}
		}()
		return nil, ctx.Err()
	}
}
