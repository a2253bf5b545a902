package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHelpAndCompletion checks that every command's --help shows an
// example and that the completion scripts and the completion words work.
func TestHelpAndCompletion(t *testing.T) {
	app := (&tool{}).newApp()
	n := 0
	for _, c := range app.Commands {
		cmds := [][]string{{c.Name}}
		for _, sub := range c.Subcommands {
			cmds = append(cmds, []string{c.Name, sub.Name})
		}
		if len(c.Subcommands) > 0 {
			cmds = cmds[1:]
		}
		for _, args := range cmds {
			out, errOut, code := ctl(t, "", append(args, "--help")...)
			require.Equal(t, 0, code, "%v: %s", args, errOut)
			require.Contains(t, out, "Example", "%v --help:\n%s", args, out)
			ex := out[strings.Index(out, "Example"):]
			require.Contains(t, ex, "etcdv2ctl ", "%v --help:\n%s", args, out)
			require.Regexp(t, ` `+strings.Join(args, " ")+`( |\n)`, ex, "%v --help:\n%s", args, out)
			n++
		}
	}
	require.GreaterOrEqual(t, n, 40)

	out, _, code := ctl(t, "", "completion", "bash")
	require.Equal(t, 0, code)
	require.Contains(t, out, "complete -o bashdefault -o default -F _etcdv2ctl_complete etcdv2ctl")
	out, _, code = ctl(t, "", "completion", "zsh")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "#compdef etcdv2ctl\n"))
	_, _, code = ctl(t, "", "completion", "fish")
	require.Equal(t, exitBadArgs, code)

	out, _, code = ctl(t, "", "--generate-bash-completion")
	require.Equal(t, 0, code)
	for _, w := range []string{"get", "set", "exec-watch", "member", "export", "lock"} {
		require.Contains(t, strings.Fields(out), w)
	}
	out, _, code = ctl(t, "", "member", "--generate-bash-completion")
	require.Equal(t, 0, code)
	require.Contains(t, strings.Fields(out), "remove")
	out, _, code = ctl(t, "", "ls", "--", "--generate-bash-completion")
	require.Equal(t, 0, code)
	require.Contains(t, strings.Fields(out), "--recursive")
}
