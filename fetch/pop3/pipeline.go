package pop3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// RetrFunc receives one message of RetrMany, in order. When the server refused that RETR, body is nil
// and err is its *Error; otherwise body streams the message (see Retr) and is valid only until the
// function returns (what it leaves unread is discarded). A non-nil return stops RetrMany, which then
// returns that error once the replies already in flight are consumed (so the connection stays usable).
// An error that wraps ErrAbandon stops it at once instead: see ErrAbandon.
type RetrFunc func(n int, body io.Reader, err error) error

// ErrAbandon, wrapped in the error a RetrFunc returns, makes RetrMany give up the connection rather
// than read the rest of the body and the replies in flight (a message far larger than its LIST size
// would take that long): the connection is closed without QUIT, so the server commits none of the
// session's deletions (RFC 1939 §6), and RetrMany returns the RetrFunc's error. Err then reports it.
var ErrAbandon = errors.New("pop3: connection abandoned")

// RetrMany retrieves the messages nums in order and hands each to fn as a stream. When the server
// advertises PIPELINING (RFC 2449 §6.7) the RETR commands are written by a second goroutine, at most
// Options.PipelineWindow ahead of the replies being read, so latency is paid once per window instead
// of once per message and no batch size can deadlock; otherwise it works in lock-step. I/O errors and
// protocol violations leave the connection unusable.
func (c *Client) RetrMany(ctx context.Context, nums []int, fn RetrFunc) error {
	cmds := make([]string, len(nums))
	for i, n := range nums {
		cmds[i] = "RETR " + strconv.Itoa(n)
	}
	return c.pipeline(ctx, "RETR", cmds, true, func(i int, body io.Reader, err error) error {
		return fn(nums[i], body, err)
	})
}

// DeleMany marks the messages nums deleted (effective at a successful Quit), pipelined like RetrMany.
// Every DELE is sent even if some are refused; the error is then a *BatchError listing the refusals.
func (c *Client) DeleMany(ctx context.Context, nums []int) error {
	cmds := make([]string, len(nums))
	for i, n := range nums {
		cmds[i] = "DELE " + strconv.Itoa(n)
	}
	var refused []Refusal
	err := c.pipeline(ctx, "DELE", cmds, false, func(i int, _ io.Reader, err error) error {
		if err != nil {
			var e *Error
			errors.As(err, &e)
			refused = append(refused, Refusal{Number: nums[i], Err: e})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(refused) > 0 {
		return &BatchError{Command: "DELE", Refused: refused}
	}
	return nil
}

// Refusal is one refused command of a batch.
type Refusal struct {
	Number int
	Err    *Error
}

// BatchError reports the refused commands of a batch (DeleMany). The connection is still usable.
type BatchError struct {
	Command string
	Refused []Refusal
}

func (e *BatchError) Error() string {
	first := e.Refused[0]
	if len(e.Refused) == 1 {
		return fmt.Sprintf("pop3: %s %d: %v", e.Command, first.Number, first.Err)
	}
	return fmt.Sprintf("pop3: %d %s commands refused, first %d: %v", len(e.Refused), e.Command, first.Number, first.Err)
}

// Unwrap returns the first refusal, so errors.As finds an *Error.
func (e *BatchError) Unwrap() error { return e.Refused[0].Err }

// Listing returns every message's number, size and unique-id: LIST and UIDL, pipelined when the
// server allows it. When the server refuses UIDL, the UIDs are empty and err is nil; check UIDs
// before relying on them (keep mode cannot work without them). More than MaxListing messages is an
// error matching ErrListingTooLong. The listing is compact (see listing_compact.go).
//
// When the server advertises UTF8 (RFC 6856), UTF8 goes first in the same pipeline, so that the
// messages are handed out as stored (Courier otherwise rewrites messages with 8-bit headers); a
// refusal of UTF8 is ignored.
func (c *Client) Listing(ctx context.Context) ([]MessageInfo, error) {
	var list []MessageInfo
	var listErr error
	cmds := []string{"LIST", "UIDL"}
	utf8 := c.caps != nil && c.caps.UTF8 && !c.utf8Sent
	if utf8 {
		cmds = []string{"UTF8", "LIST", "UIDL"}
	}
	// Refusals are noted, not returned, so that every reply is always read.
	err := c.pipeline(ctx, "LIST", cmds, false, func(i int, _ io.Reader, err error) error {
		if utf8 {
			if i == 0 {
				c.utf8Sent = err == nil
				return nil
			}
			i--
		}
		switch {
		case i == 0 && err != nil:
			listErr = err
			return nil
		case i == 0:
			var rerr error
			list, rerr = c.readList()
			return rerr
		case err != nil:
			return nil // no UIDL: the UIDs stay empty
		default:
			return c.readUidlInto(list)
		}
	})
	if err != nil {
		return nil, err
	}
	if listErr != nil {
		return nil, listErr
	}
	if err := c.checkListNumbers(list); err != nil {
		return nil, err
	}
	return list, nil
}

// pipeline sends cmds and hands each reply, in order, to handle. For multi-line commands (multi), a
// +OK reply's body is passed as a stream; for others the handler reads any further lines itself (as
// Listing does) or none. A handler error that is a refusal or its own stops the batch: the replies in
// flight are consumed and the error returned. Any I/O or protocol error ends the connection.
func (c *Client) pipeline(ctx context.Context, cmd string, cmds []string, multi bool,
	handle func(i int, body io.Reader, err error) error) error {
	if len(cmds) == 0 {
		return nil
	}
	stop, err := c.begin(ctx, cmd)
	if err != nil {
		return err
	}
	defer stop()

	// readReply reads the reply to cmds[i] and hands it to handle (or discards it when skip). Errors
	// name the command the reply belongs to (LIST or UIDL in Listing).
	readReply := func(i int, skip bool) error {
		cmd, _, _ := strings.Cut(cmds[i], " ")
		if err := ctx.Err(); err != nil {
			// Cancelled: stop at this reply even when it (and more) is already buffered, where the
			// connection's abort cannot reach.
			return c.ioError(cmd, context.Cause(ctx))
		}
		_, err := c.readOK(cmd)
		if err != nil && !IsRefusal(err) {
			return err // I/O or protocol: the connection is gone
		}
		var body *dotReader
		if err == nil && multi {
			body = c.openBody(cmd, nil)
		}
		var herr error
		if !skip {
			if body != nil {
				herr = handle(i, body, nil)
			} else {
				herr = handle(i, nil, err)
			}
		}
		if herr != nil && errors.Is(herr, ErrAbandon) {
			return c.fail(herr) // read nothing more
		}
		if body != nil {
			if _, derr := io.Copy(io.Discard, body); derr != nil {
				return derr
			}
		}
		if c.broken != nil {
			return c.broken
		}
		return herr
	}

	if c.caps == nil || !c.caps.Pipelining || len(cmds) == 1 {
		// Lock-step.
		for i, line := range cmds {
			if err := c.send(cmd, line, ""); err != nil {
				return err
			}
			if err := readReply(i, false); err != nil {
				return err
			}
		}
		return nil
	}

	// Pipelined: a writer goroutine keeps at most window commands ahead of the replies.
	window := c.opts.PipelineWindow
	tokens := make(chan struct{}, window)
	quit := make(chan struct{})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		flushed int // commands handed to the connection
		werr    error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		pending := 0
		flush := func() bool {
			if err := c.bw.Flush(); err != nil {
				mu.Lock()
				werr = err
				mu.Unlock()
				c.tc.abort(err) // wake the reader
				return false
			}
			mu.Lock()
			flushed += pending
			mu.Unlock()
			pending = 0
			return true
		}
		for _, line := range cmds {
			select {
			case tokens <- struct{}{}:
			default:
				if !flush() {
					return
				}
				select {
				case tokens <- struct{}{}:
				case <-quit:
					return
				}
			}
			select {
			case <-quit:
				return
			default:
			}
			if c.opts.Trace != nil {
				c.trace("C: %s", line)
			}
			c.bw.WriteString(line)
			c.bw.WriteString("\r\n")
			pending++
		}
		flush()
	}()
	finish := func() int {
		close(quit)
		wg.Wait()
		c.bw.Reset(c.conn) // drop commands written but never flushed
		mu.Lock()
		defer mu.Unlock()
		return flushed
	}

	for i := range cmds {
		err := readReply(i, false)
		<-tokens
		if err == nil {
			continue
		}
		sent := finish()
		if errors.Is(err, ErrAbandon) {
			return err // the writer may have failed on the closed connection: that is no news
		}
		if c.broken != nil {
			if werr != nil {
				return c.ioError(cmd, werr)
			}
			return c.broken
		}
		// The handler stopped the batch: consume the replies already sent.
		for j := i + 1; j < sent; j++ {
			if derr := readReply(j, true); derr != nil {
				return derr
			}
		}
		return err
	}
	finish()
	if werr != nil {
		return c.ioError(cmd, werr)
	}
	return nil
}
