package testbed

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/leakcheck"
)

// Main is a TestMain helper for packages using the bed:
//
//	func TestMain(m *testing.M) { testbed.Main(m) }
//
// It reaps etcd processes left over by earlier, killed test binaries
// (ReapLeftovers), runs the tests, then fails the binary (exit code 1) if
// any goroutine, of the bed, of the client or of a test, is still running
// 10 s later, and exits with m.Run's code otherwise.
func Main(m *testing.M) {
	if pids := ReapLeftovers(); len(pids) > 0 {
		fmt.Fprintf(os.Stderr, "testbed: killed leftover etcd processes %v\n", pids)
	}
	code := m.Run()
	removeEnvTLS()
	if code == 0 {
		if err := leakcheck.Check(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// LeakedGoroutines waits up to timeout for every goroutine started by this
// package (proxies, process waiters, the forker thread) to end and
// returns the stacks of those still running, or nil. Call it after every
// Cluster and Proxy has been closed (for example after m.Run).
func LeakedGoroutines(timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		leaks := ownGoroutines()
		if len(leaks) == 0 || time.Now().After(deadline) {
			return leaks
		}
		time.Sleep(20 * time.Millisecond) // goroutine exit is not observable otherwise
	}
}

const pkgPath = "github.com/etcdv2/client/integration/testbed."

func ownGoroutines() []string {
	var out []string
	for _, g := range leakcheck.Stacks() {
		// Every goroutine this package starts is created by one of its
		// functions; the caller's goroutine (e.g. inside Main) is not.
		if strings.Contains(g, "\ncreated by "+pkgPath) {
			out = append(out, g)
		}
	}
	return out
}
