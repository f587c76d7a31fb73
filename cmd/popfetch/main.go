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
		stderrTTY:  isTerminal(c.App.Metadata["stderr"]),
		stderrTerm: terminalFile(c.App.Metadata["stderr"]),
		abort:      metaContext(c.App.Metadata["abort"]),
		interrupt:  c.Context,
	}
}

func metaContext(v any) context.Context {
	if ctx, ok := v.(context.Context); ok {
		return ctx
	}
	return context.Background()
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

	app := newApp(stdin, stdout, stderr)
	app.Metadata = map[string]any{"abort": abort, "stderr": stderr}
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	if code == exitOK || code == exitNoMail || errors.Is(err, errReported) {
		return code
	}
	fmt.Fprintf(stderr, "popfetch: %v\n", err)
	return code
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	stderr = &lockedWriter{w: stderr} // accounts synced in parallel share it
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
	app.CustomAppHelpTemplate = cli.AppHelpTemplate + "\n" + environmentHelp + "\n" + exitStatusHelp()
	// A flag the parser rejects is a usage error (64), said in one line on stderr: without this,
	// urfave/cli prints the help on stdout (which carries data only) and run would exit 70.
	usageError := func(_ *cli.Context, err error, _ bool) error {
		return withCode(exitUsage, fmt.Errorf("%w (see --help)", err))
	}
	app.OnUsageError = usageError
	var setUsage func([]*cli.Command)
	setUsage = func(cmds []*cli.Command) {
		for _, c := range cmds {
			if c.OnUsageError == nil {
				c.OnUsageError = usageError
			}
			setUsage(c.Subcommands)
		}
	}
	setUsage(app.Commands)
	return app
}

// commands lists every command, one file each (cmd_*.go).
func commands(stdin io.Reader) []*cli.Command {
	return []*cli.Command{syncCommand(stdin), checkCommand(stdin), listCommand(stdin), catCommand(stdin),
		serverinfoCommand(stdin), demoCommand(stdin), initCommand(stdin), configCommand(stdin), passwordCommand(stdin),
		stateCommand(stdin), completionCommand(stdin), manCommand(stdin), daemonCommand(stdin), oauth2Command(stdin)}
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
