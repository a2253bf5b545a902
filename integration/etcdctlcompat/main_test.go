// Package etcdctlcompat runs etcd 3.5's etcdctl (v2 mode) built against the
// official v2 client and built against this library through the same
// scripted commands on fresh real clusters, and compares stdout, stderr and
// exit code step by step.
package etcdctlcompat_test

import (
	"testing"

	"github.com/etcdv2/client/integration/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }
