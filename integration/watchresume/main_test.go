// Package watchresume tests how a watch resumes after a poll that ended
// without an event, on real etcd servers.
package watchresume_test

import (
	"testing"

	"github.com/etcdv2/client/integration/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }
