package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/stretchr/testify/require"
)

// proc is an etcdv2ctl process started in the background.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	stderr *syncBuffer
	exited chan struct{}
	code   int
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs etcdv2ctl with args in the background; the process is killed
// at the end of the test if still running.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(ctlBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	p := &proc{t: t, cmd: cmd, lines: make(chan string, 100), stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// line waits for the next line of standard output.
func (p *proc) line() string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		require.True(p.t, ok, "output ended; stderr: %s", p.stderr.String())
		return l
	case <-time.After(30 * time.Second):
		p.t.Fatalf("no line after 30 s; stderr: %s", p.stderr.String())
	}
	return ""
}

// wait waits for the process to exit and returns its status.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(30 * time.Second):
		p.t.Fatalf("still running after 30 s; stderr: %s", p.stderr.String())
	}
	return -1
}

// signal sends SIGINT.
func (p *proc) interrupt() { require.NoError(p.t, p.cmd.Process.Signal(os.Interrupt)) }

// TestLockCommand runs lock holders as separate processes: they never hold
// the lock together (a local directory each creates while holding it),
// their fencing tokens increase, a command's exit status is passed on, a
// lost lock terminates the command, and an interrupted holder releases.
func TestLockCommand(t *testing.T) {
	c := testbed.NewCluster(t, testbed.Options{Size: 3})
	ep := "--endpoints=" + strings.Join(c.ClientURLs(), ",")
	dir := t.TempDir()
	held := filepath.Join(dir, "held")
	tokens := filepath.Join(dir, "tokens")
	script := `mkdir "$HELD" || exit 9; echo "$ETCDV2CTL_TOKEN" >> "$TOKENS"; rmdir "$HELD"`
	var ps []*proc
	for i := 0; i < 4; i++ {
		for j := 0; j < 3; j++ {
			ps = append(ps, start(t, []string{"HELD=" + held, "TOKENS=" + tokens}, ep, "lock", "/locks/x", "--", "sh", "-c", script))
		}
	}
	for _, p := range ps {
		require.Equal(t, 0, p.wait(), p.stderr.String())
	}
	b, err := os.ReadFile(tokens)
	require.NoError(t, err)
	var last uint64
	fields := strings.Fields(string(b))
	require.Len(t, fields, len(ps))
	for _, f := range fields {
		tok, err := strconv.ParseUint(f, 10, 64)
		require.NoError(t, err)
		require.Greater(t, tok, last, "tokens %v", fields)
		last = tok
	}

	p := start(t, nil, ep, "lock", "/locks/y", "--", "sh", "-c", "exit 7")
	require.Equal(t, 7, p.wait())

	// Lost: the lock's node is deleted behind the holder's back.
	p = start(t, nil, ep, "--no-sync", "lock", "--ttl", "3", "/locks/z", "--", "sh", "-c",
		`trap 'echo terminated; exit 3' TERM; echo held; while :; do sleep 0.1; done`)
	require.Equal(t, "held", p.line())
	cl, err := client.New(client.Config{Endpoints: c.ClientURLs()})
	require.NoError(t, err)
	defer cl.Close()
	kapi := client.NewKeysAPI(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = kapi.Delete(ctx, "/locks/z", &client.DeleteOptions{Recursive: true})
	require.NoError(t, err)
	require.Equal(t, "terminated", p.line())
	require.Equal(t, exitLost, p.wait())
	require.Contains(t, p.stderr.String(), "lock lost")

	// Without a command: prints the node, holds it until interrupted.
	p = start(t, nil, ep, "lock", "/locks/w")
	key := p.line()
	require.True(t, strings.HasPrefix(key, "/locks/w/"), key)
	// A quorum read: the lock was taken by another process's client, and
	// a plain read may reach a member that has not applied it yet.
	_, err = kapi.Get(ctx, key, &client.GetOptions{Quorum: true})
	require.NoError(t, err)
	p.interrupt()
	require.Equal(t, 0, p.wait(), p.stderr.String())
	_, err = kapi.Get(ctx, key, &client.GetOptions{Quorum: true})
	require.True(t, client.IsKeyNotFound(err), "%v", err)
}

// TestElectSemaphoreCommands checks elect (campaign, follow, resign on
// interrupt) and semaphore (limit respected, a waiter gets the permit an
// interrupted holder releases).
func TestElectSemaphoreCommands(t *testing.T) {
	c := testbed.NewCluster(t, testbed.Options{})
	ep := "--endpoints=" + c.ClientURLs()[0]
	cl, err := client.New(client.Config{Endpoints: c.ClientURLs()})
	require.NoError(t, err)
	defer cl.Close()
	kapi := client.NewKeysAPI(cl)

	a := start(t, nil, ep, "elect", "/election/e", "alpha")
	aKey := a.line()
	require.Equal(t, "alpha", a.line())
	listen := start(t, nil, ep, "elect", "--listen", "/election/e")
	require.Equal(t, aKey, listen.line())
	require.Equal(t, "alpha", listen.line())
	b := start(t, nil, ep, "elect", "/election/e", "beta")
	waitNodes(t, kapi, "/election/e", 2)
	a.interrupt()
	require.Equal(t, 0, a.wait(), a.stderr.String())
	bKey := b.line()
	require.Equal(t, "beta", b.line())
	require.Equal(t, bKey, listen.line())
	require.Equal(t, "beta", listen.line())
	// The leader's node deleted behind its back: leadership is lost.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = kapi.Delete(ctx, bKey, nil)
	require.NoError(t, err)
	require.Equal(t, exitLost, b.wait(), b.stderr.String())
	require.Contains(t, b.stderr.String(), "leadership lost")
	listen.interrupt()
	require.Equal(t, 0, listen.wait(), listen.stderr.String())

	s1 := start(t, nil, ep, "semaphore", "/sem/s", "2")
	require.Equal(t, "/sem/s", s1.line())
	s2 := start(t, nil, ep, "-o", "json", "semaphore", "/sem/s", "2")
	require.Contains(t, s2.line(), `"token":`)
	s3 := start(t, nil, ep, "semaphore", "/sem/s", "2")
	waitNodes(t, kapi, "/sem/s", 3)
	select {
	case l := <-s3.lines:
		t.Fatalf("third holder of a 2-permit semaphore printed %q", l)
	default:
	}
	s1.interrupt()
	require.Equal(t, 0, s1.wait())
	require.Equal(t, "/sem/s", s3.line())
	s2.interrupt()
	s3.interrupt()
	require.Equal(t, 0, s2.wait())
	require.Equal(t, 0, s3.wait())
	p := start(t, nil, ep, "semaphore", "/sem/s", "0")
	require.Equal(t, exitBadArgs, p.wait())
}

// waitNodes waits until dir has n file nodes.
func waitNodes(t *testing.T, kapi client.KeysAPI, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := kapi.Get(ctx, dir, &client.GetOptions{Quorum: true, Recursive: true})
		cancel()
		if err == nil && len(resp.Node.Nodes) == n {
			return
		}
		require.True(t, time.Now().Before(deadline), "%s never had %d nodes: %v %v", dir, n, resp, err)
		w := kapi.Watcher(dir, &client.WatcherOptions{Recursive: true})
		wctx, wcancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = w.Next(wctx)
		wcancel()
	}
}

// TestRegisterInstances registers instances through the command, lists
// them, and watches one disappear when its process is killed (-9) and
// another when it is interrupted (deregistered).
func TestRegisterInstances(t *testing.T) {
	c := testbed.NewCluster(t, testbed.Options{})
	ep := "--endpoints=" + c.ClientURLs()[0]
	r1 := start(t, nil, ep, "register", "--ttl", "2", "--tag", "v2", "--meta", "zone=a", "api", "api-1", "10.0.0.1:80")
	require.Equal(t, "/services/api/api-1", r1.line())
	r2 := start(t, nil, ep, "register", "api", "api-2", "10.0.0.2:80")
	require.Equal(t, "/services/api/api-2", r2.line())

	out, errOut, code := ctl(t, "", ep, "instances", "api")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "api-1 10.0.0.1:80 passing tags=v2\napi-2 10.0.0.2:80 passing\n", out)
	out, _, code = ctl(t, "", ep, "instances", "--tag", "v2", "api")
	require.Equal(t, 0, code)
	require.Equal(t, "api-1 10.0.0.1:80 passing tags=v2\n", out)
	out, _, code = ctl(t, "", ep, "-o", "json", "instances", "api")
	require.Equal(t, 0, code)
	require.Contains(t, out, `"meta":{"zone":"a"}`)
	_, errOut, code = ctl(t, "", ep, "register", "api", "api-2", "10.0.0.9:80")
	require.Equal(t, exitServerError, code)
	require.Contains(t, errOut, "already registered")

	w := start(t, nil, ep, "instances", "--watch", "api")
	require.Equal(t, "api-1 10.0.0.1:80 passing tags=v2", w.line())
	require.Equal(t, "api-2 10.0.0.2:80 passing", w.line())
	require.Equal(t, "", w.line())
	killed := time.Now()
	require.NoError(t, r1.cmd.Process.Kill())
	require.Equal(t, "api-2 10.0.0.2:80 passing", w.line())
	require.Equal(t, "", w.line())
	require.Less(t, time.Since(killed), 2*time.Second+time.Second, "gone within TTL + 1 s")
	// Replaced by another registration: the first one is lost.
	r3 := start(t, nil, ep, "register", "--replace", "api", "api-2", "10.0.0.9:80")
	require.Equal(t, "/services/api/api-2", r3.line())
	require.Equal(t, exitLost, r2.wait(), r2.stderr.String())
	require.Contains(t, r2.stderr.String(), "registration lost")
	require.Equal(t, "api-2 10.0.0.9:80 passing", w.line())
	require.Equal(t, "", w.line())
	r3.interrupt()
	require.Equal(t, 0, r3.wait(), r3.stderr.String())
	require.Equal(t, "", w.line(), "empty list after deregistration")
	w.interrupt()
	require.Equal(t, 0, w.wait(), w.stderr.String())
}
