package v3adapter_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/cache"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// slowStreamMember starts a 1-member etcd 3.7 cluster with a proxy before
// its client port, and returns the member, a v3 client straight to it and
// one through the proxy (which tests slow down with SetDelay). The client
// through the proxy sends no keepalives: they would time out.
func slowStreamMember(t *testing.T, slowDial time.Duration) (*testbed.Member, *clientv3.Client, *clientv3.Client) {
	t.Helper()
	c := testbed.NewCluster(t, testbed.Options{Version: "3.7", ProxyClients: true})
	m := c.Members()[0]
	direct, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { direct.Close() })
	slow, err := clientv3.New(clientv3.Config{Endpoints: []string{m.URL()}, DialTimeout: slowDial, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { slow.Close() })
	return m, direct, slow
}

// TestCacheBehindSlowStreamMatchesWatcher is the sequence that made a
// cache's event stream differ from a recorder's on a 3-member cluster
// under faults, made deterministic on a 1-member etcd 3.7 cluster: the
// cache's watch stream runs late (here: through a proxy delaying every
// chunk by 1.5 s; there: a hung member noticed by keepalives, then the
// events replayed from another member), while a watcher next to the
// server reads the same history live. A key with a 1 s TTL deleted before
// it expires, and a compare-and-delete, must reach both as the same
// events, and the key whose lease runs out as an expiry to both.
func TestCacheBehindSlowStreamMatchesWatcher(t *testing.T) {
	t.Parallel()
	m, direct, slow := slowStreamMember(t, 5*time.Second)
	writer := v3adapter.NewKeysAPI(direct)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	start, err := writer.Set(ctx, "/c/start", "s", nil)
	require.NoError(t, err)
	rec := writer.Watcher("/c", &client.WatcherOptions{AfterIndex: start.Index, Recursive: true})

	var mu sync.Mutex
	var got []watchedEvent
	cc := cache.New(v3adapter.NewKeysAPI(slow), "/c", cache.WithProgressInterval(0), cache.WithEventHandler(func(ev cache.Event) {
		if ev.Resync {
			return
		}
		mu.Lock()
		got = append(got, watchedEvent{ev.Action, ev.Node.Key, ev.Index})
		mu.Unlock()
	}))
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cc.Run(cctx) }()
	t.Cleanup(func() {
		ccancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	require.NoError(t, cc.WaitSynced(ctx))
	require.EqualValues(t, start.Index, cc.Index())

	m.Proxy().SetDelay(1500 * time.Millisecond)
	_, err = writer.Set(ctx, "/c/k", "v", &client.SetOptions{TTL: time.Second})
	require.NoError(t, err)
	d, err := writer.Delete(ctx, "/c/k", nil)
	require.NoError(t, err)
	require.Equal(t, "delete", d.Action)
	_, err = writer.Set(ctx, "/c/x", "v", &client.SetOptions{TTL: time.Second})
	require.NoError(t, err)
	cad, err := writer.Delete(ctx, "/c/x", &client.DeleteOptions{PrevValue: "v"})
	require.NoError(t, err)
	_, err = writer.Set(ctx, "/c/gone", "v", &client.SetOptions{TTL: time.Second})
	require.NoError(t, err)

	// The live watcher's history, up to the expiry of /c/gone.
	var want []watchedEvent
	for {
		ev, err := rec.Next(ctx)
		require.NoError(t, err)
		want = append(want, watchedEvent{ev.Action, ev.Node.Key, ev.Node.ModifiedIndex})
		if ev.Action == "expire" {
			break
		}
	}
	require.Equal(t, watchedEvent{"delete", "/c/k", d.Index}, want[1])
	require.Equal(t, watchedEvent{"compareAndDelete", "/c/x", cad.Index}, want[3])
	require.Equal(t, "/c/gone", want[5].Key)

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= len(want)
	}, 30*time.Second, 10*time.Millisecond, "the cache did not get the events through the slow proxy")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, want, got, "the cache's events (behind a slow stream) against a live watcher's")
}
