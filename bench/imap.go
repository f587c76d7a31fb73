//go:build linux

package main

// The IMAP scenarios: popfetch fetching from Dovecot POP3S and appending to Dovecot IMAP
// (deliver: imap:), both legs behind their own latency proxy, compared with the same fetch into a
// maildir in the same invocation.

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test/dovecot"
)

// imapUser is the Dovecot user whose mailboxes receive the IMAP scenarios' messages.
const imapUser = "imapdest"

// imapMailboxes numbers the mailboxes the runs append to (one new, empty mailbox per run).
var imapMailboxes int

// createMailbox creates an empty mailbox for one run, directly (not through the proxy).
func createMailbox(srv *dovecot.Server) (string, error) {
	imapMailboxes++
	name := fmt.Sprintf("Run%04d", imapMailboxes)
	c, err := imapclient.DialTLS(srv.IMAPSAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: srv.CAPool, ServerName: "localhost"}})
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.Login(imapUser, password).Wait(); err != nil {
		return "", err
	}
	if err := c.Create(name, nil).Wait(); err != nil {
		return "", err
	}
	return name, c.Logout().Wait()
}

// imapFetcher is popfetch delivering to mailbox through the IMAP proxy on port.
func imapFetcher(base *fetcher, port int, caFile string, mailbox *string) *fetcher {
	f := *base
	f.name = "popfetch → IMAP"
	f.configure = func(bin string, j *job) ([]string, []string, error) {
		args, env, err := configurePopfetch(bin, j)
		if err != nil {
			return nil, nil, err
		}
		cfg := filepath.Join(j.dir, "popfetch.yaml")
		data, err := os.ReadFile(cfg)
		if err != nil {
			return nil, nil, err
		}
		text := string(data)
		for _, a := range j.accounts {
			text = strings.Replace(text, "    deliver:\n      maildir: "+a.maildir+"\n",
				fmt.Sprintf("    deliver:\n      imap: {host: 127.0.0.1, port: %d, ca_file: %s, user: %s, password_env: %s, mailbox: %s, timeout: 10m}\n",
					port, caFile, imapUser, benchPasswordEnv, *mailbox), 1)
		}
		return args, env, os.WriteFile(cfg, []byte(text), 0o600)
	}
	return &f
}

// verifyIMAP checks that mailbox holds every seeded message exactly once, intact (CRLF, the
// X-Popfetch-ID and Received: header fields aside).
func verifyIMAP(srv *dovecot.Server, mailbox string, want map[string][]byte) error {
	msgs, err := srv.IMAPMessages(imapUser, password, mailbox)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, m := range msgs {
		id := idOf(m.Body)
		orig, ok := want[id]
		switch {
		case !ok:
			return fmt.Errorf("IMAP message %d: not a seeded message (Message-ID %q)", i+1, id)
		case seen[id]:
			return fmt.Errorf("IMAP: %s appended twice", id)
		}
		seen[id] = true
		if !strings.HasPrefix(string(m.Body), "X-Popfetch-ID: ") {
			return fmt.Errorf("IMAP: %s has no X-Popfetch-ID", id)
		}
		if err := matchDelivered(m.Body, orig); err != nil {
			return fmt.Errorf("IMAP: %s: %v", id, err)
		}
	}
	if len(seen) != len(want) {
		return fmt.Errorf("IMAP: %d of %d messages in %s", len(seen), len(want), mailbox)
	}
	return nil
}

// runIMAPScenario measures popfetch into a maildir and into IMAP, alternately, o.runs times each.
func runIMAPScenario(ctx context.Context, o options, sc *scenario, srv *dovecot.Server, base *fetcher, work, caFile string) ([]*result, error) {
	logf("%s: %s: generating messages", sc.id, sc.title)
	b := &mailbox{user: userName(sc, 0), msgs: sc.gen(sc.id, 0), byID: map[string][]byte{}}
	for _, m := range b.msgs {
		b.byID[idOf(m)] = m
	}
	boxes := []*mailbox{b}
	px, err := newProxy(srv.POP3SAddr, sc.rtt, o.bandwidth)
	if err != nil {
		return nil, err
	}
	defer px.Close()
	ipx, err := newProxy(srv.IMAPSAddr, sc.rtt, o.bandwidth)
	if err != nil {
		return nil, err
	}
	defer ipx.Close()
	var target string
	results := []*result{{f: base}, {f: imapFetcher(base, ipx.Port(), caFile, &target)}}
	for run := range o.runs {
		for k := range results {
			r := results[(k+run)%len(results)]
			if ctx.Err() != nil {
				return results, ctx.Err()
			}
			if err := reseed(ctx, srv, boxes); err != nil {
				return nil, err
			}
			toIMAP := r != results[0]
			if toIMAP {
				if target, err = createMailbox(srv); err != nil {
					return nil, err
				}
			}
			j, err := newJob(work, "popfetch", sc, boxes, px.Port(), caFile)
			if err != nil {
				return nil, err
			}
			args, env, err := r.f.configure(r.f.bin, j)
			m := measure{err: err}
			if err == nil {
				px.Reset()
				ipx.Reset()
				m = execute(ctx, r.f, args, env, j.dir, o.timeout, nil)
				m.stats = px.Reset()
				m.imap = ipx.Reset()
			}
			if m.err == nil {
				if toIMAP {
					m.err = verifyIMAP(srv, target, b.byID)
				} else {
					m.err = verifyMaildir(j.accounts[0].maildir, b.byID)
				}
			}
			if m.err == nil {
				got, err := srv.Messages(b.user)
				if err == nil {
					err = verifyServer(got, b.msgs, sc.keep)
				}
				m.err = err
			}
			r.runs = append(r.runs, m)
			status := "ok"
			if m.err != nil {
				status = "FAILED: " + m.err.Error()
			}
			logf("%s: %s run %d: wall %v cpu %v rss %d KB, POP3 %d round trips, IMAP %d conns %d round trips: %s", sc.id, r.f.name, run+1,
				m.wall.Round(time.Millisecond), m.cpu.Round(time.Millisecond), m.rssKB, m.stats.RoundTrips, m.imap.Conns, m.imap.RoundTrips, status)
			os.RemoveAll(j.dir)
		}
	}
	return results, nil
}

// imapTable reports an IMAP scenario: each destination's medians, both legs' round trips, and the
// ratios to the maildir run.
func imapTable(sc *scenario, res []*result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### %s: %s\n\n", sc.id, sc.title)
	b.WriteString("| destination | runs | wall (median) | CPU user+sys | peak RSS | POP3 round trips | IMAP round trips (connections) | wall ÷ maildir |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	base := summarize(res[0])
	for i, x := range res {
		s := summarize(x)
		var irts, iconns []int
		for _, m := range x.runs {
			if m.err == nil {
				irts = append(irts, m.imap.RoundTrips)
				iconns = append(iconns, m.imap.Conns)
			}
		}
		name := "popfetch → maildir"
		if i > 0 {
			name = x.f.name
		}
		if s.ok == 0 {
			fmt.Fprintf(&b, "| %s | %d ok, %d FAILED | FAILED | | | | | |\n", name, s.ok, s.failed)
			fmt.Fprintf(&b, "\n- FAILED: %s\n\n", oneLine(s.firstFailed.Error()))
			continue
		}
		imapCol := "–"
		if i > 0 {
			imapCol = fmt.Sprintf("%d (%d)", median(irts), median(iconns))
		}
		fmt.Fprintf(&b, "| %s | %d | %.3f s | %.3f s | %.1f MiB | %d | %s | %s |\n", name, s.ok, s.wall.Seconds(), s.cpu.Seconds(),
			float64(s.rssKB)/1024, s.roundTrips, imapCol, ratio(s.wall.Seconds(), base.wall.Seconds()))
	}
	return b.String()
}
