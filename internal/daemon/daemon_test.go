//go:build unix

package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/store"
)

// testOptions are a daemon's Options over cfg, logging to log, whose polls run poll.
func testOptions(cfg *config.Config, log io.Writer, poll func(ctx context.Context, log io.Writer, a *config.Account) (fetch.Result, error)) Options {
	return Options{Stderr: log, Verbose: true,
		Load:   func() (*config.Config, error) { return cfg, nil },
		Reload: func(string) (*config.Config, error) { return cfg, nil },
		Poll: func(ctx context.Context, log io.Writer, _ *config.Config, a *config.Account) (fetch.Result, error) {
			return poll(ctx, log, a)
		},
		Outcome: func(res fetch.Result, err error) (string, int) {
			switch {
			case err == nil:
				return store.RunOK, 0
			case errors.Is(err, fetch.ErrInterrupted):
				return store.RunInterrupted, 130
			}
			return store.RunFailed, 70
		},
		Exhausted: func(error) bool { return false },
	}
}

func testConfig(t *testing.T) *config.Config {
	dir := t.TempDir()
	return &config.Config{Path: filepath.Join(dir, "config.yaml"), StateDir: filepath.Join(dir, "state"),
		Accounts: []*config.Account{{Name: "work", Host: "pop.example.com", User: "u", Interval: time.Hour, MaxConnections: 8}}}
}

// TestDaemonRunHooks: Run loads the configuration through its hook, polls the account through
// Poll (whose output goes to the log), refuses a second daemon for the same state directory while
// it runs (*RunningError, wrapping store.ErrLocked), logs the poll and stops when its context is
// done, removing its timetable.
func TestDaemonRunHooks(t *testing.T) {
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	second := make(chan error, 1)
	var log bytes.Buffer
	o := testOptions(cfg, &log, func(ctx context.Context, log io.Writer, a *config.Account) (fetch.Result, error) {
		fmt.Fprintf(log, "polling %s\n", a.Name)
		second <- Run(context.Background(), testOptions(cfg, io.Discard, nil))
		return fetch.Result{Listed: 3, Retrieved: 1, Bytes: 10}, nil
	})
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	err := <-second
	var re *RunningError
	if !errors.As(err, &re) || !errors.Is(err, store.ErrLocked) || re.StateDir != cfg.StateDir ||
		!strings.HasPrefix(err.Error(), "another popfetch daemon (pid ") {
		t.Errorf("a second daemon: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	out := log.String()
	for _, want := range []string{
		"Z popfetch: daemon started (pid ", cfg.Path + "): 1 account(s), every 1h (1); up to ",
		"Z work: every 1h from pop.example.com; first poll in 0s\n",
		"Z polling work\n", "Z work: 1 fetched (10 bytes) in ", "Z popfetch: daemon stopped\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log has no %q:\n%s", want, out)
		}
	}
	if ds, err := store.ReadDaemonStatus(cfg.StateDir); err != nil || ds != nil {
		t.Errorf("the daemon's timetable after it stopped: %+v, %v", ds, err)
	}
}

// TestDaemonRunAborted: with its context and Abort done, Run starts the due poll (which stops at
// once), logs it and returns ErrAborted.
func TestDaemonRunAborted(t *testing.T) {
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var log bytes.Buffer
	o := testOptions(cfg, &log, func(ctx context.Context, _ io.Writer, _ *config.Account) (fetch.Result, error) {
		if ctx.Err() == nil {
			t.Errorf("the poll's context is not done")
		}
		return fetch.Result{}, fetch.ErrInterrupted
	})
	o.Verbose, o.Abort = false, ctx
	if err := Run(ctx, o); !errors.Is(err, ErrAborted) {
		t.Errorf("Run = %v, want ErrAborted", err)
	}
	if out := log.String(); !strings.Contains(out, "Z work: stopped before fetching anything\n") ||
		!strings.Contains(out, "Z popfetch: daemon stopped\n") {
		t.Errorf("log:\n%s", out)
	}
}
