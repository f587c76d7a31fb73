//go:build unix

package main

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/internal/shard"
)

// The daemon at scale, end to end (issue 16): max_connections per host, shards, the start line.

// The max_connections tests fetch and delete one message per account (max_messages: 1 from a shared
// mailbox): a session with something to commit waits for QUIT's reply, so the barrier sees its
// QUIT before popfetch can start another session. (A session with nothing to commit sends QUIT
// without waiting and may still count as open at the barrier when the next one connects.)

// TestMaxConnectionsSync: `sync --jobs 8` over 12 accounts of one host with max_connections: 3 opens
// exactly 3 sessions at once, never more. The barrier holds sessions until 3 are open, so a run that
// opened fewer would not finish in time.
func TestMaxConnectionsSync(t *testing.T) {
	t.Parallel()
	s := newServer(t, numbered(24), &pop3test.Options{TLS: pop3test.Plain})
	b := newBarrier(t, s.Addr(), 3)
	p := newProfile(t)
	var maildirs []string
	for i := range 12 {
		maildirs = append(maildirs, p.addAt(fmt.Sprintf("acct%02d", i), b.port(), "ca_file: "+p.caFile(s.CACertPEM()),
			"tls: none", "ca_file: -", "max_messages: 1", "timeout: 30s", "max_connections: 3"))
	}
	r := p.run("sync", "--jobs", "8")
	expectCode(t, r, 0)
	if got := b.maxOpen(); got != 3 {
		t.Errorf("at most %d sessions were open at once with the host, want exactly 3 (max_connections)", got)
	}
	if n := s.Sessions(); n != 12 {
		t.Errorf("%d sessions, want 12", n)
	}
	for _, md := range maildirs {
		if n := len(maildirFiles(t, md)); n != 1 {
			t.Errorf("%s: %d messages, want 1", md, n)
		}
	}
}

// TestDaemonMaxConnections: the daemon (global limit: the default, far above) polls 12 due
// accounts of one host with max_connections: 3 exactly 3 at a time.
func TestDaemonMaxConnections(t *testing.T) {
	t.Parallel()
	s := newServer(t, numbered(24), &pop3test.Options{TLS: pop3test.Plain})
	b := newBarrier(t, s.Addr(), 3)
	p := newProfile(t)
	for i := range 12 {
		p.addAt(fmt.Sprintf("acct%02d", i), b.port(), "ca_file: "+p.caFile(s.CACertPEM()),
			"tls: none", "ca_file: -", "max_messages: 1", "timeout: 30s", "interval: 1h", "max_connections: 3")
	}
	d := daemonStart(t, p.path, "-v", "daemon")
	d.waitLog(t, "acct00: 1 fetched") // held at the barrier until SIGUSR1 makes the others due
	d.signal(t, syscall.SIGUSR1)
	for i := range 12 {
		d.waitLog(t, fmt.Sprintf("acct%02d: 1 fetched", i))
	}
	if got := b.maxOpen(); got != 3 {
		t.Errorf("at most %d sessions were open at once with the host, want exactly 3 (max_connections)", got)
	}
	if code, _ := d.stop(t); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}

// shardSetup is 9 accounts, each with its own server holding one message.
func shardSetup(t *testing.T, interval string) (*profile, []string, []*pop3test.Server, []string) {
	p := newProfile(t)
	var names, maildirs []string
	var servers []*pop3test.Server
	for i := range 9 {
		s := newServer(t, numbered(1), nil)
		name := fmt.Sprintf("acct%02d", i)
		names = append(names, name)
		servers = append(servers, s)
		maildirs = append(maildirs, p.add(name, s, "interval: "+interval))
	}
	return p, names, servers, maildirs
}

// TestShardSync: `sync --shard I/3` for I = 0, 1, 2 syncs each account exactly once in all, each
// run only its own (FNV-1a of the name mod 3); an account named outside the shard is exit 64.
func TestShardSync(t *testing.T) {
	t.Parallel()
	p, names, servers, maildirs := shardSetup(t, "5m")
	for i := range 3 {
		r := p.run("-v", "sync", "--shard", fmt.Sprintf("%d/3", i))
		expectCode(t, r, 0)
		for k, name := range names {
			mine := shard.Of(name, 3) == i
			if polled := strings.Contains(r.stderr, name+": 1 fetched"); polled != mine {
				t.Errorf("sync --shard %d/3: %s polled %v, want %v (its shard is %d); stderr:\n%s", i, name, polled, mine, shard.Of(name, 3), r.stderr)
			}
			if mine && servers[k].Sessions() != 1 {
				t.Errorf("%s: %d sessions after its shard's run, want 1", name, servers[k].Sessions())
			}
		}
	}
	for k, md := range maildirs {
		if n := len(maildirFiles(t, md)); n != 1 || servers[k].Sessions() != 1 {
			t.Errorf("%s: %d messages, %d sessions after the three shards, want 1 and 1", names[k], n, servers[k].Sessions())
		}
	}
	other := ""
	for _, name := range names {
		if shard.Of(name, 3) != 0 {
			other = name
			break
		}
	}
	r := p.run("sync", "--shard", "0/3", other)
	expectCode(t, r, exitUsage)
	if want := fmt.Sprintf("account %q is in shard %d/3, not 0/3", other, shard.Of(other, 3)); !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not say %q", r.stderr, want)
	}
	r = p.run("sync", "--shard", "3/3")
	expectCode(t, r, exitUsage)
}

// TestDaemonStartLine (issue 13.9): the start line counts the accounts and their intervals instead of
// listing them; -v lists them one per line. With --shard the daemon takes only its shard.
func TestDaemonStartLine(t *testing.T) {
	t.Parallel()
	p, names, servers, _ := shardSetup(t, "1h")
	d := daemonStart(t, p.path, "daemon", "--shard", "1/3")
	line := d.waitLog(t, "popfetch: daemon started")
	mine := 0
	for _, name := range names {
		if shard.Of(name, 3) == 1 {
			mine++
		}
	}
	want := fmt.Sprintf("%d account(s), every 1h (%d) of 9 in shard 1/3; up to ", mine, mine)
	if !strings.Contains(line, want) || strings.Contains(line, "acct") {
		t.Errorf("start line %q: want %q and no account names", line, want)
	}
	d.signal(t, syscall.SIGUSR1)
	for k, name := range names {
		if shard.Of(name, 3) == 1 {
			daemonWaitFor(t, name+"'s poll", func() bool { return servers[k].Sessions() >= 1 })
		}
	}
	if code, _ := d.stop(t); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
	for k, name := range names {
		if shard.Of(name, 3) != 1 && servers[k].Sessions() != 0 {
			t.Errorf("%s (shard %d) was polled by shard 1/3", name, shard.Of(name, 3))
		}
	}

	d = daemonStart(t, p.path, "-v", "daemon", "--jobs", "2")
	line = d.waitLog(t, "popfetch: daemon started")
	if !strings.HasSuffix(line, "9 account(s), every 1h (9); up to 2 poll(s) at once") {
		t.Errorf("start line %q", line)
	}
	for i, name := range names {
		l := d.waitLog(t, name+": every 1h from 127.0.0.1; first poll in ")
		if want := "first poll in " + strconv.Itoa(i) + "s"; !strings.HasSuffix(l, want) {
			t.Errorf("-v account line %q, want it to end %q", l, want)
		}
	}
	d.stop(t)
}
