package pop3test

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// retr1 is the normal response to RETR 1 of the maildrop of faultServer.
const retr1 = "+OK 7 octets\r\nhello\r\n.\r\n"

func faultServer(t *testing.T, faults ...Fault) *Server {
	return NewServer(t, &Options{Messages: msgs("hello\n", "two\n"), Faults: faults})
}

func TestFaultReply(t *testing.T) {
	s := faultServer(t, Fault{Command: "PASS", Count: 1, Reply: "-ERR [IN-USE] maildrop locked"})
	c := dial(t, s).greet()
	c.expect("USER alice", "+OK")
	c.expect("PASS secret", "-ERR [IN-USE] maildrop locked")
	c.expect("STAT", "-ERR command not valid in this state") // PASS was not executed
	c.login()                                                // Count: 1
}

func TestFaultGreeting(t *testing.T) {
	s := faultServer(t, Fault{Command: "GREETING", Count: 1, Reply: "-ERR [SYS/TEMP] try later"})
	c := dial(t, s)
	c.expect("CAPA", "-ERR [SYS/TEMP] try later")
	c.expectEOF("")
	dial(t, s).greet().login()
}

func TestFaultReplyRaw(t *testing.T) {
	s := faultServer(t, Fault{Command: "LIST", Action: ReplyRaw, Reply: "+OK\r\n1 100\r\n..bad\r\n.\r\n"})
	c := dial(t, s).greet()
	c.login()
	if got := c.multi("LIST"); !slices.Equal(got, []string{"1 100", ".bad"}) {
		t.Errorf("LIST: %q", got)
	}
}

func TestFaultDrop(t *testing.T) {
	s := faultServer(t, Fault{Command: "RETR", Arg: "2", Action: Drop})
	c := dial(t, s).greet()
	c.login()
	// Pipelined: the reply to RETR 1 arrives, then the connection closes.
	c.send("RETR 1\r\nRETR 2\r\nNOOP")
	c.expectEOF(retr1)
}

func TestFaultDropAfter(t *testing.T) {
	for _, n := range []int{0, 1, 10, len(retr1) - 1} {
		s := faultServer(t, Fault{Command: "RETR", Action: DropAfter, Bytes: n})
		c := dial(t, s).greet()
		c.login()
		c.send("RETR 1")
		c.expectEOF(retr1[:n])
	}
}

func TestFaultDropAfterQUITCommits(t *testing.T) {
	s := faultServer(t, Fault{Command: "QUIT", Action: DropAfter})
	c := dial(t, s).greet()
	c.login()
	c.expect("DELE 1", "+OK message 1 deleted")
	c.send("QUIT")
	c.expectEOF("")
	s.Close()
	if got := s.Messages(); len(got) != 1 || got[0].UID != "uid-2" {
		t.Errorf("Messages() = %v, want only uid-2", got)
	}

	// Drop (not DropAfter) does not execute QUIT: nothing is committed.
	s2 := faultServer(t, Fault{Command: "QUIT", Action: Drop})
	c2 := dial(t, s2).greet()
	c2.login()
	c2.expect("DELE 1", "+OK message 1 deleted")
	c2.send("QUIT")
	c2.expectEOF("")
	s2.Close()
	if got := s2.Messages(); len(got) != 2 {
		t.Errorf("Messages() = %v, want both", got)
	}
}

func TestFaultStall(t *testing.T) {
	s := faultServer(t, Fault{Command: "RETR", Action: Stall, Count: 1})
	c := dial(t, s).greet()
	c.login()
	c.send("RETR 1")
	c.expectSilence()
	c.send("NOOP") // read and discarded
	c.expectSilence()
	s.Close()
	c.expectEOF("")
}

func TestFaultStallAfter(t *testing.T) {
	s := faultServer(t, Fault{Command: "RETR", Action: StallAfter, Bytes: 16})
	c := dial(t, s).greet()
	c.login()
	c.send("RETR 1")
	buf := make([]byte, 16)
	if _, err := io.ReadFull(c.reader(), buf); err != nil || string(buf) != retr1[:16] {
		t.Fatalf("got %q, %v", buf, err)
	}
	c.expectSilence()
}

func TestFaultDrip(t *testing.T) {
	const delay = 5 * time.Millisecond
	s := faultServer(t, Fault{Command: "RETR", Action: Drip, Delay: delay})
	c := dial(t, s).greet()
	c.login()
	start := time.Now()
	c.send("RETR 1")
	buf := make([]byte, len(retr1))
	if _, err := io.ReadFull(c.reader(), buf); err != nil || string(buf) != retr1 {
		t.Fatalf("got %q, %v", buf, err)
	}
	if el := time.Since(start); el < time.Duration(len(retr1)-1)*delay {
		t.Errorf("response took %v, want at least %v", el, time.Duration(len(retr1)-1)*delay)
	}
	c.expect("NOOP", "+OK") // the session goes on
}

func TestFaultOversized(t *testing.T) {
	s := faultServer(t, Fault{Command: "CAPA", Action: Oversized, Bytes: 100000})
	c := dial(t, s).greet()
	c.send("CAPA")
	l, err := c.reader().ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 100000 || !strings.HasPrefix(l, "+OK xxx") || !strings.HasSuffix(l, "x\r\n") {
		t.Errorf("status line of %d octets: %.10q...%q", len(l), l, l[len(l)-5:])
	}
	c.login()
}

func TestFaultWrongSize(t *testing.T) {
	s := faultServer(t, Fault{Command: "LIST", Arg: "2", Action: WrongSize, Bytes: 999})
	c := dial(t, s).greet()
	c.login()
	if got := c.multi("LIST"); !slices.Equal(got, []string{"1 7", "2 999"}) {
		t.Errorf("LIST: %q", got)
	}
	c.expect("LIST 2", "+OK 2 999")
	c.expect("LIST 1", "+OK 1 7")
	c.expect("RETR 2", "+OK 5 octets")

	s2 := faultServer(t, Fault{Command: "LIST", Action: WrongSize, Bytes: 1})
	c2 := dial(t, s2).greet()
	c2.login()
	if got := c2.multi("LIST"); !slices.Equal(got, []string{"1 1", "2 1"}) {
		t.Errorf("LIST: %q", got)
	}
}

func TestFaultNoTerminator(t *testing.T) {
	for cmd, lines := range map[string]int{"RETR 1": 2, "TOP 1 0": 2, "LIST": 3, "UIDL": 3} {
		kw, _, _ := strings.Cut(cmd, " ")
		s := faultServer(t, Fault{Command: kw, Action: NoTerminator})
		c := dial(t, s).greet()
		c.login()
		c.send("%s", cmd)
		var got []string
		for range lines {
			got = append(got, c.line())
		}
		if slices.Contains(got, ".") {
			t.Errorf("%s: %q", cmd, got)
		}
		c.expectSilence()
	}
}

func TestFaultAfterCount(t *testing.T) {
	s := faultServer(t,
		Fault{Command: "RETR", After: 1, Count: 2, Reply: "-ERR [SYS/TEMP] busy"},
		Fault{Command: "retr", Count: 3, Reply: "-ERR shadowed while the first applies"},
	)
	var got []string
	for range 2 { // counters span sessions
		c := dial(t, s).greet()
		c.login()
		for range 2 {
			got = append(got, c.cmd("RETR 2"))
			if strings.HasPrefix(got[len(got)-1], "+OK") {
				c.raw()
			}
		}
		c.expect("QUIT", "+OK pop3test signing off (0 messages deleted)")
	}
	want := []string{"-ERR shadowed while the first applies", "-ERR [SYS/TEMP] busy", "-ERR [SYS/TEMP] busy", "+OK 5 octets"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
