package integration_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/internal/leakcheck"
)

// TestMain reaps etcd processes left by an earlier killed run, runs the
// tests, and fails the run if any goroutine (of the client, the bed or a
// test) outlives them.
func TestMain(m *testing.M) {
	if pids := testbed.ReapLeftovers(); len(pids) > 0 {
		fmt.Fprintf(os.Stderr, "killed leftover etcd processes %v\n", pids)
	}
	code := m.Run()
	if code == 0 {
		if err := leakcheck.Check(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}
