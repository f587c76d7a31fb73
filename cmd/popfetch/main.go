// Command popfetch fetches mail from POP3 servers into maildirs, mboxes, MDAs and LMTP/SMTP servers,
// durably and exactly once. See README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// globalOptions are the flags every command shares.
type globalOptions struct {
	configPath string
	verbose    bool
	quiet      bool
	json       bool
	trace      bool
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
}

func globalsFrom(c *cli.Context, stdin io.Reader) *globalOptions {
	return &globalOptions{
		configPath: c.String("config"),
		verbose:    c.Bool("verbose"),
		quiet:      c.Bool("quiet"),
		json:       c.Bool("json"),
		trace:      c.Bool("trace"),
		stdin:      stdin,
		stdout:     c.App.Writer,
		stderr:     c.App.ErrWriter,
	}
}

// run is main without os.Exit, for tests: it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	app := newApp(stdin, stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	if code == exitOK || code == exitNoMail {
		return code
	}
	fmt.Fprintf(stderr, "popfetch: %v\n", err)
	return code
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "popfetch",
		Usage:     "fetch mail from POP3 servers, durably and exactly once",
		Writer:    stdout,
		ErrWriter: stderr,
		Reader:    stdin,
		// urfave/cli v2 calls os.Exit inside Run for cli.Exit errors; errors are mapped in run.
		ExitErrHandler:         func(*cli.Context, error) {},
		HideHelpCommand:        true,
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"POPFETCH_CONFIG"},
				Usage: "configuration file (default $XDG_CONFIG_HOME/popfetch/config.yaml)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say more on stderr"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "say only errors"},
			&cli.BoolFlag{Name: "json", Usage: "machine-readable summary on stdout"},
			&cli.BoolFlag{Name: "trace", Usage: "show the protocol dialogue on stderr (secrets redacted)"},
		},
		Commands: commands(stdin),
	}
	app.CustomAppHelpTemplate = cli.AppHelpTemplate + "\n" + exitStatusHelp()
	return app
}

// commands lists every command, one file each (cmd_*.go).
func commands(stdin io.Reader) []*cli.Command {
	return []*cli.Command{configCommand(stdin), passwordCommand(stdin)}
}
