package pop3

import (
	"net"
	"sync"
	"time"
)

// timedConn puts a deadline on every read and write of the connection beneath the client (beneath TLS,
// when there is TLS), so that no command can hang: a read waits at most Timeout for the next bytes, and
// an operation (one reply: a status line, a listing or a message body) must keep up an average of at
// least minRate bytes/s once its first Timeout has passed, which stops a server that trickles a
// message one byte at a time. abort cancels blocked I/O for good (a cancelled context, a failed
// pipeline writer).
type timedConn struct {
	net.Conn
	timeout time.Duration
	minRate int64

	// opStart and opBytes belong to the reading goroutine.
	opStart time.Time
	opBytes int64

	mu      sync.Mutex
	aborted error
}

func (t *timedConn) begin() {
	t.opStart = time.Now()
	t.opBytes = 0
}

func (t *timedConn) Read(p []byte) (int, error) {
	t.mu.Lock()
	if t.aborted != nil {
		err := t.aborted
		t.mu.Unlock()
		return 0, err
	}
	d := time.Now().Add(t.timeout)
	if !t.opStart.IsZero() && t.minRate > 0 {
		allowance := t.timeout + time.Duration(float64(t.opBytes)/float64(t.minRate)*float64(time.Second))
		if hard := t.opStart.Add(allowance); hard.Before(d) {
			d = hard
		}
	}
	t.Conn.SetReadDeadline(d)
	t.mu.Unlock()

	n, err := t.Conn.Read(p)
	t.opBytes += int64(n)
	return n, t.abortedOr(err)
}

func (t *timedConn) Write(p []byte) (int, error) {
	t.mu.Lock()
	if t.aborted != nil {
		err := t.aborted
		t.mu.Unlock()
		return 0, err
	}
	t.Conn.SetWriteDeadline(time.Now().Add(t.timeout))
	t.mu.Unlock()
	n, err := t.Conn.Write(p)
	return n, t.abortedOr(err)
}

// abortedOr returns the abort's error in place of err, the I/O error it caused, once abort was
// called; otherwise err.
func (t *timedConn) abortedOr(err error) error {
	if err == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.aborted != nil {
		return t.aborted
	}
	return err
}

// abort makes every blocked and future read and write fail with err.
func (t *timedConn) abort(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.aborted == nil {
		t.aborted = err
	}
	t.Conn.SetDeadline(time.Unix(1, 0))
}
