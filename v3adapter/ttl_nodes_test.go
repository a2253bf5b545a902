package v3adapter_test

import (
	"context"
	"encoding/binary"
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

// rawNode is a node's v3 value in the adapter's layout (layout.go) as
// written by a plain set: kind, flagTarget, action "set", the expiration
// in Unix ns (0: none), no explicit createdIndex, the value.
func rawNode(dir bool, expires time.Time, value string) string {
	b := make([]byte, 19, 19+len(value))
	b[0], b[1], b[2] = 'f', 1, 1
	if dir {
		b[0] = 'd'
	}
	if !expires.IsZero() {
		binary.BigEndian.PutUint64(b[3:11], uint64(expires.UnixNano()))
	}
	return string(append(b, value...))
}

// TestDirTTLChangeKeepsSharedLease checks, on etcd 3.6, that changing a
// directory's TTL does not revoke its old lease while a node below it
// with a TTL of its own still lives on that lease, as Migrate before one
// lease per node left a directory and such a node sharing one lease: the
// node keeps its TTL and is not deleted with the lease.
func TestDirTTLChangeKeepsSharedLease(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Version: "3.6"})
	cli := newV3(t, c)
	k := v3adapter.NewKeysAPI(cli, v3adapter.WithPrefix("/old"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := cli.Grant(ctx, 60)
	require.NoError(t, err)
	exp := time.Now().Add(60 * time.Second)
	_, err = cli.Txn(ctx).Then(
		clientv3.OpPut("/old/s", rawNode(true, exp, ""), clientv3.WithLease(l.ID)),
		clientv3.OpPut("/old/s/own", rawNode(false, exp, "x"), clientv3.WithLease(l.ID)),
		clientv3.OpPut("/old/s/plain", rawNode(false, time.Time{}, "p"), clientv3.WithLease(l.ID)),
	).Commit()
	require.NoError(t, err)

	r, err := k.Set(ctx, "/s", "", &client.SetOptions{Dir: true, TTL: 120 * time.Second, PrevExist: client.PrevExist})
	require.NoError(t, err)
	require.EqualValues(t, 120, r.Node.TTL)
	ttl, err := cli.TimeToLive(ctx, l.ID)
	require.NoError(t, err)
	require.Positive(t, ttl.TTL, "the old lease still carries /s/own: not revoked")
	g, err := k.Get(ctx, "/s", &client.GetOptions{Recursive: true})
	require.NoError(t, err)
	require.Len(t, g.Node.Nodes, 2, "/s/own and /s/plain are still there")
	for _, n := range g.Node.Nodes {
		if n.Key == "/s/own" {
			require.InDelta(t, 60, n.TTL, 5, "its own TTL")
		} else {
			require.Zero(t, n.TTL, "no TTL of its own: %s", n.Key)
		}
	}
	raw, err := cli.Get(ctx, "/old/s/", clientv3.WithPrefix())
	require.NoError(t, err)
	for _, kv := range raw.Kvs {
		if string(kv.Key) == "/old/s/own" {
			require.Equal(t, int64(l.ID), kv.Lease, "on its own (old) lease")
		} else {
			require.NotEqual(t, int64(l.ID), kv.Lease, "moved with the directory: %s", kv.Key)
		}
	}
}
