package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"

	"github.com/etcdv2/client"
	"github.com/urfave/cli"
)

// exitOnInterrupt ends the process with status 0 on SIGINT, as etcdctl
// v2's watches did, after writing what mu guards.
func (t *tool) exitOnInterrupt(mu *sync.Mutex) {
	sigch := make(chan os.Signal, 1)
	signal.Notify(sigch, os.Interrupt)
	go func() {
		<-sigch
		mu.Lock()
		t.stdout.Flush()
		os.Exit(exitSuccess)
	}()
}

func (t *tool) watchCommand() cli.Command {
	return cli.Command{
		Name:      "watch",
		Usage:     "watch a key for changes",
		ArgsUsage: "<key>",
		Description: `Watch waits for the next change of a key (or, with --recursive, of any
   key under it) and prints it; with --forever it prints every change until
   interrupted. The watch resumes on another member when the one it polls
   fails, without losing or repeating an event.

   Example:
   $ etcdv2ctl watch --forever --recursive /config`,
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "forever, f", Usage: "forever watch a key until CTRL+C"},
			cli.IntFlag{Name: "after-index", Value: 0, Usage: "watch after the given index"},
			cli.BoolFlag{Name: "recursive, r", Usage: "returns all values for key and child keys"},
		},
		Action: func(c *cli.Context) error {
			ki := t.keysAPI(c)
			key := t.requireKey(c)
			recursive := c.Bool("recursive")
			forever := c.Bool("forever")
			w := ki.Watcher(key, &client.WatcherOptions{AfterIndex: uint64(c.Int("after-index")), Recursive: recursive})
			var mu sync.Mutex
			t.exitOnInterrupt(&mu)
			for {
				resp, err := w.Next(context.Background())
				if err != nil {
					mu.Lock()
					t.handleError(c, exitServerError, err)
				}
				if resp.Node.Dir {
					continue
				}
				mu.Lock()
				if recursive {
					t.printf("[%s] %s\n", resp.Action, resp.Node.Key)
				}
				t.printResponseKey(resp, c.GlobalString("output"))
				t.stdout.Flush()
				mu.Unlock()
				if !forever {
					return nil
				}
			}
		},
	}
}

func (t *tool) execWatchCommand() cli.Command {
	return cli.Command{
		Name:      "exec-watch",
		Usage:     "watch a key for changes and exec an executable",
		ArgsUsage: "<key> <command> [args...]",
		Description: `Exec-watch runs a command for every change of a key (or of any key
   under it, with --recursive), with ETCD_WATCH_ACTION, ETCD_WATCH_KEY,
   ETCD_WATCH_VALUE and ETCD_WATCH_MODIFIED_INDEX in its environment.

   Example:
   $ etcdv2ctl exec-watch --recursive /config -- sh -c 'echo $ETCD_WATCH_KEY changed'`,
		Flags: []cli.Flag{
			cli.IntFlag{Name: "after-index", Value: 0, Usage: "watch after the given index"},
			cli.BoolFlag{Name: "recursive, r", Usage: "watch all values for key and child keys"},
		},
		Action: func(c *cli.Context) error {
			ki := t.keysAPI(c)
			args := c.Args()
			if len(args) < 2 {
				t.handleError(c, exitBadArgs, errors.New("key and command to exec required"))
			}
			var key string
			var cmdArgs []string
			foundSep := false
			for i := range args {
				if args[i] == "--" && i != 0 {
					foundSep = true
					break
				}
			}
			if foundSep {
				key, cmdArgs = args[0], args[2:]
			} else {
				// Without a flag the parser leaves the arguments in the
				// order it moved them to: the key comes last.
				key, cmdArgs = args[len(args)-1], args[:len(args)-1]
			}
			var mu sync.Mutex
			t.exitOnInterrupt(&mu)
			w := ki.Watcher(key, &client.WatcherOptions{AfterIndex: c.Uint64("after-index"), Recursive: c.Bool("recursive")})
			for {
				resp, err := w.Next(context.Background())
				if err != nil {
					mu.Lock()
					t.handleError(c, exitServerError, err)
				}
				if resp.Node.Dir {
					t.errorf("Ignored dir %s change\n", resp.Node.Key)
					continue
				}
				if len(cmdArgs) == 0 {
					// etcdctl v2 crashed here; say what is missing instead.
					t.handleError(c, exitBadArgs, errors.New("key and command to exec required"))
				}
				cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
				cmd.Env = append(os.Environ(),
					"ETCD_WATCH_ACTION="+resp.Action,
					fmt.Sprintf("ETCD_WATCH_MODIFIED_INDEX=%d", resp.Node.ModifiedIndex),
					"ETCD_WATCH_KEY="+resp.Node.Key,
					"ETCD_WATCH_VALUE="+resp.Node.Value)
				cmd.Stdout = os.Stdout
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					mu.Lock()
					t.errorf("%s", err.Error())
					t.exit(exitError)
				}
				go cmd.Wait() //nolint:errcheck // the command's status is not reported, as in etcdctl v2
			}
		},
	}
}
