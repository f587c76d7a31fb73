package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/fetch"
	"github.com/popfetch/popfetch/fetch/pop3"
	"github.com/popfetch/popfetch/internal/report"
	"github.com/popfetch/popfetch/internal/termsafe"
	"github.com/popfetch/popfetch/store"
)

// This file holds the commands that look at a server without changing anything: list, cat and
// serverinfo.

type inspectOptions struct {
	*globalOptions
	account string
	message string // cat: number or UIDL
}

// oneAccount loads the configuration and returns the named account.
func oneAccount(g *globalOptions, name string) (*config.Config, *config.Account, error) {
	cfg, err := loadConfig(g)
	if err != nil {
		return nil, nil, err
	}
	accts, err := selectAccounts(cfg, []string{name})
	if err != nil {
		return nil, nil, err
	}
	return cfg, accts[0], nil
}

func listCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:      "list",
		Usage:     "list the messages on the server: number, UIDL, size, and whether popfetch already has it",
		ArgsUsage: "ACCOUNT",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return withCode(exitUsage, fmt.Errorf("list takes one ACCOUNT"))
			}
			return runList(c.Context, inspectOptions{globalOptions: globalsFrom(c, env), account: c.Args().First()})
		},
	}
}

func runList(ctx context.Context, o inspectOptions) (err error) {
	cfg, a, err := oneAccount(o.globalOptions, o.account)
	if err != nil {
		return err
	}
	defer func() { err = forAccount(a.Name, err) }()
	// The state is read under the account's lock (opening it may repair a torn record). When a sync
	// holds the lock, list does not wait: it shows "?" for what popfetch has.
	seen := func(string) string { return "?" }
	if lock, err := store.Lock(cfg.StateDir, a.Name, false); err == nil {
		defer lock.Unlock()
		st, err := store.OpenState(cfg.StateDir, a.Name)
		if err != nil {
			return err
		}
		defer st.Close()
		seen = func(uid string) string {
			if e, ok := st.Lookup(uid); ok && e.Status == store.StatusDelivered {
				if e.Imported != "" {
					return "imported" // another fetcher had it (state import): not fetched, not deleted
				}
				return "have"
			}
			return "new"
		}
	} else if !errors.Is(err, store.ErrLocked) {
		return err
	} else {
		fmt.Fprintf(o.stderr, "popfetch: %s: a sync is running; not showing which messages popfetch has\n", a.Name)
	}
	c, _, err := fetch.Connect(ctx, fetchAccount(o.globalOptions, a))
	if err != nil {
		return err
	}
	defer c.Close()
	listing, err := c.Listing(ctx)
	if err != nil {
		return err
	}
	if err := c.Quit(ctx); err != nil {
		return err
	}
	if o.json {
		type row struct {
			Number int    `json:"number"`
			UID    string `json:"uidl"`
			Size   int64  `json:"size"`
			Status string `json:"status"` // have, imported, new, or ? (state locked by a sync)
		}
		rows := make([]row, len(listing))
		for i, m := range listing {
			rows[i] = row{m.Number, m.UID, m.Size, seen(m.UID)}
		}
		return writeJSON(o.stdout, rows)
	}
	for _, m := range listing {
		have := seen(m.UID)
		uid := termsafe.String(m.UID) // RFC 1939 says 0x21-0x7E; servers send what they like
		if uid == "" {
			uid = "-"
		}
		fmt.Fprintf(o.stdout, "%6d  %-40s %10d  %s\n", m.Number, uid, m.Size, have)
	}
	return nil
}

func catCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:      "cat",
		Usage:     "write one message's raw bytes to stdout, by number or UIDL; nothing is deleted",
		ArgsUsage: "ACCOUNT MSG",
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return withCode(exitUsage, fmt.Errorf("cat takes ACCOUNT and MSG (a message number or UIDL)"))
			}
			return runCat(c.Context, inspectOptions{globalOptions: globalsFrom(c, env), account: c.Args().Get(0),
				message: c.Args().Get(1)})
		},
	}
}

func runCat(ctx context.Context, o inspectOptions) (err error) {
	_, a, err := oneAccount(o.globalOptions, o.account)
	if err != nil {
		return err
	}
	defer func() { err = forAccount(a.Name, err) }()
	c, _, err := fetch.Connect(ctx, fetchAccount(o.globalOptions, a))
	if err != nil {
		return err
	}
	defer c.Close()
	num, err := strconv.Atoi(o.message)
	if err != nil || num < 1 {
		// A UIDL: find its number in this session.
		listing, lerr := c.Uidl(ctx)
		if lerr != nil {
			return lerr
		}
		num = 0
		for _, m := range listing {
			// The UIDL as the server sent it, or as `list` shows it (escaped when it holds controls).
			if m.UID == o.message || (num == 0 && termsafe.String(m.UID) == o.message) {
				num = m.Number
			}
		}
		if num == 0 {
			return withCode(exitUsage, fmt.Errorf("%s: no message with number or UIDL %q on the server", a.Name, o.message))
		}
	}
	r, err := c.Retr(ctx, num)
	if err != nil {
		return err
	}
	out := store.NewStdout(o.stdout, store.StdoutOptions{Raw: true})
	if _, err := out.Deliver(ctx, store.Envelope{Account: a.Name}, r); err != nil {
		return err
	}
	if err := out.Commit(ctx, nil); err != nil {
		return err
	}
	return c.Quit(ctx)
}

func serverinfoCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:      "serverinfo",
		Usage:     "show the server's greeting, capabilities and TLS certificate (with the fingerprint for tls_fingerprint)",
		ArgsUsage: "ACCOUNT",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return withCode(exitUsage, fmt.Errorf("serverinfo takes one ACCOUNT"))
			}
			return runServerinfo(c.Context, inspectOptions{globalOptions: globalsFrom(c, env), account: c.Args().First()})
		},
	}
}

// serverInfo is what serverinfo prints (as text, or as JSON with --json).
type serverInfo struct {
	Account string `json:"account"`
	Address string `json:"address"`
	TLSMode string `json:"tls_mode"`
	pop3.ServerInfo
}

// runServerinfo connects without logging in: no password is needed to see what a server offers.
func runServerinfo(ctx context.Context, o inspectOptions) (err error) {
	_, a, err := oneAccount(o.globalOptions, o.account)
	if err != nil {
		return err
	}
	defer func() { err = forAccount(a.Name, err) }()
	acct := fetchAccount(o.globalOptions, a)
	c, err := pop3.Dial(ctx, acct.Addr, acct.TLS, &acct.Options)
	if err != nil {
		return err
	}
	defer c.Close()
	si, err := c.Info(ctx)
	if err != nil {
		return err
	}
	info := serverInfo{Account: a.Name, Address: acct.Addr, TLSMode: a.TLS, ServerInfo: si}
	c.Quit(ctx)
	if o.json {
		return writeJSON(o.stdout, info)
	}
	report.ServerInfo(o.stdout, info.Account, info.Address, info.TLSMode, info.ServerInfo)
	return nil
}
