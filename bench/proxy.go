//go:build linux

package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// A proxy forwards TCP connections from a loopback listener to target through a delay line in each
// direction: every chunk it reads is written RTT/2 after it was read, whatever else is in flight, so
// pipelined traffic keeps its pipelining. A new connection behaves as if the TCP handshake took one
// RTT: nothing reaches either side before accept + RTT + RTT/2 (the first flight of a client that
// speaks first, as TLS does, arrives when it would have over a real path).
//
// With a bandwidth cap (bytes per second, per direction and connection), a chunk also waits until
// the previous ones have been serialised at that rate.
//
// The proxy counts round trips per connection: the TCP handshake, plus each time data from the
// server follows data from the client in the order the proxy read them. For a client that waits for
// each reply this is the number of times it waited; with pipelining the two directions overlap and
// the count becomes an upper bound ("turns").
type proxy struct {
	ln     net.Listener
	target string
	bw     int64 // bytes per second per direction; 0: unlimited

	wg sync.WaitGroup

	mu    sync.Mutex
	rtt   time.Duration // for new connections
	stats proxyStats
	conns map[net.Conn]struct{}
}

// proxyStats are the proxy's counters since the last reset.
type proxyStats struct {
	Conns      int
	RoundTrips int
	Up, Down   int64 // bytes client->server, server->client
}

const chunkSize = 32 << 10

func newProxy(target string, rtt time.Duration, bw int64) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, rtt: rtt, bw: bw, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the address clients connect to.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

// Port is the port of Addr.
func (p *proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// SetRTT changes the round-trip time of the connections accepted from now on.
func (p *proxy) SetRTT(rtt time.Duration) {
	p.mu.Lock()
	p.rtt = rtt
	p.mu.Unlock()
}

// Reset returns the counters and sets them to zero.
func (p *proxy) Reset() proxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	p.stats = proxyStats{}
	return s
}

// Close stops accepting, closes every connection and waits for the goroutines.
func (p *proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *proxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.conns == nil {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

type direction int

const (
	up   direction = iota // client -> server
	down                  // server -> client
)

// turns counts, for one connection, server data that follows client data.
type turns struct {
	p    *proxy
	mu   sync.Mutex
	last direction
	any  bool
}

func (t *turns) note(d direction, n int) {
	t.mu.Lock()
	if d == down && t.any && t.last == up {
		t.p.mu.Lock()
		t.p.stats.RoundTrips++
		t.p.mu.Unlock()
	}
	t.last, t.any = d, true
	t.mu.Unlock()
	t.p.mu.Lock()
	if d == up {
		t.p.stats.Up += int64(n)
	} else {
		t.p.stats.Down += int64(n)
	}
	t.p.mu.Unlock()
}

func (p *proxy) handle(c net.Conn) {
	accepted := time.Now()
	p.track(c, true)
	defer p.track(c, false)
	defer c.Close()
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.track(u, true)
	defer p.track(u, false)
	defer u.Close()
	p.mu.Lock()
	p.stats.Conns++
	p.stats.RoundTrips++ // the TCP handshake
	rtt := p.rtt
	p.mu.Unlock()

	notBefore := accepted.Add(rtt)
	t := &turns{p: p}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.line(c, u, up, rtt, notBefore, t) }()
	go func() { defer wg.Done(); p.line(u, c, down, rtt, notBefore, t) }()
	wg.Wait()
}

type chunk struct {
	data    []byte
	release time.Time
}

// line copies src to dst through a delay line; at EOF it half-closes dst, on an error it closes
// both.
func (p *proxy) line(src, dst net.Conn, d direction, rtt time.Duration, notBefore time.Time, t *turns) {
	ch := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var free time.Time // bandwidth: when the previous chunk has left
		for c := range ch {
			at := c.release
			if p.bw > 0 {
				if free.After(at) {
					at = free
				}
				free = at.Add(time.Duration(int64(len(c.data)) * int64(time.Second) / p.bw))
			}
			if w := time.Until(at); w > 0 {
				time.Sleep(w)
			}
			if _, err := dst.Write(c.data); err != nil {
				src.Close()
				dst.Close()
				for range ch {
				}
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		} else {
			dst.Close()
		}
	}()
	for {
		buf := make([]byte, chunkSize)
		n, err := src.Read(buf)
		if n > 0 {
			now := time.Now()
			t.note(d, n)
			rel := now
			if rel.Before(notBefore) {
				rel = notBefore
			}
			ch <- chunk{data: buf[:n], release: rel.Add(rtt / 2)}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			break
		}
	}
	close(ch)
	<-done
}
