package v3adapter_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// TestMigrateTTLNodesExpireApart checks, on etcd 3.5, that nodes Migrate
// copies with the same remaining TTL get a lease each, as the adapter's own
// writes give them, so that each expiry is its own event, as on v2: a
// recursive watcher gets one expire per key.
func TestMigrateTTLNodesExpireApart(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{})
	src := newV2(t, c)
	cli := newV3(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names := []string{"/svc/a", "/svc/b", "/svc/c"}
	for _, name := range names {
		_, err := src.Set(ctx, name, "addr", &client.SetOptions{TTL: 3 * time.Second})
		require.NoError(t, err)
	}
	_, err := v3adapter.Migrate(ctx, src, cli, v3adapter.MigrateOptions{Prefix: "/mig", Quiet: 100 * time.Millisecond})
	require.NoError(t, err)
	k := v3adapter.NewKeysAPI(cli, v3adapter.WithPrefix("/mig"))
	g, err := k.Get(ctx, "/svc", nil)
	require.NoError(t, err)
	require.Len(t, g.Node.Nodes, 3)
	raw, err := cli.Get(ctx, "/mig/svc/", clientv3.WithPrefix())
	require.NoError(t, err)
	leases := map[int64]bool{}
	for _, kv := range raw.Kvs {
		require.NotZero(t, kv.Lease, "%s", kv.Key)
		leases[kv.Lease] = true
	}
	require.Len(t, leases, 3, "one lease per node with a TTL")

	w := k.Watcher("/svc", &client.WatcherOptions{Recursive: true, AfterIndex: g.Index})
	var got []string
	for range names { // the TTLs run out within 3 s
		nctx, ncancel := context.WithTimeout(ctx, 15*time.Second)
		ev, err := w.Next(nctx)
		ncancel()
		require.NoError(t, err, "events so far: %v", got)
		require.Equal(t, "expire", ev.Action)
		got = append(got, ev.Node.Key)
	}
	sort.Strings(got)
	require.Equal(t, names, got)
}
