package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/internal/demo"
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
	d, err := demo.Start(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	srv, cfg := d.Server, d.Config
	g := *o.globalOptions
	g.configPath = cfg
	g.verbose = true // a newcomer wants to see what happened
	fmt.Fprintf(g.stderr, "popfetch demo: a POP3 server with %d messages is listening on %s (implicit TLS)\n", d.Messages, srv.Addr())
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
