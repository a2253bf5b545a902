package discovery_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client/cache"
	"github.com/etcdv2/client/integration/testbed"
)

// TestCacheLeavesIsolatedMember cuts the member a cache watches on off
// from its peers: it still answers (stale) reads and keeps the watch open,
// but receives no new writes. The cache must move to another member and
// catch up, within a bound.
func TestCacheLeavesIsolatedMember(t *testing.T) {
	c := testbed.NewCluster(t, testbed.Options{Size: 3, ProxyPeers: true})
	ms := c.Members()
	// The cache's client sticks to the first endpoint: the one isolated.
	ckapi := newKAPI(t, []string{ms[0].URL(), ms[1].URL(), ms[2].URL()})
	writer := newKAPI(t, []string{ms[1].URL(), ms[2].URL()})
	cc := cache.New(ckapi, "/iso")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cc.Run(ctx) }()
	defer func() { cancel(); require.ErrorIs(t, <-done, context.Canceled) }()
	require.NoError(t, cc.WaitSynced(ctx))
	_, err := writer.Set(ctx, "/iso/a", "1", nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := cc.Get("/iso/a"); return ok }, 5*time.Second, 10*time.Millisecond)

	ms[0].Isolate(t)
	start := time.Now()
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
}
