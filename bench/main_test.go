package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdv2/client/integration/testbed"
)

// TestMain reaps etcd processes left by an earlier killed run, runs the
// tests and benchmarks, stops the shared cluster (if a benchmark started
// one) and fails the binary if the test bed left goroutines behind.
func TestMain(m *testing.M) {
	if pids := testbed.ReapLeftovers(); len(pids) > 0 {
		fmt.Fprintf(os.Stderr, "bench: killed leftover etcd processes %v\n", pids)
	}
	code := m.Run()
	closeShared()
	if leaks := testbed.LeakedGoroutines(5 * time.Second); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d leaked test bed goroutine(s):\n%s\n", len(leaks), strings.Join(leaks, "\n\n"))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// binaryTB is the testing.TB that owns the one cluster of this binary. A
// benchmark's own *testing.B would run the cluster's cleanup (and so stop
// it) when that benchmark ends; this one runs it from TestMain after every
// benchmark is done. Only the methods the test bed calls are implemented;
// the embedded nil interface supplies the unexported one.
type binaryTB struct {
	testing.TB

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// fatalError is what Fatalf panics with; sharedEnv recovers it.
type fatalError struct{ msg string }

func (e fatalError) Error() string { return e.msg }

func (t *binaryTB) Helper()      {}
func (t *binaryTB) Name() string { return "bench" }

func (t *binaryTB) Logf(format string, args ...any) {
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

func (t *binaryTB) Log(args ...any) { t.Logf("%s", fmt.Sprint(args...)) }

func (t *binaryTB) Errorf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func (t *binaryTB) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }

func (t *binaryTB) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	panic(fatalError{fmt.Sprintf(format, args...)})
}

func (t *binaryTB) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }
func (t *binaryTB) FailNow()          { t.Fatalf("FailNow") }

func (t *binaryTB) Fail() {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
}

func (t *binaryTB) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *binaryTB) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}

func (t *binaryTB) TempDir() string {
	dir, err := os.MkdirTemp("", "etcdv2-bench-")
	if err != nil {
		t.Fatalf("TempDir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// close runs the cleanups, last registered first.
func (t *binaryTB) close() {
	t.mu.Lock()
	cs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

// env is the cluster shared by every benchmark of this binary.
type env struct {
	cluster  *testbed.Cluster
	leader   string // client URL of the raft leader
	follower string // client URL of another member
	version  string // body of GET /version
}

var (
	sharedOnce sync.Once
	sharedTB   *binaryTB
	shared     *env
	sharedErr  error
)

// sharedEnv starts the binary's 3-member cluster on first use.
func sharedEnv(b *testing.B) *env {
	b.Helper()
	sharedOnce.Do(func() {
		sharedTB = &binaryTB{}
		defer func() {
			if r := recover(); r != nil {
				f, ok := r.(fatalError)
				if !ok {
					panic(r)
				}
				sharedErr = f
			}
		}()
		c := testbed.NewCluster(sharedTB, testbed.Options{Size: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		l, err := c.Leader(ctx)
		if err != nil {
			sharedErr = err
			return
		}
		e := &env{cluster: c, leader: l.URL()}
		for _, m := range c.Members() {
			if m != l {
				e.follower = m.URL()
				break
			}
		}
		e.version = fetchVersion(ctx, e.leader)
		// One line the report picks up: the etcd server's version.
		fmt.Printf("# etcd-version: %s\n", e.version)
		shared = e
	})
	if sharedErr != nil {
		b.Fatalf("starting the shared cluster: %v", sharedErr)
	}
	return shared
}

func fetchVersion(ctx context.Context, base string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/version", nil)
	if err != nil {
		return "unknown"
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "unknown"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return strings.TrimSpace(string(b))
}

// closeShared stops the cluster and closes the contenders' clients.
func closeShared() {
	closeClients()
	if sharedTB != nil {
		sharedTB.close()
	}
	closeTLSShared()
}
