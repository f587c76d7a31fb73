package daemon

import (
	"errors"
	"os"
	"time"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/internal/humanize"
	"github.com/popfetch/popfetch/store"
)

// daemonStatusFile publishes the daemon's timetable in the state directory (store.DaemonStatus) for
// `popfetch status`: it is rewritten at each start and end of a poll, and removed when the daemon
// stops. It is used by the daemon's loop goroutine only.
type daemonStatusFile struct {
	dir string
	ds  store.DaemonStatus
	log *Log
	bad bool // a write failed: said once
}

func newDaemonStatusFile(dir string, log *Log) *daemonStatusFile {
	now := time.Now().UTC().Round(time.Second)
	return &daemonStatusFile{dir: dir, log: log,
		ds: store.DaemonStatus{PID: os.Getpid(), Started: now, Accounts: map[string]store.DaemonAccountState{}}}
}

func (f *daemonStatusFile) write() {
	f.ds.Updated = time.Now().UTC().Round(time.Second)
	if err := store.WriteDaemonStatus(f.dir, &f.ds); err != nil && !f.bad {
		f.bad = true
		f.log.Errorf("popfetch: warning: cannot publish the daemon's timetable for popfetch status: %s", humanize.OneLine(err))
	}
}

func (f *daemonStatusFile) accounts(accts []*config.Account) {
	old := f.ds.Accounts
	f.ds.Accounts = make(map[string]store.DaemonAccountState, len(accts))
	for _, a := range accts {
		s, ok := old[a.Name]
		if !ok {
			s.NextPoll = time.Now().UTC().Round(time.Second) // new accounts are due now
		}
		f.ds.Accounts[a.Name] = s
	}
	f.write()
}

func (f *daemonStatusFile) pollStarted(account string) {
	s := f.ds.Accounts[account]
	s.Polling = true
	f.ds.Accounts[account] = s
	f.write()
}

func (f *daemonStatusFile) pollEnded(p polled, next time.Time) {
	if _, ok := f.ds.Accounts[p.name]; !ok {
		return // removed from the configuration meanwhile
	}
	f.ds.Accounts[p.name] = store.DaemonAccountState{NextPoll: next.UTC().Round(time.Second)}
	f.write()
}

func (f *daemonStatusFile) stopped() {
	if err := store.RemoveDaemonStatus(f.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		f.log.Errorf("popfetch: warning: %s", humanize.OneLine(err))
	}
}

// daemonObserver is told what the daemon's loop does, for its status file and its metrics. Every
// method is called from the loop's goroutine.
type daemonObserver interface {
	accounts(accts []*config.Account)   // the configuration's accounts (start, reload)
	pollStarted(account string)         // a poll of account starts
	pollEnded(p polled, next time.Time) // it ended; next is its next poll (zero: none, stopping)
	stopped()                           // the daemon stops
}

// observers tells each of its members.
type observers []daemonObserver

func (o observers) accounts(accts []*config.Account) {
	for _, x := range o {
		x.accounts(accts)
	}
}

func (o observers) pollStarted(account string) {
	for _, x := range o {
		x.pollStarted(account)
	}
}

func (o observers) pollEnded(p polled, next time.Time) {
	for _, x := range o {
		x.pollEnded(p, next)
	}
}

func (o observers) stopped() {
	for _, x := range o {
		x.stopped()
	}
}
