//go:build linux

package main

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// echoServer accepts connections on loopback and echoes what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// The delay line delivers every byte, in order, in both directions, and pipelined writes are not
// serialised: 1 MiB written in many chunks comes back in about one RTT, not one per chunk.
func TestProxyIntactInOrder(t *testing.T) {
	const rtt = 40 * time.Millisecond
	p, err := newProxy(echoServer(t), rtt, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	data := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	start := time.Now()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		for off := 0; off < len(data); off += 1000 {
			if _, err := c.Write(data[off:min(off+1000, len(data))]); err != nil {
				errc <- err
				return
			}
		}
		errc <- c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, differing from what was sent at byte %d", len(got), firstDiff(got, data))
	}
	// The handshake RTT plus one RTT there and back, at least; far less than an RTT per chunk.
	if elapsed < 2*rtt {
		t.Errorf("echo took %v, want at least 2×RTT = %v", elapsed, 2*rtt)
	}
	if elapsed > 40*rtt {
		t.Errorf("echo took %v: the delay line serialises chunks", elapsed)
	}
	st := p.Reset()
	if st.Conns != 1 || st.Up != int64(len(data)) || st.Down != int64(len(data)) {
		t.Errorf("stats = %+v", st)
	}
}

// Each request-reply exchange is one round trip at the proxy, plus one for the TCP handshake.
func TestProxyCountsRoundTrips(t *testing.T) {
	p, err := newProxy(echoServer(t), 2*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	for range 3 {
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	time.Sleep(20 * time.Millisecond)
	if st := p.Reset(); st.RoundTrips != 4 {
		t.Errorf("round trips = %d, want 4 (handshake + 3 exchanges)", st.RoundTrips)
	}
}

func TestMatchDelivered(t *testing.T) {
	orig := smallMessage("t", 0, 0, 2000)
	noNL := smallMessage("t", 0, 19, 2000)
	if bytes.HasSuffix(noNL, []byte("\n")) {
		t.Fatal("message 19 should have no final newline")
	}
	crlf := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }
	// fetchmail keeps Return-Path first and puts its Received after it.
	rp, rest, _ := bytes.Cut(orig, []byte("\n"))
	fetchmail := append(append(append([]byte{}, rp...), "\nReceived: from 127.0.0.1\n\tby vm with POP3\n"...), rest...)

	good := map[string][2][]byte{
		"same":                    {orig, orig},
		"CRLF":                    {crlf(orig), orig},
		"trace header first":      {append([]byte("Received: by popfetch\n\tfor x; date\nX-Fetched: 1\n"), orig...), orig},
		"trace header after RP":   {fetchmail, orig},
		"newline added at end":    {append(append([]byte{}, noNL...), '\n'), noNL},
		"no final newline intact": {noNL, noNL},
	}
	for name, c := range good {
		if err := matchDelivered(c[0], c[1]); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	corrupt := func(b []byte, at int, v byte) []byte { b = bytes.Clone(b); b[at] = v; return b }
	bad := map[string][2][]byte{
		"body byte changed":     {corrupt(orig, len(orig)-10, '#'), orig},
		"header byte changed":   {corrupt(orig, 3, 'X'), orig},
		"truncated":             {orig[:len(orig)-100], orig},
		"other header added":    {append([]byte("Subject: spam\n"), orig...), orig},
		"header field dropped":  {rest, orig},
		"two newlines added":    {append(append([]byte{}, noNL...), '\n', '\n'), noNL},
		"dot-stuffing left in":  {bytes.Replace(smallMessage("t", 0, 3, 2000), []byte("\n..\n"), []byte("\n...\n"), 1), smallMessage("t", 0, 3, 2000)},
		"long line split":       {bytes.Replace(smallMessage("t", 0, 7, 2000), []byte("abcdefghijklmnopqrstuvwxyzabcd"), []byte("abcdefghijklmnopqrstuvwxyz\r\nabcd"), 1), smallMessage("t", 0, 7, 2000)},
		"8-bit byte mangled":    {bytes.Replace(smallMessage("t", 0, 11, 2000), []byte{0xff}, []byte("?"), 1), smallMessage("t", 0, 11, 2000)},
		"newline added to full": {append(bytes.Clone(orig), '\n'), orig},
	}
	for name, c := range bad {
		if err := matchDelivered(c[0], c[1]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestVerifyMaildir(t *testing.T) {
	want := map[string][]byte{}
	dir := t.TempDir()
	for _, sub := range []string{"new", "cur", "tmp"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o700)
	}
	var msgs [][]byte
	for i := range 20 {
		m := smallMessage("t", 1, i, 1500)
		want[idOf(m)] = m
		msgs = append(msgs, m)
		os.WriteFile(filepath.Join(dir, "new", strings.Repeat("m", i+1)), append([]byte("Received: by x\n"), m...), 0o600)
	}
	if err := verifyMaildir(dir, want); err != nil {
		t.Fatalf("intact maildir: %v", err)
	}
	// A corrupted message, a duplicate, a missing one: each is caught.
	bad := bytes.Replace(msgs[15], []byte("\n\n"), []byte("\n\nX"), 1)
	os.WriteFile(filepath.Join(dir, "new", strings.Repeat("m", 16)), bad, 0o600)
	if err := verifyMaildir(dir, want); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("corrupted message: err = %v", err)
	}
	os.WriteFile(filepath.Join(dir, "new", strings.Repeat("m", 16)), msgs[15], 0o600)
	os.WriteFile(filepath.Join(dir, "cur", "dup:2,S"), msgs[3], 0o600)
	if err := verifyMaildir(dir, want); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate: err = %v", err)
	}
	os.Remove(filepath.Join(dir, "cur", "dup:2,S"))
	os.Remove(filepath.Join(dir, "new", "m"))
	if err := verifyMaildir(dir, want); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing: err = %v", err)
	}
}

func TestVerifyServer(t *testing.T) {
	seeded := [][]byte{[]byte("a\n"), []byte("b\n")}
	if err := verifyServer(nil, seeded, false); err != nil {
		t.Error(err)
	}
	if err := verifyServer(seeded[:1], seeded, false); err == nil {
		t.Error("delete mode, a message left: accepted")
	}
	if err := verifyServer([][]byte{[]byte("a\n"), []byte("b\n")}, seeded, true); err != nil {
		t.Error(err)
	}
	if err := verifyServer([][]byte{[]byte("a\n"), []byte("c\n")}, seeded, true); err == nil {
		t.Error("keep mode, a message changed: accepted")
	}
}

// Messages are deterministic, unique by Message-ID, of about the size asked, and the hard cases
// are where the comment says.
func TestMessages(t *testing.T) {
	if !bytes.Equal(smallMessage("s", 2, 5, 4096), smallMessage("s", 2, 5, 4096)) {
		t.Error("not deterministic")
	}
	ids := map[string]bool{}
	for i := range 40 {
		m := smallMessage("s", 0, i, 4096)
		id := idOf(m)
		if id == "" || ids[id] {
			t.Fatalf("message %d: Message-ID %q missing or repeated", i, id)
		}
		ids[id] = true
		if len(m) < 4096 || len(m) > 4096+7000 {
			t.Errorf("message %d: %d bytes", i, len(m))
		}
		if bytes.Contains(m, []byte("\r")) {
			t.Errorf("message %d has a CR", i)
		}
	}
	if !bytes.Contains(smallMessage("s", 0, 3, 4096), []byte("\n.\n")) {
		t.Error("message 3: no lone dot line")
	}
	if !bytes.Contains(smallMessage("s", 0, 7, 4096), []byte(strings.Repeat("abcdefghijklmnopqrstuvwxyz", 200))) {
		t.Error("message 7: no long line")
	}
	if !bytes.Contains(smallMessage("s", 0, 11, 4096), []byte{0xff}) {
		t.Error("message 11: no 8-bit byte")
	}
	if big := bigMessage("s", 0, 0, 1<<20); len(big) < 1<<20-4096 || len(big) > 1<<20+4096 {
		t.Errorf("big message: %d bytes", len(big))
	}
}
