package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/popfetch/popfetch/internal/fsutil"
)

// takeDotlock creates PATH.lock (with our pid, as procmail and mutt write it) or steals a stale one.
func (m *Mbox) takeDotlock(deadline time.Time) error {
	lock := m.path + ".lock"
	err := lockWait(deadline, func() (bool, error) {
		f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL|fsutil.NoFollow, 0o600)
		if err == nil {
			_, werr := fmt.Fprintf(f, "%d\n", os.Getpid())
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				_ = os.Remove(lock)
				return false, werr
			}
			m.dotlock, m.lockedAt = lock, time.Now()
			return true, nil
		}
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EROFS) {
			return true, nil // no dotlock possible here: the fcntl lock alone protects the file
		}
		if !errors.Is(err, os.ErrExist) {
			return false, err
		}
		if judged, stale := m.staleDotlock(lock); stale {
			if m.opts.judgedStale != nil {
				m.opts.judgedStale()
			}
			if err := stealDotlock(lock, judged); err != nil {
				return false, err
			}
		}
		return false, nil // held, stolen or just released: try again
	})
	if errors.Is(err, errLockBusy) {
		return &MboxLockedError{Path: m.path, Lock: "dotlock"}
	}
	if err != nil {
		return ioErr("dotlock", lock, err)
	}
	return nil
}

// staleDotlock looks at the dotlock at lock once (one open file: its identity, time stamp and pid
// come from the same file) and reports it stale when it is older than DotlockStale or names, as
// procmail's and ours do, the pid of a process that no longer exists on this host (a popfetch
// killed with -9). A lock without a pid, or with the pid of a live process, is left to the age rule.
func (m *Mbox) staleDotlock(lock string) (os.FileInfo, bool) {
	f, err := os.OpenFile(lock, os.O_RDONLY|fsutil.NoFollow, 0)
	if err != nil {
		fi, err := os.Lstat(lock) // unreadable, or not a regular file: the age alone decides
		return fi, err == nil && time.Since(fi.ModTime()) > m.opts.DotlockStale
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false
	}
	if time.Since(fi.ModTime()) > m.opts.DotlockStale {
		return fi, true
	}
	b := make([]byte, 33)
	n, _ := io.ReadFull(f, b)
	if n == 0 || n > 32 {
		return fi, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	return fi, err == nil && pid > 0 && !mboxPidAlive(pid)
}

// stealDotlock removes the dotlock at lock if it is still the one judged stale, race-free (as
// liblockfile does): "stat, then remove" could remove a lock that another program took in between,
// after removing the stale one itself. The lock is renamed aside to a name of ours first, atomically;
// if what was renamed is the judged file (same inode, same time stamp: not refreshed since), it is
// removed; otherwise it is a fresh lock of someone else and is linked back under its name (link(2)
// never replaces a file) before the aside name is removed.
func stealDotlock(lock string, judged os.FileInfo) error {
	aside := fmt.Sprintf("%s.stale-%d-%d", lock, os.Getpid(), time.Now().UnixNano())
	if err := os.Rename(lock, aside); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // released, or stolen by another program: try again
		}
		return err
	}
	got, err := os.Lstat(aside)
	if err == nil && os.SameFile(got, judged) && got.ModTime().Equal(judged.ModTime()) {
		return os.Remove(aside)
	}
	// Not the lock we judged: give it back. If a third program created the name meanwhile, the lock
	// is held anyway, and ours is the only copy of a file nobody will look for.
	if err := os.Link(aside, lock); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Remove(aside)
}

// refreshDotlock touches the dotlock so that other programs do not take it for stale.
func (m *Mbox) refreshDotlock() {
	if m.dotlock == "" || time.Since(m.lockedAt) < m.opts.DotlockStale/5 {
		return
	}
	now := time.Now()
	if os.Chtimes(m.dotlock, now, now) == nil {
		m.lockedAt = now
	}
}
