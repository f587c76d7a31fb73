package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/popfetch/popfetch/internal/clihelp"
	"github.com/urfave/cli/v2"
)

// The bash and zsh scripts are urfave/cli's own (autocomplete/ in its repository), with PROG set:
// they ask popfetch itself for candidates with --generate-bash-completion.
const bashCompletion = `# bash completion for popfetch: source <(popfetch completion bash)
_popfetch_complete() {
  local cur words
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  words=("${COMP_WORDS[@]:0:$COMP_CWORD}")
  local opts
  if [[ "$cur" == "-"* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}
complete -o bashdefault -o default -o nospace -F _popfetch_complete popfetch
`

const zshCompletion = `#compdef popfetch
# zsh completion for popfetch: popfetch completion zsh > "${fpath[1]}/_popfetch"
_popfetch() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _popfetch popfetch
`

func completionCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Action: func(c *cli.Context) error {
			g := globalsFrom(c, env)
			switch c.Args().First() {
			case "bash":
				_, err := io.WriteString(g.stdout, bashCompletion)
				return err
			case "zsh":
				_, err := io.WriteString(g.stdout, zshCompletion)
				return err
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				_, err = io.WriteString(g.stdout, s)
				return err
			}
			return withCode(exitUsage, fmt.Errorf("completion takes one of bash, zsh, fish"))
		},
	}
}

func manCommand(env *appEnv) *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print popfetch's manual page (roff): popfetch man | man -l -",
		Action: func(c *cli.Context) error {
			s := clihelp.ManPage(c.App)
			// The exit status table is part of the manual, as it is of --help.
			s += "\n.SH EXIT STATUS\n.nf\n" + strings.TrimPrefix(exitStatusHelp(), "EXIT STATUS:\n") + ".fi\n"
			_, err := io.WriteString(globalsFrom(c, env).stdout, s)
			return err
		},
	}
}
