package testbed

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// ExampleCluster starts a cluster for a runnable Example function, which
// has no testing.TB of its own, and returns it with stop, which closes it
// (members killed, data removed). Call stop before the Example returns,
// typically with defer; it is idempotent.
//
// opts are those of NewCluster, except that the cluster serves plain http
// even when ETCDV2_TLS=1 unless opts sets ClientTLS or PeerTLS, so that the
// example can connect with a plain client.Config. A failure to start
// panics, after the bed's cleanups ran, which fails the Example.
//
//	func Example_lock() {
//		c, stop := testbed.ExampleCluster(testbed.Options{})
//		defer stop()
//		cli, err := client.New(client.Config{Endpoints: c.ClientURLs()})
//		...
//	}
func ExampleCluster(opts Options) (c *Cluster, stop func()) {
	if opts.ClientTLS == nil && opts.PeerTLS == nil {
		opts.Plain = true
	}
	tb := &exampleTB{}
	var once sync.Once
	stop = func() { once.Do(tb.cleanup) }
	defer func() {
		if r := recover(); r != nil {
			stop()
			panic(r)
		}
	}()
	return NewCluster(tb, opts), stop
}

// exampleTB is the part of testing.TB the bed uses. Fatalf and Errorf
// panic; Logf is silent until then, so that a failed start shows the
// members' log tails on stderr without disturbing an Example's output.
type exampleTB struct {
	testing.TB // nil: the bed calls only the methods below

	mu       sync.Mutex
	failed   bool
	cleanups []func()
}

func (*exampleTB) Helper() {}

func (tb *exampleTB) Logf(format string, args ...any) {
	if tb.Failed() {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

func (tb *exampleTB) Failed() bool {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.failed
}

func (tb *exampleTB) Errorf(format string, args ...any) { tb.Fatalf(format, args...) }

func (tb *exampleTB) Fatalf(format string, args ...any) {
	tb.mu.Lock()
	tb.failed = true
	tb.mu.Unlock()
	panic(fmt.Sprintf(format, args...))
}

func (tb *exampleTB) Cleanup(f func()) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.cleanups = append(tb.cleanups, f)
}

func (tb *exampleTB) TempDir() string {
	d, err := os.MkdirTemp("", "testbed-example-")
	if err != nil {
		tb.Fatalf("testbed: %v", err)
	}
	tb.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// cleanup runs the registered cleanups, last registered first.
func (tb *exampleTB) cleanup() {
	tb.mu.Lock()
	fs := tb.cleanups
	tb.cleanups = nil
	tb.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
