package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client/integration/testbed"
)

// step is one command line of a comparison script.
type step struct {
	// args follow the binary's name (see target.expand for the
	// placeholders).
	args []string
	// env is added to the environment ("K=V", with {EP} replaced).
	env []string
	// stdin is the command's standard input (none when empty).
	stdin string
	// usage marks a usage error: both tools print their own help after
	// the first line (different names and command lists), so only the
	// first line of standard output is compared.
	usage bool
	// lines, when positive, runs the command until its standard output
	// has that many lines, then interrupts it (SIGINT), as a user ends a
	// watch; a watch ends with status 0 then.
	lines int
	// unordered compares the lines of standard output as a set, for
	// commands whose output order is not defined (exec-watch runs its
	// commands concurrently).
	unordered bool
	// noCurl drops the "cURL Command:" lines of --debug from standard
	// error: etcdv2ctl prints the requests the library sends, which
	// differ in their query strings, and shell-quotes the URL and body.
	noCurl bool
	// do, when set, is run on the cluster instead of a command (a fault,
	// for example).
	do func(t *testing.T, members []*testbed.Member)
	// capture, when set, saves the first submatch of this expression in
	// standard output as {NEW} for the following steps.
	capture *regexp.Regexp
}

// result is what a command printed and its exit status.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// target is one tool run against one cluster.
type target struct {
	bin  string
	env  []string
	cl   *testbed.Cluster
	vars map[string]string
	// members is the cluster's members, the leader first (see order).
	members *[]*testbed.Member
}

// order numbers the members for placeholders and normalisation: the
// leader first, then the others in the order they were started, so that
// member i has the same role in both clusters.
func (tg target) order(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	leader, err := tg.cl.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list := []*testbed.Member{leader}
	for _, m := range tg.cl.Members() {
		if m != leader {
			list = append(list, m)
		}
	}
	*tg.members = list
}

// endpoints is the cluster's client URLs, comma-separated.
func (tg target) endpoints() string { return strings.Join(tg.cl.ClientURLs(), ",") }

// expand replaces {EP} with the cluster's client URLs, {IDi} with the ID
// of member i and {PEERi} with its peer URL.
func (tg target) expand(s string) string {
	s = strings.ReplaceAll(s, "{EP}", tg.endpoints())
	for k, v := range tg.vars {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	for i, m := range *tg.members {
		s = strings.ReplaceAll(s, fmt.Sprintf("{ID%d}", i), m.ID())
		s = strings.ReplaceAll(s, fmt.Sprintf("{PEER%d}", i), m.PeerURL())
	}
	return s
}

// run runs one step of a script.
func (tg target) run(t *testing.T, s step) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := make([]string, len(s.args))
	for i, a := range s.args {
		args[i] = tg.expand(a)
	}
	cmd := exec.CommandContext(ctx, tg.bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, tg.env...)
	for _, e := range s.env {
		cmd.Env = append(cmd.Env, tg.expand(e))
	}
	if s.stdin != "" {
		cmd.Stdin = strings.NewReader(s.stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stderr = &stderr
	var err error
	if s.lines > 0 {
		pipe, perr := cmd.StdoutPipe()
		if perr != nil {
			t.Fatal(perr)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got := make(chan string)
		go func() {
			defer close(got)
			r := bufio.NewReader(pipe)
			for {
				line, err := r.ReadString('\n')
				if line != "" {
					got <- line
				}
				if err != nil {
					return
				}
			}
		}()
		timeout := time.After(30 * time.Second)
		for n := 0; n < s.lines; {
			select {
			case line, ok := <-got:
				if !ok {
					n = s.lines
					break
				}
				stdout.WriteString(line)
				n++
			case <-timeout:
				t.Errorf("%v: %d lines after 30 s, want %d; got:\n%s%s", args, n, s.lines, stdout.String(), stderr.String())
				n = s.lines
			}
		}
		_ = cmd.Process.Signal(os.Interrupt)
		for line := range got {
			stdout.WriteString(line)
		}
		err = cmd.Wait()
	} else {
		cmd.Stdout = &stdout
		err = cmd.Run()
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s %v: %v", tg.bin, args, err)
		}
		code = ee.ExitCode()
	}
	out := stdout.String()
	if s.usage {
		out, _, _ = strings.Cut(out, "\n")
	}

	if s.capture != nil {
		if m := s.capture.FindStringSubmatch(out); len(m) > 1 {
			tg.vars["NEW"] = m[1]
		}
	}
	errOut := stderr.String()
	if s.noCurl {
		errOut = curlRE.ReplaceAllString(errOut, "")
	}
	out = tg.normalize(out)
	if s.unordered {
		lines := strings.SplitAfter(out, "\n")
		sort.Strings(lines)
		out = strings.Join(lines, "")
	}
	return result{stdout: out, stderr: tg.normalize(errOut), code: code}
}

var (
	expirationRE     = regexp.MustCompile(`"expiration":"[^"]*"`)
	sttyRE           = regexp.MustCompile(`(?m)^stty: .*\n`)
	initialClusterRE = regexp.MustCompile(`ETCD_INITIAL_CLUSTER="([^"]*)"`)
	curlRE           = regexp.MustCompile(`(?m)^cURL Command: .*\n`)
)

// normalize replaces what differs between two fresh clusters: member IDs
// and names, the loopback ports of their URLs (numbered by target.order),
// and the expiration times of keys. It
// also drops the complaints of stty(1), which etcdctl runs to turn off
// echo for a password prompt even when standard input is not a terminal.
func (tg target) normalize(s string) string {
	s = sttyRE.ReplaceAllString(s, "")
	for i, m := range *tg.members {
		s = strings.ReplaceAll(s, m.Name()+"="+m.PeerURL(), fmt.Sprintf("NAME%d=http://PEER%d", i, i))
		scheme, hostport, _ := strings.Cut(m.URL(), "://")
		s = strings.ReplaceAll(s, m.URL(), fmt.Sprintf("%s://CLIENT%d", scheme, i))
		s = strings.ReplaceAll(s, m.PeerURL(), fmt.Sprintf("http://PEER%d", i))
		s = strings.ReplaceAll(s, hostport, fmt.Sprintf("CLIENT%d", i))
		if id := m.ID(); id != "" {
			s = strings.ReplaceAll(s, id, fmt.Sprintf("MEMBER%d", i))
		}
		s = strings.ReplaceAll(s, "name="+m.Name()+" ", fmt.Sprintf("name=NAME%d ", i))
	}
	if id := tg.vars["NEW"]; id != "" {
		s = strings.ReplaceAll(s, id, "NEWMEMBER")
	}
	// The initial cluster of "member add" lists the members in ID order.
	s = initialClusterRE.ReplaceAllStringFunc(s, func(m string) string {
		list := strings.Split(initialClusterRE.FindStringSubmatch(m)[1], ",")
		sort.Strings(list)
		return `ETCD_INITIAL_CLUSTER="` + strings.Join(list, ",") + `"`
	})
	return expirationRE.ReplaceAllString(s, `"expiration":"EXPIRATION"`)
}

// compare runs the script step by step through etcdctl (ETCDCTL_API=2) on
// one fresh cluster and etcdv2ctl on another, and fails on the first
// difference in standard output, standard error or exit status.
func compare(t *testing.T, ref, ours target, script []step) {
	t.Helper()
	ref.order(t)
	ours.order(t)
	for i, s := range script {
		if s.do != nil {
			s.do(t, *ref.members)
			s.do(t, *ours.members)
			continue
		}
		want := ref.run(t, s)
		got := ours.run(t, s)
		if want != got {
			t.Fatalf("step %d %q (stdin %q): etcdv2ctl differs from etcdctl\n=== etcdctl\n%v=== etcdv2ctl\n%v", i, s.args, s.stdin, want, got)
		}
		if testing.Verbose() {
			t.Logf("step %d %q: %s", i, s.args, strings.ReplaceAll(want.String(), "\n", "⏎"))
		}
	}
}

// newTargets starts two fresh clusters of the given options and returns
// etcdctl on one and etcdv2ctl on the other.
func newTargets(t *testing.T, opts testbed.Options) (ref, ours target) {
	t.Helper()
	ref = target{bin: etcdctlBinary(t), env: []string{"ETCDCTL_API=2"}, cl: testbed.NewCluster(t, opts), vars: map[string]string{}, members: new([]*testbed.Member)}
	ours = target{bin: ctlBinary(t), cl: testbed.NewCluster(t, opts), vars: map[string]string{}, members: new([]*testbed.Member)}
	return ref, ours
}
