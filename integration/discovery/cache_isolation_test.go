package discovery_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/cache"
	"github.com/etcdv2/client/integration/backend"
	"github.com/etcdv2/client/integration/testbed"
)

// preferring returns a client whose every request goes to url first,
// to the others only when it fails.
// It is the native client's Selector: the tests that use it skip on the
// v3 adapter, whose reads are linearizable (an isolated member serves none).
func preferring(t *testing.T, urls []string, url string) client.KeysAPI {
	t.Helper()
	return preferringWith(t, client.Config{Endpoints: urls}, url)
}

// preferringWith is preferring with cfg's other settings.
func preferringWith(t *testing.T, cfg client.Config, url string) client.KeysAPI {
	t.Helper()
	cfg.Selector = client.SelectorFunc(
		func(_ client.RequestInfo, cands []client.Endpoint) int {
			for i, e := range cands {
				if e.URL == url {
					return i
				}
			}
			return 0
		})
	c, err := client.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return client.NewKeysAPI(c)
}

// runCache runs c until the test ends.
func runCache(t *testing.T, c *cache.Cache) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.ErrorIs(t, <-done, context.Canceled) })
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	defer scancel()
	require.NoError(t, c.WaitSynced(sctx))
}

// TestCacheLeavesIsolatedMember cuts the member a cache watches on off
// from its peers: it still answers plain reads (stale) and keeps the
// watch open, but gets no new writes. The cache's progress check must
// notice and list again by quorum, within about two intervals. A control
// cache without the check, on the same member, shows that the watch alone
// stays stale.
func TestCacheLeavesIsolatedMember(t *testing.T) {
	testCacheLeavesIsolatedMember(t, false)
}

// TestCacheLeavesIsolatedMemberMonotonicReads is the same with
// Config.MonotonicReads, which must not hide the stuck member from the
// check (its plain reads of that member would be sent again as quorum
// reads elsewhere).
func TestCacheLeavesIsolatedMemberMonotonicReads(t *testing.T) {
	testCacheLeavesIsolatedMember(t, true)
}

func testCacheLeavesIsolatedMember(t *testing.T, monotonic bool) {
	backend.FromEnv(t).SkipOnAdapter(t, "needs a client that prefers one member and reads stale data from it")
	c := newCluster(t, testbed.Options{Size: 3, ProxyPeers: true})
	ms := c.Members()
	urls := []string{ms[0].URL(), ms[1].URL(), ms[2].URL()}
	writer := newKAPI(t, []string{ms[1].URL(), ms[2].URL()})
	cfg := client.Config{Endpoints: urls, MonotonicReads: monotonic}
	cc := cache.New(preferringWith(t, cfg, ms[0].URL()), "/iso", cache.WithProgressInterval(2*time.Second))
	control := cache.New(preferringWith(t, cfg, ms[0].URL()), "/iso", cache.WithProgressInterval(-1))
	runCache(t, cc)
	runCache(t, control)
	ctx := context.Background()
	_, err := writer.Set(ctx, "/iso/a", "1", nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, ok1 := cc.Get("/iso/a")
		_, ok2 := control.Get("/iso/a")
		return ok1 && ok2
	}, 5*time.Second, 10*time.Millisecond)

	ms[0].Isolate(t)
	start := time.Now()
	waitQuorum(t, writer)
	for i := 0; i < 20; i++ {
		_, err = writer.Set(ctx, "/iso/b", string(rune('a'+i)), nil)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		n, ok := cc.Get("/iso/b")
		return ok && n.Value == "t"
	}, 15*time.Second, 20*time.Millisecond, "the cache stayed on the isolated member")
	t.Logf("caught up %v after the isolation", time.Since(start).Round(time.Millisecond))
	want, _ := snapshot(t, writer, "/iso")
	require.Equal(t, want, cacheContent(cc))
	_, ok := control.Get("/iso/b")
	require.False(t, ok, "the control cache caught up without the check: the test did not isolate its watch")
}

// waitQuorum waits until kapi completes a quorum read: after a member is
// isolated, the rest may first have to elect a leader.
func waitQuorum(t *testing.T, kapi client.KeysAPI) {
	t.Helper()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := kapi.Get(ctx, "/", &client.GetOptions{Quorum: true})
		return err == nil
	}, 20*time.Second, 50*time.Millisecond, "no quorum among the other members")
}
