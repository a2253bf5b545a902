package main

import (
	"errors"

	"github.com/urfave/cli"
)

// bashCompletion asks the tool itself for the words that can follow
// (--generate-bash-completion lists commands, subcommands and flags).
const bashCompletion = `# bash completion for etcdv2ctl; load with: source <(etcdv2ctl completion bash)
_etcdv2ctl_complete() {
	local cur words
	COMPREPLY=()
	cur="${COMP_WORDS[COMP_CWORD]}"
	if [[ "$cur" == -* ]]; then
		words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
	return 0
}
complete -o bashdefault -o default -F _etcdv2ctl_complete etcdv2ctl
`

const zshCompletion = `#compdef etcdv2ctl
# zsh completion for etcdv2ctl; load with: source <(etcdv2ctl completion zsh)
_etcdv2ctl() {
	local -a opts
	local cur
	cur=${words[-1]}
	if [[ "$cur" == "-"* ]]; then
		opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
	else
		opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ "${opts[1]}" != "" ]]; then
		_describe 'values' opts
	else
		_files
	fi
}
if [ "$funcstack[1]" = "_etcdv2ctl" ]; then
	_etcdv2ctl "$@"
else
	compdef _etcdv2ctl etcdv2ctl
fi
`

func (t *tool) completionCommand() cli.Command {
	return cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash or zsh)",
		ArgsUsage: "bash|zsh",
		Description: `Completion prints a script that completes commands, subcommands and
   flags of etcdv2ctl.

   Example:
   $ source <(etcdv2ctl completion bash)
   $ etcdv2ctl completion zsh > "${fpath[1]}/_etcdv2ctl"`,
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				t.printf("%s", bashCompletion)
			case "zsh":
				t.printf("%s", zshCompletion)
			default:
				t.handleError(c, exitBadArgs, errors.New("shell required: bash or zsh"))
			}
			return nil
		},
	}
}
