package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/internal/fsutil"
)

type demoOptions struct {
	*globalOptions
	dir string
}

func demoCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "try popfetch: sync sample messages from a built-in POP3 server into ./popfetch-demo/Maildir",
		Description: "Starts an in-process POP3 server with implicit TLS on 127.0.0.1, writes a profile for it\n" +
			"(./popfetch-demo/config.yaml) and runs the normal sync: the messages land in\n" +
			"./popfetch-demo/Maildir/new. Run it again: the server is new each time, so are the messages.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: "popfetch-demo", Usage: "where to put the demo's files"},
		},
		Action: func(c *cli.Context) error {
			return runDemo(c.Context, demoOptions{globalOptions: globalsFrom(c, env), dir: c.String("dir")})
		},
	}
}

func runDemo(ctx context.Context, o demoOptions) error {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	if err := demoDir(dir); err != nil {
		return err
	}
	now := time.Now()
	var msgs []pop3test.Message
	for i, m := range demoMessages {
		msgs = append(msgs, pop3test.Message{
			UID:  fmt.Sprintf("demo-%d-%d", now.Unix(), i+1),
			Data: fmt.Appendf(nil, m, now.Add(time.Duration(i-len(demoMessages))*time.Minute).Format(time.RFC1123Z)),
		})
	}
	srv, err := pop3test.Start(&pop3test.Options{TLS: pop3test.ImplicitTLS, User: "demo", Password: "demo-password", Messages: msgs})
	if err != nil {
		return err
	}
	defer srv.Close()
	ca := filepath.Join(dir, "demo-ca.pem")
	if err := demoWrite(ca, srv.CACertPEM()); err != nil {
		return withCode(exitIOErr, err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	profile := "# Written by `popfetch demo`: a profile for its built-in server on " + srv.Addr() + ".\n" +
		"state_dir: " + yamlQuote(filepath.Join(dir, "state")) + "\n" +
		"accounts:\n" +
		"  demo:\n" +
		"    host: " + srv.Host() + "\n" +
		"    port: " + strconv.Itoa(srv.Port()) + "\n" +
		"    tls: implicit\n" +
		"    ca_file: " + yamlQuote(ca) + "\n" +
		"    user: demo\n" +
		"    password: demo-password   # fine for a demo; use the keyring or password_command for real\n" +
		"    deliver:\n" +
		"      maildir: " + yamlQuote(filepath.Join(dir, "Maildir")) + "\n"
	if err := demoWrite(cfg, []byte(profile)); err != nil {
		return withCode(exitIOErr, err)
	}
	g := *o.globalOptions
	g.configPath = cfg
	g.verbose = true // a newcomer wants to see what happened
	fmt.Fprintf(g.stderr, "popfetch demo: a POP3 server with %d messages is listening on %s (implicit TLS)\n", len(msgs), srv.Addr())
	fmt.Fprintf(g.stderr, "popfetch demo: profile written to %s\n", cfg)
	if err := runSync(ctx, syncOptions{globalOptions: &g, jobs: 1}); err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "popfetch demo: the messages are in %s; the server kept %d\n",
		filepath.Join(dir, "Maildir", "new"), len(srv.Messages()))
	fmt.Fprintf(g.stderr, "popfetch demo: next, write your own profile: see README.md, then `popfetch config check`\n")
	return nil
}

// demoDir creates the demo's directory (mode 0700), or checks that an existing one is the user's and
// writable by no one else: the demo writes a profile with a password there and runs it, so
// no one else may read or change it. A directory that fails is refused with exit 78.
func demoDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return withCode(exitIOErr, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return withCode(exitIOErr, err)
	}
	if !utf8.ValidString(dir) {
		return withCode(exitUsage, fmt.Errorf("the demo directory %q is not valid UTF-8, which a YAML profile cannot hold: choose another with --dir", dir))
	}
	if err := fsutil.CheckDir(dir, "demo directory"); err != nil {
		return withCode(exitConfig, err)
	}
	return nil
}

// demoWrite writes a file of the demo afresh: whatever is at path (the previous demo's file, or a
// symbolic link someone planted) is removed, not followed, and the file is created exclusively.
func demoWrite(path string, data []byte) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|fsutil.NoFollow, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// yamlQuote returns s as a YAML double-quoted scalar (a JSON string is one), so that a path with
// " #", ": " or a leading "*" reads back as itself. s must be valid UTF-8.
func yamlQuote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// demoMessages are the sample messages (%s is the date); they include the cases that break naive
// fetchers: a line with a leading dot, 8-bit text, a long line.
var demoMessages = []string{
	"From: Ada <ada@example.org>\nTo: you@example.org\nSubject: Welcome to popfetch\nDate: %s\n" +
		"Message-ID: <welcome@popfetch.demo>\n\nHello!\n\nThis message came from a POP3 server over TLS, was written to\n" +
		"the maildir's tmp/, made durable, moved to new/, recorded in the state, and only then deleted\n" +
		"on the server.\n",
	"From: Grace <grace@example.org>\nTo: you@example.org\nSubject: Dots and lines\nDate: %s\n" +
		"Message-ID: <dots@popfetch.demo>\n\nThe next line starts with a dot:\n.like this one\n" +
		"and this one is alone:\n.\nPOP3 escapes both on the wire; popfetch restores them.\n",
	"From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.org>\nTo: you@example.org\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\n" +
		"Date: %s\nMessage-ID: <utf8@popfetch.demo>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n" +
		"Content-Transfer-Encoding: 8bit\n\nGrüße aus Köln — 8-bit text arrives byte for byte.\n",
}
