package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// Signals (README "Signals"): the first SIGINT/SIGTERM cancels the command's context, the second
// cancels globalOptions.abort. Work that blocks where neither can reach it (open(2) of a FIFO that
// nobody writes, a write to a full pipe) must not make the process unkillable but by SIGKILL: input
// is read through interruptible, and after the second signal the process exits at once if the
// command has not returned within abortGrace.

// abortGrace is how long the second signal lets a command return by itself (abandoning its
// connections, removing the files of an unfinished batch) before the process exits regardless. Exiting
// then is as safe as kill -9, which the design survives: nothing is deleted on a server before it is
// delivered and recorded.
const abortGrace = time.Second

// interruptible runs f, which reads input that may never come (a FIFO nobody writes), and returns
// its result, or an exit-130 error "interrupted while reading WHAT" as soon as ctx is done. f then
// goes on in the background until the process exits: give it only work without effects that
// matter (opening, reading, parsing), never a lock.
func interruptible[T any](ctx context.Context, what string, f func() (T, error)) (T, error) {
	if ctx == nil || ctx.Done() == nil {
		return f()
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, withCode(exitInterrupted, fmt.Errorf("interrupted while reading %s", what))
	}
}

// exitAfterAbort ends the process with exit 130 unless finished is closed within abortGrace: the
// second signal's promise that popfetch stops whatever it is blocked on.
func exitAfterAbort(finished <-chan struct{}, stderr io.Writer) {
	select {
	case <-finished:
		return
	case <-time.After(abortGrace):
	}
	select {
	case <-finished: // returned meanwhile: run reports it
		return
	default:
	}
	fmt.Fprintln(stderr, "popfetch: interrupted: a second signal, and popfetch was blocked: exiting at once (nothing uncommitted was deleted)")
	os.Exit(exitInterrupted)
}
