// Command popfetch fetches mail from POP3 servers into maildirs, mboxes, MDAs and LMTP/SMTP servers,
// durably and exactly once. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/popfetch/popfetch/internal/clihelp"
	"github.com/popfetch/popfetch/internal/termsafe"
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
	stderr     io.Writer // safe for concurrent use
	stderrTTY  bool      // stderr is a terminal: progress bars, summaries
	// stderrTerm is the terminal behind stderr when stderrTTY: the progress bars draw on it, as mpb
	// needs the terminal itself (not a wrapper) to render and to know its width.
	stderrTerm *os.File
	// abort is cancelled by a second SIGINT/SIGTERM (the command's context by the first).
	abort context.Context
	// interrupt is the command's context, cancelled by the first SIGINT/SIGTERM: reading input that
	// may never come (the configuration file, an imported file: FIFOs) gives up when it is done.
	interrupt context.Context
}

// appEnv is what run gives every command besides its cli.Context.
type appEnv struct {
	abort  context.Context // cancelled by a second SIGINT/SIGTERM (the command's context by the first)
	stderr io.Writer       // the process's stderr as run got it (newApp wraps it): is it a terminal?
}

// globalsFrom collects the global flags, and the streams of c.App (stdin is its Reader).
func globalsFrom(c *cli.Context, env *appEnv) *globalOptions {
	return &globalOptions{
		configPath: clihelp.GlobalString(c, "config"),
		verbose:    clihelp.GlobalBool(c, "verbose"),
		quiet:      clihelp.GlobalBool(c, "quiet"),
		json:       clihelp.GlobalBool(c, "json"),
		trace:      clihelp.GlobalBool(c, "trace"),
		stdin:      c.App.Reader,
		stdout:     c.App.Writer,
		stderr:     c.App.ErrWriter,
		stderrTTY:  isTerminal(env.stderr),
		stderrTerm: terminalFile(env.stderr),
		abort:      env.abort,
		interrupt:  c.Context,
	}
}

// globalFlags are the flags every command accepts, before or after its name (`popfetch -v sync` and
// `popfetch sync -v` mean the same). A new set each call: urfave/cli records in a flag whether it was
// set, so commands must not share flag values. Only the application's own set (root) reads the
// environment, so that POPFETCH_CONFIG cannot pose as a --config given after the command.
func globalFlags(root bool) []cli.Flag {
	var env []string
	if root {
		env = []string{"POPFETCH_CONFIG"}
	}
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: env,
			Usage: "configuration file (default $XDG_CONFIG_HOME/popfetch/config.yaml)"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say more on stderr"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "say only errors"},
		&cli.BoolFlag{Name: "json", Usage: "machine-readable output on stdout"},
		&cli.BoolFlag{Name: "trace", Usage: "show the protocol dialogue on stderr (secrets redacted)"},
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// terminalFile returns w if it is a terminal, else nil.
func terminalFile(w any) *os.File {
	if !isTerminal(w) {
		return nil
	}
	return w.(*os.File)
}

// run is main without os.Exit, for tests: it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// The first SIGINT/SIGTERM cancels ctx: commands stop, and a sync finishes the message it is on,
	// commits what it has and sends QUIT. A second one cancels abort: a sync abandons the connection
	// at once (nothing uncommitted was deleted, so nothing is lost); and if the command has not
	// returned within abortGrace (blocked where no context reaches: open(2) of a FIFO, a write to a
	// full pipe), the process exits 130 regardless (exitAfterAbort).
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	abort, abortNow := context.WithCancel(context.Background())
	defer abortNow()
	finished := make(chan struct{})
	defer close(finished)
	sigs := make(chan os.Signal, 2)
	// Not stopped when run returns: a signal arriving between the end of the work and the exit would
	// otherwise kill the process with the default action (exit 143 for work that was completed).
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		n := 0
		for {
			select {
			case <-sigs:
				n++
				switch n {
				case 1:
					stop()
				case 2:
					abortNow()
					go exitAfterAbort(finished, stderr)
				}
				// Later signals change nothing: the process is already ending.
			case <-finished:
				return
			}
		}
	}()

	app := newApp(&appEnv{abort: abort, stderr: stderr}, stdin, stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	if code == exitOK || code == exitNoMail || errors.Is(err, errReported) {
		return code
	}
	fmt.Fprintf(stderr, "popfetch: %s\n", termsafe.Text(err.Error()))
	return code
}

func newApp(env *appEnv, stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	// Accounts synced in parallel share stderr: lockedWriter keeps their lines whole. Everything written
	// there is for people, and much of it quotes servers, messages and MDAs: termsafe escapes what a
	// terminal would obey (line feeds stay), whichever command wrote it. (The progress bars draw on
	// the terminal itself, not through this writer.)
	stderr = &lockedWriter{w: termsafe.NewWriter(stderr)}
	app := &cli.App{
		Name:      "popfetch",
		Usage:     "fetch mail from POP3 servers, durably and exactly once",
		Writer:    stdout,
		ErrWriter: stderr,
		Reader:    stdin,
		// urfave/cli v2 calls os.Exit inside Run for cli.Exit errors; errors are mapped in run.
		ExitErrHandler:         func(*cli.Context, error) {},
		HideHelpCommand:        true,
		EnableBashCompletion:   true,
		UseShortOptionHandling: true,
		Flags: append(globalFlags(true),
			&cli.BoolFlag{Name: "version", Usage: "print the version and exit (like popfetch version)"}),
		Commands: commands(env),
		Action:   rootAction,
	}
	app.CustomAppHelpTemplate = cli.AppHelpTemplate + "\n" + environmentHelp + "\n" + exitStatusHelp()
	// A flag the parser rejects is a usage error (64), said in one line on stderr: without this,
	// urfave/cli prints the help on stdout (which carries data only) and run would exit 70.
	usageError := func(c *cli.Context, err error, _ bool) error {
		return withCode(exitUsage, fmt.Errorf("%w%s (see --help)", err, clihelp.FlagHint(c, err)))
	}
	app.OnUsageError = usageError
	var setUp func([]*cli.Command)
	setUp = func(cmds []*cli.Command) {
		for _, c := range cmds {
			if c.OnUsageError == nil {
				c.OnUsageError = usageError
			}
			c.Flags = append(c.Flags, globalFlags(false)...)
			if len(c.Subcommands) > 0 && c.Action == nil {
				c.Action = unknownSubcommand
			}
			setUp(c.Subcommands)
		}
	}
	setUp(app.Commands)
	return app
}

// rootAction runs for `popfetch` without a command: --version, an unknown command (exit 64, with the
// nearest command name), or the help.
func rootAction(c *cli.Context) error {
	if c.Bool("version") {
		return writeVersion(c.App.Writer, clihelp.GlobalBool(c, "json"))
	}
	if c.NArg() > 0 {
		return unknownCommand(c.App.Commands, c.Args().First(), "popfetch")
	}
	return cli.ShowAppHelp(c)
}

// unknownSubcommand is the action of a command that has subcommands, run when none was named.
func unknownSubcommand(c *cli.Context) error {
	if c.NArg() > 0 {
		return unknownCommand(c.Command.Subcommands, c.Args().First(), "popfetch "+c.Command.Name)
	}
	return cli.ShowSubcommandHelp(c)
}

func unknownCommand(cmds []*cli.Command, name, prefix string) error {
	hint := ""
	if s := clihelp.NearestCommand(cmds, name); s != "" {
		hint = fmt.Sprintf("; did you mean %q?", s)
	}
	return withCode(exitUsage, fmt.Errorf("unknown command %q%s (see %s --help)", name, hint, prefix))
}

// commands lists every command, one file each (cmd_*.go).
func commands(env *appEnv) []*cli.Command {
	return []*cli.Command{syncCommand(env), checkCommand(env), listCommand(env), catCommand(env),
		serverinfoCommand(env), demoCommand(env), initCommand(env), configCommand(env), passwordCommand(env),
		stateCommand(env), statusCommand(env), completionCommand(env), manCommand(env), daemonCommand(env), oauth2Command(env),
		versionCommand()}
}

// lockedWriter serialises writes, so that lines written by concurrent goroutines do not interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// environmentHelp is the ENVIRONMENT section of `popfetch --help`.
const environmentHelp = `ENVIRONMENT:
   POPFETCH_CONFIG   configuration file (like --config)
   POPFETCH_JOBS     accounts synced at once (like sync --jobs)
   XDG_CONFIG_HOME   default configuration file: $XDG_CONFIG_HOME/popfetch/config.yaml
   XDG_STATE_HOME    default state directory: $XDG_STATE_HOME/popfetch
   NO_COLOR          honoured: popfetch never colours its output
`
