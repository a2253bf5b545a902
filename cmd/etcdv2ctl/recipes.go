package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/etcdv2/client/concurrency"
	"github.com/urfave/cli"
)

// exitLost is the status of lock, semaphore, elect and register when what
// they held was lost (the session or registration expired).
const exitLost = 6

// sessionTTLFlag is the --ttl of the coordination commands.
var sessionTTLFlag = cli.IntFlag{Name: "ttl", Value: int(concurrency.DefaultSessionTTL / time.Second), Usage: "TTL of the session's keys in seconds: a holder that dies or hangs loses what it holds about this long after its last renewal"}

// commandArgs splits "NAME [ARGS...] [-- COMMAND ARGS...]" as the parser
// leaves it: the words before "--" and those after it.
func commandArgs(args []string) (before, after []string) {
	for i, a := range args {
		if a == "--" {
			return args[:i], args[i+1:]
		}
	}
	return args, nil
}

// signals returns a context cancelled on the first SIGINT or SIGTERM, and
// a channel that receives every such signal (to forward to a command).
func signals() (context.Context, context.CancelFunc, chan os.Signal) {
	ch := make(chan os.Signal, 2)
	fwd := make(chan os.Signal, 8)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				cancel()
				select {
				case fwd <- sig:
				default:
				}
			case <-stopped:
				return
			}
		}
	}()
	return ctx, func() { signal.Stop(ch); close(stopped); cancel() }, fwd
}

// newSession opens a session with --ttl.
func (t *tool) newSession(c *cli.Context) *concurrency.Session {
	ki := t.keysAPI(c)
	s, err := concurrency.NewSession(ki, concurrency.WithTTL(time.Duration(c.Int("ttl"))*time.Second))
	if err != nil {
		t.handleError(c, exitServerError, err)
	}
	return s
}

// printHeld prints what was acquired: the key (simple), or the key and the
// fencing token (json, extended).
func (t *tool) printHeld(c *cli.Context, key string, token uint64) {
	switch c.GlobalString("output") {
	case "json":
		b, _ := json.Marshal(struct {
			Key   string `json:"key"`
			Token uint64 `json:"token"`
		}{key, token})
		t.println(string(b))
	case "extended":
		t.println("Key:", key)
		t.println("Token:", token)
	default:
		t.println(key)
	}
	t.stdout.Flush()
}

// hold keeps what was acquired until a signal, the loss of the session, or
// the end of the command (if one is given), then releases it. With a
// command, the command gets ETCDV2CTL_KEY and ETCDV2CTL_TOKEN (the fencing
// token) in its environment; when the session is lost it gets SIGTERM.
func (t *tool) hold(c *cli.Context, s *concurrency.Session, what, key string, token uint64, release func(context.Context) error, command []string, sigs chan os.Signal) {
	releaseAndClose := func() {
		ctx, cancel := t.totalTimeout(c)
		defer cancel()
		if err := release(ctx); err != nil && !errors.Is(err, concurrency.ErrSessionExpired) {
			t.errorln("Error: ", err)
		}
		s.Close()
	}
	if len(command) == 0 {
		t.printHeld(c, key, token)
		select {
		case <-sigs:
			releaseAndClose()
			t.exit(exitSuccess)
		case <-s.Done():
			s.Close()
			t.errorf("Error:  %s lost: session expired (%s)\n", what, key)
			t.exit(exitLost)
		}
	}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = append(os.Environ(), "ETCDV2CTL_KEY="+key, "ETCDV2CTL_TOKEN="+strconv.FormatUint(token, 10))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	t.stdout.Flush()
	if err := cmd.Start(); err != nil {
		releaseAndClose()
		t.fail("Error: ", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		select {
		case sig := <-sigs:
			_ = cmd.Process.Signal(sig)
		case <-s.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			t.errorf("Error:  %s lost: session expired (%s); sent SIGTERM to the command\n", what, key)
			<-exited
			s.Close()
			t.exit(exitLost)
		case err := <-exited:
			releaseAndClose()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.exit(ee.ExitCode())
			}
			if err != nil {
				t.fail("Error: ", err)
			}
			t.exit(exitSuccess)
		}
	}
}

func (t *tool) lockCommand() cli.Command {
	return cli.Command{
		Name:      "lock",
		Usage:     "acquire a lock, then hold it until interrupted or run a command while holding it",
		ArgsUsage: "<key> [-- <command> [args...]]",
		Description: `Lock waits for the lock under <key> (a fair queue: first come, first
   served), prints its node's key and holds it until interrupted (SIGINT or
   SIGTERM), then releases it. With a command, it runs the command while it
   holds the lock, with ETCDV2CTL_KEY and ETCDV2CTL_TOKEN (the fencing token:
   the index of the write that granted the lock, strictly increasing from
   holder to holder) in its environment, releases the lock when the command
   ends and exits with the command's status. If the lock is lost (its session
   could not be renewed within --ttl), the command gets SIGTERM and lock
   exits with status 6.

   Example:
   $ etcdv2ctl lock /locks/backup -- sh -c 'run-backup --fence "$ETCDV2CTL_TOKEN"'`,
		Flags: []cli.Flag{sessionTTLFlag},
		Action: func(c *cli.Context) error {
			args, command := commandArgs(c.Args())
			if len(args) != 1 {
				t.handleError(c, exitBadArgs, errors.New("lock key required"))
			}
			ctx, stop, sigs := signals()
			defer stop()
			s := t.newSession(c)
			m := concurrency.NewMutex(s, args[0])
			if err := m.Lock(ctx); err != nil {
				s.Close()
				if ctx.Err() != nil {
					t.exit(exitSuccess)
				}
				t.handleError(c, exitServerError, err)
			}
			t.hold(c, s, "lock", m.Key(), m.Token(), m.Unlock, command, sigs)
			return nil
		},
	}
}

func (t *tool) semaphoreCommand() cli.Command {
	return cli.Command{
		Name:      "semaphore",
		Usage:     "acquire one of <limit> permits, then hold it until interrupted or run a command while holding it",
		ArgsUsage: "<key> <limit> [-- <command> [args...]]",
		Description: `Semaphore waits for one of the <limit> permits under <key> (every holder
   must use the same limit) and then behaves as lock: it prints <key> (and
   the permit's fencing token with -o json or extended) and holds the permit
   until interrupted, or runs the command
   while holding it (ETCDV2CTL_KEY, ETCDV2CTL_TOKEN), exiting with its
   status, or with 6 if the permit is lost.

   Example:
   $ etcdv2ctl semaphore /sem/encoders 4 -- ffmpeg -i in.mov out.mp4`,
		Flags: []cli.Flag{sessionTTLFlag},
		Action: func(c *cli.Context) error {
			args, command := commandArgs(c.Args())
			if len(args) != 2 {
				t.handleError(c, exitBadArgs, errors.New("semaphore key and limit required"))
			}
			limit, err := strconv.Atoi(args[1])
			if err != nil || limit < 1 {
				t.handleError(c, exitBadArgs, fmt.Errorf("limit must be a positive integer: %q", args[1]))
			}
			ctx, stop, sigs := signals()
			defer stop()
			s := t.newSession(c)
			sem := concurrency.NewSemaphore(s, args[0], limit)
			if err := sem.Acquire(ctx); err != nil {
				s.Close()
				if ctx.Err() != nil {
					t.exit(exitSuccess)
				}
				t.handleError(c, exitServerError, err)
			}
			key := args[0]
			t.hold(c, s, "semaphore permit", key, sem.Token(), sem.Release, command, sigs)
			return nil
		},
	}
}

func (t *tool) electCommand() cli.Command {
	return cli.Command{
		Name:      "elect",
		Usage:     "campaign in an election and lead until interrupted, or follow its leaders",
		ArgsUsage: "<key> [<proposal>]",
		Description: `With a proposal, elect campaigns under <key>, and once it is the leader
   prints the leader's node key and value and leads until interrupted
   (SIGINT or SIGTERM: it resigns) or until its session is lost (exit status
   6). Without a proposal, or with --listen, it prints every leader in turn
   (node key, then value, one line each) until interrupted.

   Example:
   $ etcdv2ctl elect /election/scheduler "$(hostname)"
   $ etcdv2ctl elect --listen /election/scheduler`,
		Flags: []cli.Flag{
			sessionTTLFlag,
			cli.BoolFlag{Name: "listen, l", Usage: "print every leader instead of campaigning"},
		},
		Action: func(c *cli.Context) error {
			args := c.Args()
			if len(args) < 1 || len(args) > 2 {
				t.handleError(c, exitBadArgs, errors.New("election key and optional proposal required"))
			}
			ctx, stop, sigs := signals()
			defer stop()
			s := t.newSession(c)
			e := concurrency.NewElection(s, args[0])
			if c.Bool("listen") || len(args) == 1 {
				for l, err := range e.Observe(ctx) {
					if err != nil {
						s.Close()
						if ctx.Err() != nil {
							t.exit(exitSuccess)
						}
						t.handleError(c, exitServerError, err)
					}
					t.println(l.Key)
					t.println(l.Value)
					t.stdout.Flush()
				}
				s.Close()
				return nil
			}
			if err := e.Campaign(ctx, args[1]); err != nil {
				s.Close()
				if ctx.Err() != nil {
					t.exit(exitSuccess)
				}
				t.handleError(c, exitServerError, err)
			}
			lctx, cancel := t.totalTimeout(c)
			l, err := e.Leader(lctx)
			cancel()
			if err != nil {
				t.handleError(c, exitServerError, err)
			}
			t.println(l.Key)
			t.println(l.Value)
			t.stdout.Flush()
			select {
			case <-sigs:
				rctx, cancel := t.totalTimeout(c)
				if err := e.Resign(rctx); err != nil {
					t.errorln("Error: ", err)
				}
				cancel()
				s.Close()
				t.exit(exitSuccess)
			case <-s.Done():
				s.Close()
				t.errorf("Error:  leadership lost: session expired (%s)\n", l.Key)
				t.exit(exitLost)
			}
			return nil
		},
	}
}
