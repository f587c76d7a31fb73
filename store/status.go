package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/popfetch/popfetch/internal/fsutil"
)

// The status file: one per account, "<dir>/<account>.status", what `popfetch status` shows about the
// account's runs. It is a journal of JSON lines, appended at the end of every run under the account's
// lock:
//
//	{"run":{"start":…,"end":…,"result":"ok","exit_code":0,"fetched":3,…}}
//
// and read by folding every line into an AccountStatus. When it passes statusCompactSize it is
// rewritten as one line, {"snapshot":{…AccountStatus…}}, written to "<file>.tmp" and renamed over it.
// A line that does not parse (torn by a crash) is skipped.
//
// Why not a record in the state journal: the v1 parser refuses a record type it does not know unless
// it is the last line (see parseRecord), so a popfetch from before this file would refuse a state
// holding such a record after a downgrade. A separate file leaves the state format alone.
//
// Why appended, without fsync: nothing depends on it for delivery (neither the engine nor a sync
// reads it), so it need not cost a sync a device flush; and on ext4 even an unsynced rename over a
// file costs about a millisecond (the replaced file's data is flushed first), fifty times an append
// (BenchmarkRecordRun: about 20 µs). After a power failure the last runs may be missing (the state,
// which is fsync'd, is not affected).

// statusVersion is the format of the status file this code writes. A reader ignores fields it does
// not know (encoding/json), and refuses a later version.
const statusVersion = 1

// Results of a run, as the status file records them.
const (
	RunOK          = "ok"          // connected and synced (new mail or none)
	RunDeferred    = "deferred"    // not polled: the server's LOGIN-DELAY was not over
	RunTemporary   = "temporary"   // a temporary failure (exit 75): network, [IN-USE], [LOGIN-DELAY], …
	RunFailed      = "failed"      // a permanent failure: password refused, TLS, configuration, …
	RunInterrupted = "interrupted" // stopped by SIGINT/SIGTERM
)

// statusBucket is the width of the buckets that count fetched messages for "the last 24 hours".
const statusBucket = 10 * time.Minute

// Run is the end of one run of an account, for RecordRun.
type Run struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Result   string    `json:"result"` // RunOK, RunDeferred, …
	ExitCode int       `json:"exit_code"`
	Error    string    `json:"error,omitempty"` // one line, "" on success
	Fetched  int       `json:"fetched"`
	Bytes    int64     `json:"bytes"`
	Deleted  int       `json:"deleted"`
	// KeptOnServer is how many messages the account's state remembers on the server (keep mode), or
	// -1 when the account deletes what it fetched.
	KeptOnServer    int       `json:"kept_on_server"`
	LoginDelayUntil time.Time `json:"login_delay_until,omitzero"` // the server's LOGIN-DELAY recorded in the state
}

// statusLine is one line of the status file: a run, or a snapshot of everything before.
type statusLine struct {
	Version  int            `json:"v,omitempty"`
	Run      *Run           `json:"run,omitempty"`
	Snapshot *AccountStatus `json:"snapshot,omitempty"`
}

// statusCompactSize is the size past which RecordRun rewrites the status file as a snapshot: a few
// hundred runs, once a day for a daemon polling every five minutes.
const statusCompactSize = 64 << 10

// AccountStatus is what the status file holds.
type AccountStatus struct {
	Version             int       `json:"version"`
	Account             string    `json:"account"`
	LastAttempt         time.Time `json:"last_attempt,omitzero"`
	LastResult          string    `json:"last_result,omitempty"`
	LastExitCode        int       `json:"last_exit_code"`
	LastError           string    `json:"last_error,omitempty"`
	LastDurationMS      int64     `json:"last_duration_ms"`
	LastFetched         int       `json:"last_fetched"`
	LastSuccess         time.Time `json:"last_success,omitzero"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	FetchedTotal        int64     `json:"fetched_total"`
	BytesTotal          int64     `json:"bytes_total"`
	KeptOnServer        *int      `json:"kept_on_server,omitempty"` // keep mode only
	LoginDelayUntil     time.Time `json:"login_delay_until,omitzero"`
	// Recent counts the messages fetched in 10-minute buckets (start time, count) over the last 24
	// hours, oldest first, for Fetched24h.
	Recent []StatusBucket `json:"recent,omitempty"`
}

// StatusBucket counts the messages fetched from At to At+10 minutes.
type StatusBucket struct {
	At time.Time `json:"at"`
	N  int       `json:"n"`
}

// Fetched24h returns how many messages were fetched in the 24 hours before now (to within the
// 10-minute width of a bucket).
func (s *AccountStatus) Fetched24h(now time.Time) int {
	n := 0
	for _, b := range s.Recent {
		if b.At.Add(statusBucket).After(now.Add(-24 * time.Hour)) {
			n += b.N
		}
	}
	return n
}

// StatusPath returns the path of account's status file in dir.
func StatusPath(dir, account string) string { return filepath.Join(dir, account+".status") }

// ReadStatus reads account's status file in dir: (nil, nil) when there is none, or it holds no run
// (the account never ran). Lines that do not parse are skipped; a line written by a later format is
// an error.
func ReadStatus(dir, account string) (*AccountStatus, error) {
	if err := validAccount(account); err != nil {
		return nil, err
	}
	path := StatusPath(dir, account)
	data, err := readNoFollow(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, ioErr("read", path, err)
	}
	return foldStatus(path, account, data)
}

// foldStatus applies every line of a status file in turn.
func foldStatus(path, account string, data []byte) (*AccountStatus, error) {
	var st *AccountStatus
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, statusCompactSize*4)
	for sc.Scan() {
		var l statusLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // torn by a crash
		}
		if l.Version > statusVersion {
			return nil, fmt.Errorf("status file %s has format v%d, written by a newer popfetch; this one reads up to v%d", path, l.Version, statusVersion)
		}
		switch {
		case l.Snapshot != nil:
			st = l.Snapshot
		case l.Run != nil:
			if st == nil {
				st = &AccountStatus{}
			}
			st.apply(account, *l.Run)
		}
	}
	return st, nil // a line too long to scan ends the fold: what came before stands
}

// RecordRun appends run r to account's status file in dir, and compacts the file when it has grown.
// The caller holds the account's lock. Nothing is fsync'd: see the top of this file.
func RecordRun(dir, account string, r Run) error {
	if err := validAccount(account); err != nil {
		return err
	}
	path := StatusPath(dir, account)
	line, err := json.Marshal(statusLine{Version: statusVersion, Run: &r})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|fsutil.NoFollow, 0o600)
	if err != nil {
		return ioErr("open", path, fsutil.Symlink(path, err))
	}
	if err := fsutil.CheckOpened(f, path); err != nil {
		f.Close()
		return ioErr("open", path, err)
	}
	buf := make([]byte, 0, len(line)+2)
	var size int64
	if fi, serr := f.Stat(); serr == nil && fi.Size() > 0 {
		size = fi.Size()
		// A last line torn by a crash must not swallow this one.
		if last := []byte{0}; func() bool { _, e := f.ReadAt(last, size-1); return e == nil }() && last[0] != '\n' {
			buf = append(buf, '\n')
		}
	}
	buf = append(append(buf, line...), '\n')
	_, err = f.Write(buf)
	size += int64(len(buf))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return ioErr("append", path, err)
	}
	if size < statusCompactSize {
		return nil
	}
	st, err := ReadStatus(dir, account)
	if err != nil || st == nil {
		return err
	}
	snap, err := json.Marshal(statusLine{Version: statusVersion, Snapshot: st})
	if err != nil {
		return err
	}
	return writeAtomic(path, append(snap, '\n'), false)
}

// apply updates the status with one run.
func (s *AccountStatus) apply(account string, r Run) {
	s.Version, s.Account = statusVersion, account
	s.LastAttempt = r.End.UTC()
	s.LastResult, s.LastExitCode, s.LastError = r.Result, r.ExitCode, r.Error
	s.LastDurationMS = r.End.Sub(r.Start).Milliseconds()
	s.LastFetched = r.Fetched
	s.FetchedTotal += int64(r.Fetched)
	s.BytesTotal += r.Bytes
	switch r.Result {
	case RunOK:
		s.LastSuccess = s.LastAttempt
		s.ConsecutiveFailures = 0
	case RunTemporary, RunFailed:
		s.ConsecutiveFailures++
	}
	if r.KeptOnServer >= 0 {
		n := r.KeptOnServer
		s.KeptOnServer = &n
	} else {
		s.KeptOnServer = nil
	}
	s.LoginDelayUntil = time.Time{}
	if !r.LoginDelayUntil.IsZero() {
		s.LoginDelayUntil = r.LoginDelayUntil.UTC()
	}
	// Keep the buckets of the last 24 hours (and one more), add this run's messages.
	cut := r.End.Add(-24*time.Hour - statusBucket)
	kept := s.Recent[:0]
	for _, b := range s.Recent {
		if b.At.After(cut) && !b.At.After(r.End) {
			kept = append(kept, b)
		}
	}
	s.Recent = kept
	if r.Fetched > 0 {
		at := r.End.UTC().Truncate(statusBucket)
		if n := len(s.Recent); n > 0 && s.Recent[n-1].At.Equal(at) {
			s.Recent[n-1].N += r.Fetched
		} else {
			s.Recent = append(s.Recent, StatusBucket{At: at, N: r.Fetched})
		}
	}
}

// writeAtomic writes data to "<path>.tmp" (created exclusively, mode 0600, never following a
// symbolic link) and renames it over path; with durable, it fsyncs the file before and the directory
// after the rename.
func writeAtomic(path string, data []byte, durable bool) error {
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ioErr("remove", tmp, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|fsutil.NoFollow, 0o600)
	if err != nil {
		return ioErr("create", tmp, err)
	}
	_, err = f.Write(data)
	if err == nil && durable {
		err = retryEINTR(f.Sync)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return ioErr("write", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return ioErr("rename", tmp, err)
	}
	if durable {
		return ioErr("fsync", filepath.Dir(path), syncDir(filepath.Dir(path)))
	}
	return nil
}

// DaemonStatusName is the daemon's status file in the state directory ('@' cannot start an account
// name's file, see daemonLockName in the CLI).
const DaemonStatusName = "@daemon.status"

// DaemonStatus is what a running `popfetch daemon` publishes for `popfetch status`: its pid and, per
// account, whether a poll is running and when the next one is due.
type DaemonStatus struct {
	PID      int                           `json:"pid"`
	Started  time.Time                     `json:"started"`
	Updated  time.Time                     `json:"updated"`
	Accounts map[string]DaemonAccountState `json:"accounts"`
}

// DaemonAccountState is one account as the daemon sees it.
type DaemonAccountState struct {
	Polling  bool      `json:"polling,omitempty"`
	NextPoll time.Time `json:"next_poll,omitzero"`
}

// WriteDaemonStatus replaces the daemon's status file in dir (atomically, not fsync'd).
func WriteDaemonStatus(dir string, ds *DaemonStatus) error {
	data, err := json.Marshal(ds)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, DaemonStatusName), append(data, '\n'), false)
}

// RemoveDaemonStatus removes the daemon's status file (the daemon stops).
func RemoveDaemonStatus(dir string) error {
	err := os.Remove(filepath.Join(dir, DaemonStatusName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ioErr("remove", filepath.Join(dir, DaemonStatusName), err)
	}
	return nil
}

// ReadDaemonStatus reads the daemon's status file in dir: (nil, nil) if there is none. Whether the
// daemon named in it still runs is for the caller to find out (its pid, its lock).
func ReadDaemonStatus(dir string) (*DaemonStatus, error) {
	path := filepath.Join(dir, DaemonStatusName)
	data, err := readNoFollow(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, ioErr("read", path, err)
	}
	var ds DaemonStatus
	if err := json.Unmarshal(bytes.TrimSpace(data), &ds); err != nil {
		return nil, fmt.Errorf("daemon status file %s is unreadable: %v", path, err)
	}
	return &ds, nil
}
