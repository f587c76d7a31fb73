package realserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Namer makes maildir file names whose times grow, so that a server that sorts new files by time
// numbers messages in the order they were seeded. The zero value is ready; it is safe for
// concurrent use.
type Namer struct {
	mu   sync.Mutex
	last time.Time
	seq  int
}

// Next returns a maildir file name "<secs>.M<usecs>P<pid>Q<n>.popfetch-test" and its time: now,
// or a microsecond after the previous name's if the clock has not moved past it.
func (n *Namer) Next() (string, time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now().Truncate(time.Microsecond)
	if !now.After(n.last) {
		now = n.last.Add(time.Microsecond)
	}
	n.last = now
	n.seq++
	return fmt.Sprintf("%d.M%06dP%dQ%d.popfetch-test", now.Unix(), now.Nanosecond()/1000, os.Getpid(), n.seq), now
}

// Deliver writes msgs, in order, into the maildir md: each to tmp/ under a name from names, then
// prepare (ownership, times) on the file in tmp/, then renamed into new/. The bytes are stored as
// they are.
func Deliver(md string, names *Namer, prepare func(path string, when time.Time) error, msgs ...[]byte) error {
	for _, m := range msgs {
		name, when := names.Next()
		tmp := filepath.Join(md, "tmp", name)
		if err := os.WriteFile(tmp, m, 0o600); err != nil {
			return err
		}
		if err := prepare(tmp, when); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(md, "new", name)); err != nil {
			return err
		}
	}
	return nil
}

// ReadMaildir returns the messages in the maildir md now (new/ and cur/), ordered by compare on
// their file names, as stored on disk. A POP3 session that is still ending may be renaming files
// from new/ to cur/; ReadMaildir then reads the directories again (up to 100 times).
func ReadMaildir(md string, compare func(a, b string) int) ([][]byte, error) {
	for attempt := 1; ; attempt++ {
		msgs, err := readMaildir(md, compare)
		if err == nil {
			return msgs, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 100 {
			return nil, err
		}
	}
}

func readMaildir(md string, compare func(a, b string) int) ([][]byte, error) {
	var files []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(md, sub))
		if err != nil {
			return nil, fmt.Errorf("maildir: %v", err) // not retried: the maildir itself is gone
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
				files = append(files, filepath.Join(sub, e.Name()))
			}
		}
	}
	slices.SortFunc(files, func(a, b string) int { return compare(filepath.Base(a), filepath.Base(b)) })
	msgs := make([][]byte, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(md, f))
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, data)
	}
	return msgs, nil
}
