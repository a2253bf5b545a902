// Command etcdv2ctl is a command-line client for etcd clusters that serve
// the v2 API (etcd 2.x, and etcd 3.4/3.5 started with --enable-v2).
//
// It is a drop-in for "ETCDCTL_API=2 etcdctl" of etcd 3.5: the same
// commands, flags (global flags before the command), ETCDCTL_* environment
// variables, output in each format (simple, extended, json), error messages
// and exit codes, so scripts written for etcdctl v2 run unchanged. On top of
// that it offers a choice of endpoint selection policy (--selector), a stats
// command, watch --forever that survives member failures, export and import
// of whole trees as JSON lines, migrate (a live copy of the v2 tree into
// the v3 keyspace in the layout of the v3adapter package), locks,
// semaphores and elections that run a command while held (lock, semaphore,
// elect), service registration (register, instances), and shell
// completion.
//
// Run "etcdv2ctl help" for the commands and "etcdv2ctl help COMMAND" for a
// command's flags and an example.
//
// # Where it differs from etcdctl v2
//
// The command line is parsed by the same library at the same version as
// etcdctl v2 parsed it (github.com/urfave/cli v1.22.4; later v1.22 releases
// changed how arguments after "--" are reordered), so flags, their
// positions and usage errors behave alike. The differences:
//
//   - help and --version name etcdv2ctl and list its extra commands and
//     flags; "backup" (which reads a member's data directory, not the API)
//     is not provided;
//   - --debug prints the requests this client sends (their URLs carry only
//     the query parameters that are set), shell-quoted, with passwords
//     redacted;
//   - a request is tried on up to three passes over the endpoints (etcdctl
//     v2 made one) and a write whose outcome is unknown is not sent to a
//     second member; error messages list each endpoint's first error, in
//     etcdctl v2's words, and a request that --total-timeout cuts off
//     after a failed first pass reports that pass's errors, as etcdctl v2
//     did (the membership sync makes one pass, as etcdctl v2's);
//   - an endpoint that is not an http or https URL is rejected before any
//     request is sent (exit status 1), where etcdctl v2 kept it, failed
//     there and went on to the other endpoints; an empty entry of the list
//     (a trailing comma) is left out, where etcdctl v2 kept it as "http:",
//     and spaces around an entry are ignored;
//   - --password and ETCDCTL_PASSWORD give the password of --username
//     without a prompt; --selector and ETCDCTL_SELECTOR choose the endpoint
//     policy.
//
// Exit statuses are etcdctl v2's: 0 success, 1 error, 2 cluster
// unreachable, 4 error answered by the server, 5 cluster not healthy, 128
// bad arguments; lock, semaphore, elect and register exit with 6 when what
// they held is lost.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli"
)

// version is the tool's version, printed by --version.
const version = "0.1.0"

// Exit codes, as etcdctl v2 used them.
const (
	exitSuccess           = 0
	exitError             = 1
	exitBadConnection     = 2
	exitServerError       = 4
	exitClusterNotHealthy = 5
	exitBadArgs           = 128
)

// exitCode is panicked with by tool.exit and recovered in run, so that
// deferred cleanups run and buffered output is written before the process
// ends.
type exitCode int

// tool holds the process's streams; every command is a method on it.
type tool struct {
	stdout *bufio.Writer
	stderr io.Writer
	stdin  *os.File
	getenv func(string) string
	// oneShot is set while a create is sent: its errors print as the
	// original client's single-endpoint errors (see compatOneShot).
	oneShot bool
	// passes records the first pass of calls cut off by their deadline
	// (see tool.compat).
	passes firstPass
}

func main() {
	t := &tool{
		stdout: bufio.NewWriterSize(os.Stdout, 64<<10),
		stderr: os.Stderr,
		stdin:  os.Stdin,
		getenv: os.Getenv,
	}
	os.Exit(t.run(os.Args))
}

// run runs the command line args and returns the exit code.
func (t *tool) run(args []string) (code int) {
	defer func() {
		t.stdout.Flush()
		if r := recover(); r != nil {
			c, ok := r.(exitCode)
			if !ok {
				panic(r)
			}
			code = int(c)
		}
	}()
	app := t.newApp()
	if err := app.Run(args); err != nil {
		t.stdout.Flush()
		fmt.Fprintln(t.stderr, err)
		return exitError
	}
	return exitSuccess
}

// exit ends the command with the given exit code (see run).
func (t *tool) exit(code int) {
	panic(exitCode(code))
}

// newApp builds the command tree.
func (t *tool) newApp() *cli.App {
	app := cli.NewApp()
	app.Name = "etcdv2ctl"
	app.Version = version
	app.Usage = "A simple command line client for etcd (v2 API)."
	app.Writer = t.stdout
	app.ErrWriter = t.stderr
	app.EnableBashCompletion = true
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintf(c.App.Writer, "etcdv2ctl version: %v\n", c.App.Version)
		fmt.Fprintln(c.App.Writer, "API version: 2")
	}
	app.Flags = []cli.Flag{
		cli.BoolFlag{Name: "debug", Usage: "output cURL commands which can be used to reproduce the request"},
		cli.BoolFlag{Name: "no-sync", Usage: "don't synchronize cluster information before sending request"},
		cli.StringFlag{Name: "output, o", Value: "simple", Usage: "output response in the given format (`simple`, `extended` or `json`)"},
		cli.StringFlag{Name: "discovery-srv, D", Usage: "domain name to query for SRV records describing cluster endpoints"},
		cli.BoolFlag{Name: "insecure-discovery", Usage: "accept insecure SRV records describing cluster endpoints"},
		cli.StringFlag{Name: "peers, C", Value: "", Usage: "DEPRECATED - \"--endpoints\" should be used instead"},
		cli.StringFlag{Name: "endpoint", Value: "", Usage: "DEPRECATED - \"--endpoints\" should be used instead"},
		cli.StringFlag{Name: "endpoints", Value: "", Usage: "a comma-delimited list of machine addresses in the cluster (default: \"http://127.0.0.1:2379,http://127.0.0.1:4001\")"},
		cli.StringFlag{Name: "cert-file", Value: "", Usage: "identify HTTPS client using this SSL certificate file"},
		cli.StringFlag{Name: "key-file", Value: "", Usage: "identify HTTPS client using this SSL key file"},
		cli.StringFlag{Name: "ca-file", Value: "", Usage: "verify certificates of HTTPS-enabled servers using this CA bundle"},
		cli.StringFlag{Name: "username, u", Value: "", Usage: "provide username[:password] and prompt if password is not supplied."},
		cli.StringFlag{Name: "password", Value: "", Usage: "password of --username (instead of user:password or the prompt; also ETCDCTL_PASSWORD)"},
		cli.DurationFlag{Name: "timeout", Value: 2 * time.Second, Usage: "connection timeout per request"},
		cli.DurationFlag{Name: "total-timeout", Value: 5 * time.Second, Usage: "timeout for the command execution (except watch)"},
		cli.StringFlag{Name: "selector", Value: "", Usage: "endpoint selection policy: sticky (default), random, round-robin, prefer-leader, least-latency or least-inflight (also ETCDCTL_SELECTOR)"},
	}
	app.Commands = []cli.Command{
		t.clusterHealthCommand(),
		t.mkCommand(),
		t.mkdirCommand(),
		t.rmCommand(),
		t.rmdirCommand(),
		t.getCommand(),
		t.lsCommand(),
		t.setCommand(),
		t.setdirCommand(),
		t.updateCommand(),
		t.updatedirCommand(),
		t.watchCommand(),
		t.execWatchCommand(),
		t.memberCommand(),
		t.userCommand(),
		t.roleCommand(),
		t.authCommand(),
		t.statsCommand(),
		t.exportCommand(),
		t.importCommand(),
		t.migrateCommand(),
		t.completionCommand(),
		t.lockCommand(),
		t.semaphoreCommand(),
		t.electCommand(),
		t.registerCommand(),
		t.instancesCommand(),
	}
	return app
}

// printf writes to standard output.
func (t *tool) printf(format string, a ...any) {
	fmt.Fprintf(t.stdout, format, a...)
}

// println writes to standard output.
func (t *tool) println(a ...any) {
	fmt.Fprintln(t.stdout, a...)
}

// errorf writes to standard error, after what was written to standard
// output so far.
func (t *tool) errorf(format string, a ...any) {
	t.stdout.Flush()
	fmt.Fprintf(t.stderr, format, a...)
}

// errorln writes to standard error, after what was written to standard
// output so far.
func (t *tool) errorln(a ...any) {
	t.stdout.Flush()
	fmt.Fprintln(t.stderr, a...)
}
