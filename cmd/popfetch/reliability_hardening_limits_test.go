package main

// Hardening rows of issue 12, points 5, 6 and 7: limits that hold. max_size on the RETR stream (a
// server that lists 32 octets and sends 100 MB), a listing of a million long UIDLs in bounded memory
// and a cap on the count, and a configuration file too large to be one.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
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
func relBigListingSetup(t *testing.T, port int) *profile {
	p := relNewProfile(t, t.TempDir())
	p.addAt("acct", port, "tls: none", "auth: user", "keep: true", "timeout: 30s", "allow_plaintext_auth: true")
	return p
}

// TestRelHardeningListingMemory (issue 12.6): `popfetch check` of a maildrop listing 1,000,000
// messages with 250-character UIDLs stays within 350 MB of peak RSS (it took 721 MB).
func TestRelHardeningListingMemory(t *testing.T) {
	relTrack(t)
	const n, uidLen, limitKiB = 1_000_000, 250, 350_000_000 / 1024
	s := relBigListingSetup(t, relBigListing(t, n, uidLen))
	r, err := s.measure(relRunTimeout*4, "check")
	if err != nil {
		t.Fatal(err)
	}
	want := "acct: 1000000 new message(s)\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("exit %d, stdout %q, want 0 and %q; stderr: %s", r.code, r.stdout, want, r.stderr)
	}
	if r.maxRSSKiB < 0 {
		t.Skipf("%s is not installed: peak RSS not measured", timeBin)
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
	r := s.run("sync")
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

// relSyncBuffer is a bytes.Buffer safe for the server's goroutines.
type relSyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *relSyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *relSyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRelHardeningStreamMaxSize (issue 12.5): the server lists message 2 as 32 octets and sends
// 100 MB when it is retrieved; the profile says max_size: 1MB. popfetch stops reading just past
// 1 MB, delivers nothing of it (and deletes nothing), says so in one line and exits 65; the next run
// skips it (oversize: skip) without retrieving it and fetches the others.
func TestRelHardeningStreamMaxSize(t *testing.T) {
	relTrack(t)
	msgs := relMessages("big", 4)
	var trace relSyncBuffer
	srv, ca := relServer(t, pop3test.Options{Messages: relToServer(msgs), Trace: &trace, Faults: []pop3test.Fault{
		{Command: "LIST", Action: pop3test.WrongSize, Arg: "2", Bytes: 32},
		{Command: "RETR", Arg: "2", Action: pop3test.Inflate, Bytes: 100 << 20},
	}})
	s := relNewProfile(t, t.TempDir())
	s.addAt("acct", srv.Port(), "ca_file: "+ca, "max_size: 1MB")
	md := relMaildir(s.dir, "acct")

	r, err := s.measure(relRunTimeout, "sync")
	if err != nil {
		t.Fatal(err)
	}
	line, err := relOneLine(r.stderr, "acct")
	if err != nil {
		t.Error(err)
	}
	want := regexp.MustCompile(`^popfetch: acct: message 2 \(UIDL "big-uid-001"\) is larger than max_size 1000000 octets although LIST said 32: stopped reading after 10[0-9]{5} octets, delivered none of it and deleted nothing this run; the next run leaves it on the server \(oversize: skip\)$`)
	if r.code != exitDataErr || !want.MatchString(line) {
		t.Errorf("exit %d, stderr %q; want 65 and %s", r.code, r.stderr, want)
	}
	got := relReadMaildir(t, md)
	tally := relCount(msgs, got, relServerData(srv))
	if !tally.ok() || tally.delivered != 1 || got[string(msgs[0].Data)] != 1 || len(got) != 1 {
		t.Errorf("first run: %v; want only message 1 delivered", tally)
	}
	if n := len(srv.Messages()); n != 4 {
		t.Errorf("first run: the server holds %d messages, want all 4 (nothing deleted)", n)
	}
	if ents, _ := os.ReadDir(filepath.Join(md, "tmp")); len(ents) != 0 {
		t.Errorf("first run left %d files in the maildir's tmp/", len(ents))
	}
	// The server was stopped long before 100 MB: what it handed the socket is bounded by max_size,
	// the slack and the socket buffers.
	cut := regexp.MustCompile(`client went away after at most (\d+) octets`).FindStringSubmatch(trace.String())
	if cut == nil {
		t.Errorf("the server sent the whole 100 MB (no cut-off in its trace)")
	} else if n, _ := strconv.Atoi(cut[1]); n > 16<<20 {
		t.Errorf("the server sent %d octets before popfetch went away, want at most 16 MiB", n)
	}
	retrs := strings.Count(trace.String(), "C: RETR 2")

	r2 := s.run("sync")
	if r2.code != 0 || r2.stderr != "" {
		t.Errorf("second run: exit %d, stderr %q; want 0 and silence", r2.code, r2.stderr)
	}
	got = relReadMaildir(t, md)
	held := relServerData(srv)
	t2 := relCount(msgs, got, held)
	if !t2.ok() || t2.delivered != 3 || len(held) != 1 || string(held[0]) != string(msgs[1].Data) {
		t.Errorf("second run: %v; want messages 1, 3, 4 delivered and only message 2 on the server", t2)
	}
	if n := strings.Count(trace.String(), "C: RETR 2"); n != retrs {
		t.Errorf("the second run retrieved message 2 again")
	}
	t.Logf("exit %d in %v, peak RSS %d KiB: %s; then exit %d: %v", r.code, r.took, r.maxRSSKiB, line, r2.code, t2)
	did := "stopped reading it past max_size + 64 KiB, delivered none of it, deleted nothing: `" +
		strings.TrimPrefix(line, "popfetch: ") + "`"
	if r.maxRSSKiB > 0 {
		did += fmt.Sprintf(" (peak RSS %d MiB)", (r.maxRSSKiB+512)>>10)
	}
	did += "; the next run skipped it without retrieving it, delivered the other 3 (exit 0)"
	relRecord("hardening", "LIST says 32 octets, RETR sends 100 MB (max_size: 1MB)", did,
		fmt.Sprintf("%d, then %d", r.code, r2.code), max(tally.lost, t2.lost), max(tally.duplicated, t2.duplicated))
}

// relLongConfig writes a profile of lines lines of lineLen bytes (comments inside the account) with
// a mis-indented key on its last line, and returns that line's number.
func relLongConfig(t *testing.T, s *profile, lines, lineLen int) int {
	data, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.Write(data)
	n := strings.Count(string(data), "\n")
	comment := "    # " + strings.Repeat("x", lineLen-7) + "\n"
	for ; n < lines-1; n++ {
		b.WriteString(comment)
	}
	b.WriteString("   keep: true\n")
	if err := os.WriteFile(s.path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return n + 1
}

// TestRelHardeningConfigSize (issue 12.7): a 9 MB configuration (450 lines of 20 KB, an error on
// the last line) took 31 s to be refused; now it is refused for its size at once, with exit 78. A
// file just under the 1 MiB cap with an error on its last line is refused quickly, naming that line.
func TestRelHardeningConfigSize(t *testing.T) {
	relTrack(t)
	for _, tc := range []struct {
		name           string
		lines, lineLen int
		want           string
	}{
		{"a 9 MB configuration file (450 lines of 20 KB, an error on the last line)", 450, 20 << 10,
			`: the file is larger than 1 MiB \(1048576 bytes\), far more than any configuration needs: is it the right file\?$`},
		{"a 1 MB configuration file (500 lines of 2 KB, an error on the last line)", 500, 2000,
			`:500:4: not valid YAML: did not find expected key$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := relNewProfile(t, t.TempDir())
			s.addAt("acct", 1)
			relLongConfig(t, s, tc.lines, tc.lineLen)
			r := s.run("sync")
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if r.code != exitConfig || len(lines) != 1 || !regexp.MustCompile(regexp.QuoteMeta(s.path)+tc.want).MatchString(lines[0]) {
				t.Errorf("exit %d, stderr %q; want 78 and one line matching %s", r.code, r.stderr, tc.want)
			}
			if r.took > 10*time.Second {
				t.Errorf("took %v", r.took)
			}
			t.Logf("exit %d in %v: %s", r.code, r.took, r.stderr)
			relRecord("hardening", tc.name, fmt.Sprintf("refused in %v: `%s`", r.took.Round(10*time.Millisecond),
				strings.Replace(strings.TrimPrefix(lines[0], "popfetch: "), s.path, "CONFIG", 1)), r.code, 0, 0)
		})
	}
}
