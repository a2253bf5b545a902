package streambody_test

import (
	"testing"

	"github.com/etcdv2/client/integration/testbed"
)

// TestMain reaps etcd processes left by an earlier killed run, runs the
// tests, and fails the run if any goroutine outlives them.
func TestMain(m *testing.M) { testbed.Main(m) }
