// Package discovery_test tests the cache, registry and events packages
// against real etcd clusters of the test bed, with instance processes
// that are this test binary run again in a child mode.
package discovery_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/backend"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/registry"
)

// childEnv selects the child mode of the test binary.
const childEnv = "ETCDV2_DISCOVERY_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	testbed.Main(m)
}

// faults reports whether the long fault suites are enabled.
func faults() bool { return os.Getenv("ETCDV2_FAULTS") == "1" }

// newCluster starts a cluster for the backend chosen by ETCDV2_BACKEND
// (etcd 3.5 for the native client, 3.7 for the v3 adapter).
func newCluster(t testing.TB, o testbed.Options) *testbed.Cluster {
	t.Helper()
	return testbed.NewCluster(t, backend.FromEnv(t).Options(o))
}

// newKAPI returns a KeysAPI of the chosen backend on urls.
func newKAPI(t testing.TB, urls []string) client.KeysAPI {
	t.Helper()
	return backend.FromEnv(t).KeysAPI(t, urls, client.Config{})
}

// clearHistory makes watches from before index rev fail with 401 on the
// adapter (compaction through urls), as the writes before it did on v2.
func clearHistory(t testing.TB, urls []string, rev uint64) {
	t.Helper()
	backend.FromEnv(t).ClearHistory(t, urls, rev)
}

// childMain registers one instance and reports on stdout:
//
//	registered <createIndex>
//	done <close unix ns> <deadline unix ns> <error>
//
// then exits. Its parameters come from the environment.
func childMain() int {
	eps := strings.Split(os.Getenv("ETCDV2_ENDPOINTS"), ",")
	ttl, _ := time.ParseDuration(os.Getenv("ETCDV2_TTL"))
	kapi, closeClient, err := backend.NewFromEnv(eps)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer closeClient()
	r := registry.New(kapi, os.Getenv("ETCDV2_ROOT"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	reg, err := r.Register(ctx, registry.Instance{
		Service: os.Getenv("ETCDV2_SERVICE"), ID: os.Getenv("ETCDV2_ID"),
		Addr: "127.0.0.1:" + strconv.Itoa(os.Getpid()),
	}, registry.WithTTL(ttl))
	cancel()
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("registered", reg.CreateIndex())
	<-reg.Done()
	now := time.Now()
	fmt.Println("done", now.UnixNano(), reg.Deadline().UnixNano(), reg.Err())
	return 0
}

// child is an instance process.
type child struct {
	cmd   *exec.Cmd
	lines chan string
	wg    sync.WaitGroup
}

// startChild starts an instance process registering service/id with ttl
// through eps, and waits until it registered.
func startChild(t *testing.T, eps []string, root, service, id string, ttl time.Duration) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1",
		"ETCDV2_ENDPOINTS="+strings.Join(eps, ","), "ETCDV2_ROOT="+root,
		"ETCDV2_SERVICE="+service, "ETCDV2_ID="+id, "ETCDV2_TTL="+ttl.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	ch := &child{cmd: cmd, lines: make(chan string, 16)}
	ch.wg.Add(1)
	go func() {
		defer ch.wg.Done()
		defer close(ch.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ch.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		ch.wg.Wait()
		_ = cmd.Wait()
	})
	line := ch.next(t, 15*time.Second)
	require.True(t, strings.HasPrefix(line, "registered "), "child said %q", line)
	return ch
}

// next returns the child's next line, failing after d.
func (c *child) next(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		require.True(t, ok, "child exited without a line")
		return l
	case <-time.After(d):
		t.Fatalf("no line from the child within %v", d)
	}
	return ""
}

func (c *child) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(sig))
}
