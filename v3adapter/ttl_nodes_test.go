package v3adapter_test

import (
	"context"
	"encoding/binary"
	"errors"
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

// TestDirExpiryTakesNodeWithOwnTTL checks, on etcd 3.6, that a node with a
// TTL of its own longer than its directory's goes with the directory, as
// on v2: one expire event of the directory (also for a watcher on the
// node), nothing left stored, and a directory made again with the same
// name is empty: it can be removed as empty and the node created in it.
func TestDirExpiryTakesNodeWithOwnTTL(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Version: "3.6"})
	cli := newV3(t, c)
	k := v3adapter.NewKeysAPI(cli)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := k.Set(ctx, "/sess", "", &client.SetOptions{Dir: true, TTL: time.Second})
	require.NoError(t, err)
	r, err := k.Set(ctx, "/sess/lock", "holder-1", &client.SetOptions{TTL: time.Minute})
	require.NoError(t, err)
	require.EqualValues(t, 60, r.Node.TTL, "reads report the node's own TTL")

	nctx, ncancel := context.WithTimeout(ctx, 15*time.Second)
	ev, err := k.Watcher("/sess/lock", &client.WatcherOptions{AfterIndex: r.Index}).Next(nctx)
	ncancel()
	require.NoError(t, err)
	require.Equal(t, "expire", ev.Action)
	require.Equal(t, "/sess", ev.Node.Key, "the directory's event, as v2")
	require.True(t, ev.Node.Dir)
	raw, err := cli.Get(ctx, "/v2keys/sess", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Empty(t, raw.Kvs, "nothing of /sess is left stored")

	_, err = k.Set(ctx, "/sess", "", &client.SetOptions{Dir: true, PrevExist: client.PrevNoExist})
	require.NoError(t, err)
	g, err := k.Get(ctx, "/sess", &client.GetOptions{Recursive: true})
	require.NoError(t, err)
	require.Empty(t, g.Node.Nodes, "a directory made again is empty")
	_, err = k.Delete(ctx, "/sess", &client.DeleteOptions{Dir: true})
	require.NoError(t, err, "removed as empty")
	_, err = k.Create(ctx, "/sess/lock", "holder-2")
	require.NoError(t, err)
}

// TestDirTTLChangeRelocatesNodesWithOwnTTL checks, on etcd 3.6, that each
// node with a TTL of its own below a directory is on the lease of its
// death, the earlier of its own expiry and the directory's, also after the
// directory's TTL changes: a longer one gives the node that rode the
// directory's lease a lease of its own (of its remaining TTL), a shorter
// one takes nodes with their own lease to the directory's (their leases
// revoked).
func TestDirTTLChangeRelocatesNodesWithOwnTTL(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Version: "3.6"})
	cli := newV3(t, c)
	k := v3adapter.NewKeysAPI(cli)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leaseOf := func(key string) clientv3.LeaseID {
		t.Helper()
		r, err := cli.Get(ctx, "/v2keys"+key)
		require.NoError(t, err)
		require.Len(t, r.Kvs, 1, key)
		return clientv3.LeaseID(r.Kvs[0].Lease)
	}
	revoked := func(id clientv3.LeaseID) bool {
		t.Helper()
		r, err := cli.TimeToLive(ctx, id)
		require.NoError(t, err)
		return r.TTL == -1
	}
	_, err := k.Set(ctx, "/d", "", &client.SetOptions{Dir: true, TTL: 30 * time.Second})
	require.NoError(t, err)
	_, err = k.Set(ctx, "/d/sub/plain", "p", nil)
	require.NoError(t, err)
	_, err = k.Set(ctx, "/d/long", "l", &client.SetOptions{TTL: 40 * time.Second})
	require.NoError(t, err)
	_, err = k.Set(ctx, "/d/short", "s", &client.SetOptions{TTL: 10 * time.Second})
	require.NoError(t, err)
	dir := leaseOf("/d")
	require.Equal(t, dir, leaseOf("/d/long"), "it would outlive /d: on /d's lease")
	require.Equal(t, dir, leaseOf("/d/sub/plain"))
	short := leaseOf("/d/short")
	require.NotEqual(t, dir, short, "it ends before /d: its own lease")

	_, err = k.Set(ctx, "/d", "", &client.SetOptions{Dir: true, PrevExist: client.PrevExist, TTL: time.Minute})
	require.NoError(t, err)
	dir2 := leaseOf("/d")
	long := leaseOf("/d/long")
	require.NotContains(t, []clientv3.LeaseID{0, dir, dir2}, long, "/d now outlives it: its own lease")
	l, err := cli.TimeToLive(ctx, long)
	require.NoError(t, err)
	require.LessOrEqual(t, l.TTL, int64(40), "of its remaining TTL")
	require.Equal(t, short, leaseOf("/d/short"))
	require.Equal(t, dir2, leaseOf("/d/sub/plain"))
	require.True(t, revoked(dir))
	g, err := k.Get(ctx, "/d/long", nil)
	require.NoError(t, err)
	require.InDelta(t, 40, g.Node.TTL, 3, "its own TTL still")

	_, err = k.Set(ctx, "/d", "", &client.SetOptions{Dir: true, PrevExist: client.PrevExist, TTL: 5 * time.Second})
	require.NoError(t, err)
	dir3 := leaseOf("/d")
	for _, key := range []string{"/d/long", "/d/short", "/d/sub", "/d/sub/plain"} {
		require.Equal(t, dir3, leaseOf(key), "/d ends first now: %s on its lease", key)
	}
	require.True(t, revoked(long))
	require.True(t, revoked(short))
	require.True(t, revoked(dir2))
	g, err = k.Get(ctx, "/d/short", nil)
	require.NoError(t, err)
	require.InDelta(t, 10, g.Node.TTL, 3, "its own TTL still")

	// A subdirectory that rides its directory's lease, and a node below it
	// that rides the same one: a TTL change of the subdirectory that keeps
	// it on that lease leaves the node there too.
	_, err = k.Set(ctx, "/n", "", &client.SetOptions{Dir: true, TTL: 30 * time.Second})
	require.NoError(t, err)
	_, err = k.Set(ctx, "/n/p", "", &client.SetOptions{Dir: true, TTL: 40 * time.Second})
	require.NoError(t, err)
	_, err = k.Set(ctx, "/n/p/x", "x", &client.SetOptions{TTL: 50 * time.Second})
	require.NoError(t, err)
	n := leaseOf("/n")
	require.Equal(t, n, leaseOf("/n/p"))
	require.Equal(t, n, leaseOf("/n/p/x"))
	_, err = k.Set(ctx, "/n/p", "", &client.SetOptions{Dir: true, PrevExist: client.PrevExist, TTL: 45 * time.Second})
	require.NoError(t, err)
	require.Equal(t, n, leaseOf("/n/p"), "it still outlives /n")
	require.Equal(t, n, leaseOf("/n/p/x"), "it dies with /n still")
}

// TestMigrateNodeOutlivingDirRidesItsLease checks, on etcd 3.5, that
// Migrate puts a node whose own TTL would outlive its directory's on the
// directory's lease (it expires with it, as on v2), and gives one whose TTL
// ends first a lease of its own.
func TestMigrateNodeOutlivingDirRidesItsLease(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{})
	src := newV2(t, c)
	cli := newV3(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := src.Set(ctx, "/m", "", &client.SetOptions{Dir: true, TTL: 30 * time.Second})
	require.NoError(t, err)
	_, err = src.Set(ctx, "/m/long", "l", &client.SetOptions{TTL: 50 * time.Second})
	require.NoError(t, err)
	_, err = src.Set(ctx, "/m/short", "s", &client.SetOptions{TTL: 10 * time.Second})
	require.NoError(t, err)
	_, err = v3adapter.Migrate(ctx, src, cli, v3adapter.MigrateOptions{Prefix: "/mig", Quiet: 100 * time.Millisecond})
	require.NoError(t, err)
	raw, err := cli.Get(ctx, "/mig/m", clientv3.WithPrefix())
	require.NoError(t, err)
	lease := map[string]int64{}
	for _, kv := range raw.Kvs {
		lease[string(kv.Key)] = kv.Lease
	}
	require.Len(t, lease, 3)
	require.NotZero(t, lease["/mig/m"])
	require.Equal(t, lease["/mig/m"], lease["/mig/m/long"])
	require.NotContains(t, []int64{0, lease["/mig/m"]}, lease["/mig/m/short"])
	g, err := v3adapter.NewKeysAPI(cli, v3adapter.WithPrefix("/mig")).Get(ctx, "/m/long", nil)
	require.NoError(t, err)
	require.InDelta(t, 50, g.Node.TTL, 3, "its own TTL still")
}

// TestDirTTLChangeKeepsChildIndexes checks, on etcd 3.6, that refreshing
// or changing a directory's TTL, which moves its children to the new
// lease, leaves their modifiedIndex and createdIndex as they were, as on
// v2: reads report them and a compare on the old PrevIndex succeeds.
func TestDirTTLChangeKeepsChildIndexes(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Version: "3.6"})
	k := v3adapter.NewKeysAPI(newV3(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := k.Set(ctx, "/s", "", &client.SetOptions{Dir: true, TTL: 30 * time.Second})
	require.NoError(t, err)
	_, err = k.Set(ctx, "/s/k", "v0", nil)
	require.NoError(t, err)
	r, err := k.Set(ctx, "/s/k", "v", nil) // recreated: createdIndex = this write
	require.NoError(t, err)
	d, err := k.Set(ctx, "/s/d/x", "x", nil)
	require.NoError(t, err)
	want := map[string][2]uint64{
		"/s/k":   {r.Node.CreatedIndex, r.Node.ModifiedIndex},
		"/s/d":   {d.Index, d.Index},
		"/s/d/x": {d.Node.CreatedIndex, d.Node.ModifiedIndex},
	}
	check := func(what string) {
		t.Helper()
		for key, idx := range want {
			g, err := k.Get(ctx, key, nil)
			require.NoError(t, err)
			require.Equal(t, idx, [2]uint64{g.Node.CreatedIndex, g.Node.ModifiedIndex}, "%s after %s", key, what)
		}
	}
	_, err = k.Set(ctx, "/s", "", &client.SetOptions{Dir: true, TTL: 30 * time.Second, Refresh: true, PrevExist: client.PrevExist})
	require.NoError(t, err)
	check("a refresh of /s")
	_, err = k.Set(ctx, "/s", "", &client.SetOptions{Dir: true, TTL: time.Minute, PrevExist: client.PrevExist})
	require.NoError(t, err)
	check("a TTL change of /s")
	_, err = k.Set(ctx, "/s", "", &client.SetOptions{Dir: true, PrevExist: client.PrevExist})
	require.NoError(t, err)
	check("removing the TTL of /s")
	_, err = k.Delete(ctx, "/s/d/x", &client.DeleteOptions{PrevIndex: want["/s/d/x"][1]})
	require.NoError(t, err, "compareAndDelete on the kept index")
	u, err := k.Set(ctx, "/s/k", "v2", &client.SetOptions{PrevIndex: want["/s/k"][1]})
	require.NoError(t, err, "compareAndSwap on the kept index")
	require.Equal(t, want["/s/k"][0], u.PrevNode.CreatedIndex)
	require.Equal(t, want["/s/k"][0], u.Node.CreatedIndex)
	require.Equal(t, "v2", u.Node.Value)
	_, err = k.Set(ctx, "/s/k", "v3", &client.SetOptions{PrevIndex: want["/s/k"][1]})
	require.True(t, errors.Is(err, client.Error{Code: client.ErrorCodeTestFailed}), "%v", err)
}
