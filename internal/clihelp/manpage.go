// Package clihelp is what popfetch's command line needs beyond urfave/cli: the manual page,
// "did you mean" hints for mistyped commands and flags, and global flags that may be given before
// or after the command's name.
package clihelp

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// ManPage renders the manual page (roff, section 1) from the app's commands and flags.
//
// popfetch writes it itself instead of calling urfave/cli's App.ToMan so that release builds can
// leave urfave/cli's docs out (-tags urfave_cli_no_docs): its markdown renderer (blackfriday) compiles
// a few dozen regular expressions when the process starts, about 0.5 MB of heap and 0.3 MB of
// binary in every run, a sync's included.
func ManPage(app *cli.App) string {
	var b strings.Builder
	b.WriteString(".nh\n.TH " + roff(app.Name) + " 1\n")
	b.WriteString(".SH NAME\n" + roff(app.Name) + " \\- " + roff(app.Usage) + "\n")
	b.WriteString(".SH SYNOPSIS\n.B " + roff(app.Name) + "\n[GLOBAL OPTIONS] command [COMMAND OPTIONS] [ARGUMENTS...]\n")
	if app.Description != "" {
		b.WriteString(".SH DESCRIPTION\n" + roffText(app.Description) + "\n")
	}
	b.WriteString(".SH GLOBAL OPTIONS\n")
	manFlags(&b, app.Flags)
	b.WriteString(".SH COMMANDS\n")
	manCommands(&b, app.Commands, "")
	return b.String()
}

func manCommands(b *strings.Builder, cmds []*cli.Command, parent string) {
	for _, c := range cmds {
		if c.Hidden || c.Name == "help" {
			continue
		}
		name := strings.TrimSpace(parent + " " + strings.Join(c.Names(), ", "))
		b.WriteString(".SS " + roff(name) + "\n")
		if c.Usage != "" {
			b.WriteString(roffText(c.Usage) + "\n")
		}
		if c.ArgsUsage != "" {
			b.WriteString(".PP\nArguments: " + roff(c.ArgsUsage) + "\n")
		}
		if c.Description != "" {
			b.WriteString(".PP\n" + roffText(c.Description) + "\n")
		}
		manFlags(b, c.Flags)
		manCommands(b, c.Subcommands, strings.TrimSpace(parent+" "+c.Name))
	}
}

func manFlags(b *strings.Builder, flags []cli.Flag) {
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		var names []string
		for _, n := range f.Names() {
			if len(n) == 1 {
				names = append(names, `\fB\-`+roff(n)+`\fR`)
			} else {
				names = append(names, `\fB\-\-`+roff(n)+`\fR`)
			}
		}
		b.WriteString(".TP\n" + strings.Join(names, ", "))
		d, ok := f.(cli.DocGenerationFlag)
		if ok && d.TakesValue() {
			b.WriteString(" \\fIvalue\\fR")
		}
		b.WriteString("\n")
		if ok {
			usage := d.GetUsage()
			if def := d.GetDefaultText(); d.TakesValue() && def != "" && def != `""` {
				usage += fmt.Sprintf(" (default: %s)", def)
			}
			b.WriteString(roffText(usage) + "\n")
		}
	}
}

// roff escapes s for use inside a roff line: backslashes and hyphens.
func roff(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}

// roffText escapes text that may span lines: roff(s), and lines that would start a request
// ("." or "'") are protected with \&.
func roffText(s string) string {
	lines := strings.Split(roff(strings.TrimRight(s, "\n")), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
