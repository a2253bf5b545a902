package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/etcdv2/client"
	"github.com/urfave/cli"
)

// ttlFlag is the --ttl flag of the write commands.
var ttlFlag = cli.IntFlag{Name: "ttl", Value: 0, Usage: "key time-to-live in seconds"}

func (t *tool) keysAPI(c *cli.Context) client.KeysAPI {
	return client.NewKeysAPI(t.mustClient(c))
}

// rootReadOnly turns the client's refusal to write the root directory into
// the error the server gives for it (etcd error 107 at the current index),
// which etcdctl v2 printed, having sent the request.
func rootReadOnly(ki client.KeysAPI, c *cli.Context, t *tool, err error) error {
	var ir *client.InvalidRequestError
	if !errors.As(err, &ir) || ir.Field != "key" || !strings.Contains(ir.Reason, "root directory") {
		return err
	}
	ctx, cancel := t.totalTimeout(c)
	defer cancel()
	resp, gerr := ki.Get(ctx, "/", nil)
	if gerr != nil {
		return err
	}
	return client.Error{Code: client.ErrorCodeRootROnly, Message: "Root is read only", Cause: "/", Index: resp.Index}
}

// requireKey returns the first argument or ends the command.
func (t *tool) requireKey(c *cli.Context) string {
	if len(c.Args()) == 0 {
		t.handleError(c, exitBadArgs, errors.New("key required"))
	}
	return c.Args()[0]
}

func (t *tool) getCommand() cli.Command {
	return cli.Command{
		Name:      "get",
		Usage:     "retrieve the value of a key",
		ArgsUsage: "<key>",
		Description: `Get prints the value of a key; a directory is an error (see ls).

   Example:
   $ etcdv2ctl get /config/db`,
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "sort", Usage: "returns result in sorted order"},
			cli.BoolFlag{Name: "quorum, q", Usage: "require quorum for get request"},
		},
		Action: func(c *cli.Context) error {
			ki := t.keysAPI(c)
			key := t.requireKey(c)
			ctx, cancel := t.totalTimeout(c)
			resp, err := ki.Get(ctx, key, &client.GetOptions{Sort: c.Bool("sort"), Quorum: c.Bool("quorum")})
			cancel()
			if err != nil {
				t.handleError(c, exitServerError, rootReadOnly(ki, c, t, err))
			}
			if resp.Node.Dir {
				t.errorln(fmt.Sprintf("%s: is a directory", resp.Node.Key))
				t.exit(exitError)
			}
			t.printResponseKey(resp, c.GlobalString("output"))
			return nil
		},
	}
}

func (t *tool) lsCommand() cli.Command {
	return cli.Command{
		Name:      "ls",
		Usage:     "retrieve a directory",
		ArgsUsage: "[key]",
		Description: `Ls lists the keys of a directory (the root by default).

   Example:
   $ etcdv2ctl ls --recursive -p /config`,
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "sort", Usage: "returns result in sorted order"},
			cli.BoolFlag{Name: "recursive, r", Usage: "returns all key names recursively for the given path"},
			cli.BoolFlag{Name: "p", Usage: "append slash (/) to directories"},
			cli.BoolFlag{Name: "quorum, q", Usage: "require quorum for get request"},
		},
		Action: func(c *cli.Context) error {
			ki := t.keysAPI(c)
			key := "/"
			if len(c.Args()) != 0 {
				key = c.Args()[0]
			}
			ctx, cancel := t.totalTimeout(c)
			resp, err := ki.Get(ctx, key, &client.GetOptions{Sort: c.Bool("sort"), Recursive: c.Bool("recursive"), Quorum: c.Bool("quorum")})
			cancel()
			if err != nil {
				t.handleError(c, exitServerError, rootReadOnly(ki, c, t, err))
			}
			if c.GlobalString("output") == "simple" {
				if !resp.Node.Dir {
					t.println(resp.Node.Key)
				}
				for _, n := range resp.Node.Nodes {
					t.printTree(n, c.Bool("p"))
				}
			} else {
				t.printResponseKey(resp, c.GlobalString("output"))
			}
			return nil
		},
	}
}

// printTree prints n's key and those of its descendants, one a line.
func (t *tool) printTree(n *client.Node, slash bool) {
	if n.Dir && slash {
		t.println(n.Key + "/")
	} else {
		t.println(n.Key)
	}
	for _, c := range n.Nodes {
		t.printTree(c, slash)
	}
}

func (t *tool) mkCommand() cli.Command {
	return cli.Command{
		Name:      "mk",
		Usage:     "make a new key with a given value",
		ArgsUsage: "<key> <value>",
		Description: `Mk creates a key that must not exist yet (error 105 if it does); with
   --in-order, a new key with a unique increasing name under directory <key>.
   The value is read from standard input when not given.

   Example:
   $ etcdv2ctl mk --ttl 30 /locks/job worker-1`,
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "in-order", Usage: "create in-order key under directory <key>"},
			ttlFlag,
		},
		Action: func(c *cli.Context) error {
			ki := t.keysAPI(c)
			key := t.requireKey(c)
			value, err := t.argOrStdin(c.Args(), 1)
			if err != nil {
				t.handleError(c, exitBadArgs, errors.New("value required"))
			}
			ttl := time.Duration(c.Int("ttl")) * time.Second
			ctx, cancel := t.totalTimeout(c)
			var resp *client.Response
			if c.Bool("in-order") {
				resp, err = ki.CreateInOrder(ctx, key, value, &client.CreateInOrderOptions{TTL: ttl})
			} else {
				t.oneShot = true
				resp, err = ki.Set(ctx, key, value, &client.SetOptions{TTL: ttl, PrevExist: client.PrevNoExist})
			}
			cancel()
			if err != nil {
				t.handleError(c, exitServerError, rootReadOnly(ki, c, t, err))
			}
			t.printResponseKey(resp, c.GlobalString("output"))
			return nil
		},
	}
}

func (t *tool) mkdirCommand() cli.Command {
	return cli.Command{
		Name:      "mkdir",
		Usage:     "make a new directory",
		ArgsUsage: "<key>",
		Description: `Mkdir creates a directory that must not exist yet.

   Example:
   $ etcdv2ctl mkdir --ttl 60 /sessions/s1`,
		Flags: []cli.Flag{ttlFlag},
		Action: func(c *cli.Context) error {
			t.mkdir(c, client.PrevNoExist)
			return nil
		},
	}
}

func (t *tool) setdirCommand() cli.Command {
	return cli.Command{
		Name:      "setdir",
		Usage:     "create a new directory or update an existing directory TTL",
		ArgsUsage: "<key>",
		Description: `Setdir creates a directory, or sets the TTL of an existing one.

   Example:
   $ etcdv2ctl setdir --ttl 60 /sessions/s1`,
		Flags: []cli.Flag{ttlFlag},
		Action: func(c *cli.Context) error {
			t.mkdir(c, client.PrevIgnore)
			return nil
		},
	}
}

func (t *tool) mkdir(c *cli.Context, prevExist client.PrevExistType) {
	ki := t.keysAPI(c)
	key := t.requireKey(c)
	ctx, cancel := t.totalTimeout(c)
	t.oneShot = prevExist == client.PrevNoExist
	resp, err := ki.Set(ctx, key, "", &client.SetOptions{TTL: time.Duration(c.Int("ttl")) * time.Second, Dir: true, PrevExist: prevExist})
	cancel()
	if err != nil {
		t.handleError(c, exitServerError, rootReadOnly(ki, c, t, err))
	}
	if c.GlobalString("output") != "simple" {
		t.printResponseKey(resp, c.GlobalString("output"))
	}
}

func (t *tool) rmCommand() cli.Command {
	return cli.Command{
		Name:      "rm",
		Usage:     "remove a key or a directory",
		ArgsUsage: "<key>",
		Description: `Rm removes a key, or with --dir an empty directory, or with --recursive
   a directory and everything under it; --with-value and --with-index make
   it a compare-and-delete.

   Example:
   $ etcdv2ctl rm --with-value worker-1 /locks/job`,
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "dir", Usage: "removes the key if it is an empty directory or a key-value pair"},
			cli.BoolFlag{Name: "recursive, r", Usage: "removes the key and all child keys(if it is a directory)"},
			cli.StringFlag{Name: "with-value", Value: "", Usage: "previous value"},
			cli.IntFlag{Name: "with-index", Value: 0, Usage: "previous index"},
		},
		Action: func(c *cli.Context) error {
			ki := t.keysAPI(c)
			key := t.requireKey(c)
			ctx, cancel := t.totalTimeout(c)
			resp, err := ki.Delete(ctx, key, &client.DeleteOptions{
				PrevIndex: uint64(c.Int("with-index")),
				PrevValue: c.String("with-value"),
				Dir:       c.Bool("dir"),
				Recursive: c.Bool("recursive"),
			})
			cancel()
			if err != nil {
				t.handleError(c, exitServerError, rootReadOnly(ki, c, t, err))
			}
			if !resp.Node.Dir || c.GlobalString("output") != "simple" {
				t.printResponseKey(resp, c.GlobalString("output"))
			}
			return nil
		},
	}
}

func (t *tool) rmdirCommand() cli.Command {
	return cli.Command{
		Name:      "rmdir",
		Usage:     "removes the key if it is an empty directory or a key-value pair",
		ArgsUsage: "<key>",
		Description: `Rmdir removes an empty directory.

   Example:
   $ etcdv2ctl rmdir /sessions/s1`,
		Action: func(c *cli.Context) error {
			ki := t.keysAPI(c)
			key := t.requireKey(c)
			ctx, cancel := t.totalTimeout(c)
			resp, err := ki.Delete(ctx, key, &client.DeleteOptions{Dir: true})
			cancel()
			if err != nil {
				t.handleError(c, exitServerError, rootReadOnly(ki, c, t, err))
			}
			if !resp.Node.Dir || c.GlobalString("output") != "simple" {
				t.printResponseKey(resp, c.GlobalString("output"))
			}
			return nil
		},
	}
}

func (t *tool) setCommand() cli.Command {
	return cli.Command{
		Name:      "set",
		Usage:     "set the value of a key",
		ArgsUsage: "<key> <value>",
		Description: `Set sets the value of a key.

   When <value> begins with '-', <value> is interpreted as a flag.
   Insert '--' for workaround:

   $ set -- <key> <value>

   Example:
   $ etcdv2ctl set --ttl 60 /config/db postgres://db1`,
		Flags: []cli.Flag{
			ttlFlag,
			cli.StringFlag{Name: "swap-with-value", Value: "", Usage: "previous value"},
			cli.IntFlag{Name: "swap-with-index", Value: 0, Usage: "previous index"},
		},
		Action: func(c *cli.Context) error {
			ki := t.keysAPI(c)
			key := t.requireKey(c)
			value, err := t.argOrStdin(c.Args(), 1)
			if err != nil {
				t.handleError(c, exitBadArgs, errors.New("value required"))
			}
			ctx, cancel := t.totalTimeout(c)
			resp, err := ki.Set(ctx, key, value, &client.SetOptions{
				TTL:       time.Duration(c.Int("ttl")) * time.Second,
				PrevIndex: uint64(c.Int("swap-with-index")),
				PrevValue: c.String("swap-with-value"),
			})
			cancel()
			if err != nil {
				t.handleError(c, exitServerError, rootReadOnly(ki, c, t, err))
			}
			t.printResponseKey(resp, c.GlobalString("output"))
			return nil
		},
	}
}

func (t *tool) updateCommand() cli.Command {
	return cli.Command{
		Name:      "update",
		Usage:     "update an existing key with a given value",
		ArgsUsage: "<key> <value>",
		Description: `Update sets the value of a key that must exist.

   Example:
   $ etcdv2ctl update /config/db postgres://db2`,
		Flags: []cli.Flag{ttlFlag},
		Action: func(c *cli.Context) error {
			ki := t.keysAPI(c)
			key := t.requireKey(c)
			value, err := t.argOrStdin(c.Args(), 1)
			if err != nil {
				t.handleError(c, exitBadArgs, errors.New("value required"))
			}
			ctx, cancel := t.totalTimeout(c)
			resp, err := ki.Set(ctx, key, value, &client.SetOptions{TTL: time.Duration(c.Int("ttl")) * time.Second, PrevExist: client.PrevExist})
			cancel()
			if err != nil {
				t.handleError(c, exitServerError, rootReadOnly(ki, c, t, err))
			}
			t.printResponseKey(resp, c.GlobalString("output"))
			return nil
		},
	}
}

func (t *tool) updatedirCommand() cli.Command {
	return cli.Command{
		Name:      "updatedir",
		Usage:     "update an existing directory",
		ArgsUsage: "<key> <value>",
		Description: `Updatedir sets the TTL of an existing directory.

   Example:
   $ etcdv2ctl updatedir --ttl 60 /sessions/s1`,
		Flags: []cli.Flag{ttlFlag},
		Action: func(c *cli.Context) error {
			ki := t.keysAPI(c)
			key := t.requireKey(c)
			ctx, cancel := t.totalTimeout(c)
			resp, err := ki.Set(ctx, key, "", &client.SetOptions{TTL: time.Duration(c.Int("ttl")) * time.Second, Dir: true, PrevExist: client.PrevExist})
			cancel()
			if err != nil {
				t.handleError(c, exitServerError, rootReadOnly(ki, c, t, err))
			}
			if c.GlobalString("output") != "simple" {
				t.printResponseKey(resp, c.GlobalString("output"))
			}
			return nil
		},
	}
}
