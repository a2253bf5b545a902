package main

import "github.com/urfave/cli"

func (t *tool) statsCommand() cli.Command      { return cli.Command{Name: "stats", Hidden: true} }
func (t *tool) exportCommand() cli.Command     { return cli.Command{Name: "export", Hidden: true} }
func (t *tool) importCommand() cli.Command     { return cli.Command{Name: "import", Hidden: true} }
func (t *tool) completionCommand() cli.Command { return cli.Command{Name: "completion", Hidden: true} }
