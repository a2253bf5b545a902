// Package watchshare tests watchers that share one long poll against
// watchers with a poll of their own, on real etcd clusters with members
// killed and answers cut after their headers.
package watchshare_test

import (
	"testing"

	"github.com/etcdv2/client/integration/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }
