package main

// Hardening rows of issue 12, points 5, 6 and 7: limits that hold. max_size on the RETR stream (a
// server that lists 32 octets and sends 100 MB), a listing of a million long UIDLs in bounded memory
// and a cap on the count, and a configuration file too large to be one.

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/popfetch/popfetch/fetch/pop3"
)

// relBigListing starts a plain-text POP3 server on loopback whose maildrop lists n messages with
// UIDLs of uidLen characters, generated as they are sent (the test process holds none of them). It
// answers CAPA, USER, PASS, LIST, UIDL, NOOP and QUIT, pipelined or not; RETR and DELE are refused.
func relBigListing(t *testing.T, n, uidLen int) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				relServeBigListing(c, n, uidLen)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// relBigUID is the UIDL of message i: its number, padded to uidLen characters.
func relBigUID(buf []byte, i, uidLen int) []byte {
	buf = strconv.AppendInt(buf[:0], int64(i), 10)
	buf = append(buf, '-')
	for len(buf) < uidLen {
		buf = append(buf, "abcdefghijklmnopqrstuvwxyz0123456789"[(len(buf)*7+i)%36])
	}
	return buf[:uidLen]
}

func relServeBigListing(c net.Conn, n, uidLen int) {
	r := bufio.NewReader(c)
	w := bufio.NewWriterSize(c, 64<<10)
	w.WriteString("+OK big maildrop\r\n")
	w.Flush()
	var uid []byte
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(cmd) {
		case "CAPA":
			w.WriteString("+OK\r\nUSER\r\nUIDL\r\nPIPELINING\r\n.\r\n")
		case "USER", "PASS", "NOOP":
			w.WriteString("+OK\r\n")
		case "LIST":
			w.WriteString("+OK\r\n")
			for i := 1; i <= n; i++ {
				fmt.Fprintf(w, "%d 1000\r\n", i)
			}
			w.WriteString(".\r\n")
		case "UIDL":
			w.WriteString("+OK\r\n")
			for i := 1; i <= n; i++ {
				w.WriteString(strconv.Itoa(i))
				w.WriteByte(' ')
				uid = relBigUID(uid, i, uidLen)
				w.Write(uid)
				w.WriteString("\r\n")
			}
			w.WriteString(".\r\n")
		case "QUIT":
			w.WriteString("+OK bye\r\n")
			w.Flush()
			return
		default:
			w.WriteString("-ERR not here\r\n")
		}
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// relBigListingSetup is a profile for relBigListing's server.
func relBigListingSetup(t *testing.T, port int) *relSetup {
	return relWriteConfig(t, relProfile{Name: "acct", Port: port, TLS: "none", Auth: "user", Keep: true,
		Timeout: "30s", Extra: "    allow_plaintext_auth: true"})
}

// TestRelHardeningListingMemory (issue 12.6): `popfetch check` of a maildrop listing 1,000,000
// messages with 250-character UIDLs stays within 350 MB of peak RSS (it took 721 MB).
func TestRelHardeningListingMemory(t *testing.T) {
	relTrack(t)
	const n, uidLen, limitKiB = 1_000_000, 250, 350_000_000 / 1024
	s := relBigListingSetup(t, relBigListing(t, n, uidLen))
	r, err := relExecMeasured(relRunTimeout*4, s.Env, "--config", s.Config, "check")
	if err != nil {
		t.Fatal(err)
	}
	want := "acct: 1000000 new message(s)\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("exit %d, stdout %q, want 0 and %q; stderr: %s", r.code, r.stdout, want, r.stderr)
	}
	if r.maxRSSKiB < 0 {
		t.Skipf("%s is not installed: peak RSS not measured", relTimeBin)
	}
	t.Logf("check of %d UIDLs of %d characters: peak RSS %d KiB (%.0f MB), %v", n, uidLen, r.maxRSSKiB,
		float64(r.maxRSSKiB)*1024/1e6, r.took)
	if r.maxRSSKiB > limitKiB {
		t.Errorf("peak RSS %d KiB, want at most %d KiB (350 MB)", r.maxRSSKiB, limitKiB)
	}
	relRecord("hardening", "a listing of 1,000,000 UIDLs of 250 characters (`check`)",
		fmt.Sprintf("counted them in %.0f MB of peak RSS (the goal: at most 350 MB; it took 721 MB before)",
			float64(r.maxRSSKiB)*1024/1e6), r.code, 0, 0)
}

// TestRelHardeningListingCap (issue 12.6): a maildrop listing more than pop3.MaxListing messages is
// refused with one line and exit 65, after reading no more than that many lines.
func TestRelHardeningListingCap(t *testing.T) {
	relTrack(t)
	s := relBigListingSetup(t, relBigListing(t, pop3.MaxListing+1, 8))
	r := s.run(t, nil, "sync")
	line, err := relOneLine(r.stderr, "acct")
	if err != nil {
		t.Error(err)
	}
	if r.code != exitDataErr || !strings.Contains(line, "lists too many messages: the LIST reply names more than 1000000") {
		t.Errorf("exit %d, stderr %q; want 65 and the listing's size", r.code, r.stderr)
	}
	t.Logf("exit %d in %v: %s", r.code, r.took, line)
	relRecord("hardening", "a maildrop listing 1,000,001 messages",
		"refused it: `"+strings.TrimPrefix(line, "popfetch: ")+"`", r.code, 0, 0)
}
