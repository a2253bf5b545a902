package v3adapter_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// TestMain reaps etcd processes of an earlier killed run, runs the tests
// and fails if a goroutine outlives them.
func TestMain(m *testing.M) { testbed.Main(m) }

// newV3 returns a v3 client on the cluster, closed when t ends.
func newV3(t testing.TB, c *testbed.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.ClientURLs(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

// newV2 returns the native v2 KeysAPI on a 3.5 cluster, default Config.
func newV2(t testing.TB, c *testbed.Cluster) client.KeysAPI {
	t.Helper()
	return newV2Config(t, client.Config{Endpoints: c.ClientURLs()})
}

// newV2Config returns the native v2 KeysAPI with cfg.
func newV2Config(t testing.TB, cfg client.Config) client.KeysAPI {
	t.Helper()
	cl, err := client.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return client.NewKeysAPI(cl)
}
