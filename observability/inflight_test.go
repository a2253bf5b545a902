package observability_test

import (
	"context"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdaptersInFlightAndWatches holds a read in flight behind a slow
// proxy and a watch open on a real member, and checks the in-flight and
// watch gauges of both adapters while they last and after.
func TestAdaptersInFlightAndWatches(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 1, ProxyClients: true, Plain: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tm := newTelemetry(t)
	ep := cl.ClientURLs()[0]
	c, err := client.New(client.Config{
		Endpoints: []string{ep},
		// A fixed timeout well above the proxy's delay: the read must
		// wait, not be given up on.
		HeaderTimeoutPerRequest: 20 * time.Second,
		Hooks:                   client.JoinHooks(tm.prom, tm.otel),
	})
	require.NoError(t, err)
	defer c.Close()
	tm.prom.Track(c)
	tm.otel.Track(c)
	kapi := client.NewKeysAPI(c)
	_, err = kapi.Set(ctx, "/w/k", "1", nil)
	require.NoError(t, err)
	stats := func() client.EndpointStats { return c.(client.StatsReporter).Stats().Endpoints[0] }
	waitFor := func(what string, ok func(client.EndpointStats) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok(stats()) {
			require.True(t, time.Now().Before(deadline), "%s: %+v", what, stats())
			time.Sleep(5 * time.Millisecond)
		}
	}

	// A watch holds its long poll open at the member. It has a poll of its
	// own, which ends when Next returns (a shared poll stays open for its
	// watchers between calls of Next).
	w := kapi.Watcher("/w/k", &client.WatcherOptions{AfterIndex: 0, OwnPoll: true})
	watched := make(chan error, 1)
	go func() {
		_, err := w.Next(ctx)
		watched <- err
	}()
	waitFor("watch open", func(e client.EndpointStats) bool { return e.Watches == 1 })

	// A read held by the proxy's delay.
	cl.Members()[0].Proxy().SetDelay(500 * time.Millisecond)
	read := make(chan error, 1)
	go func() {
		_, err := kapi.Get(ctx, "/w/k", nil)
		read <- err
	}()
	waitFor("read in flight", func(e client.EndpointStats) bool { return e.InFlight == 1 })

	_, fams := tm.scrape(t)
	assert.Equal(t, float64(1), sum(fams, "etcd_client_calls_in_flight", map[string]string{"kind": "read"}))
	assert.Equal(t, float64(1), sum(fams, "etcd_client_endpoint_in_flight", map[string]string{"endpoint": ep}))
	assert.Equal(t, float64(1), sum(fams, "etcd_client_endpoint_watches", map[string]string{"endpoint": ep}))
	rm := tm.collect(t)
	assert.Equal(t, int64(1), otelSum(rm, "etcd.client.call.active", map[string]string{"etcd.request.kind": "read"}))
	assert.Equal(t, int64(1), otelSum(rm, "etcd.client.endpoint.in_flight", map[string]string{"etcd.endpoint": ep}))
	assert.Equal(t, int64(1), otelSum(rm, "etcd.client.endpoint.watches", map[string]string{"etcd.endpoint": ep}))

	require.NoError(t, <-read)
	cl.Members()[0].Proxy().SetDelay(0)
	_, err = kapi.Set(ctx, "/w/k", "2", nil) // the watch's event
	require.NoError(t, err)
	require.NoError(t, <-watched)
	waitFor("watch closed", func(e client.EndpointStats) bool { return e.Watches == 0 })

	_, fams = tm.scrape(t)
	assert.Equal(t, float64(0), sum(fams, "etcd_client_calls_in_flight", nil))
	assert.Equal(t, float64(0), sum(fams, "etcd_client_endpoint_in_flight", nil))
	assert.Equal(t, float64(0), sum(fams, "etcd_client_endpoint_watches", nil))
	// One long poll or more (the client may renew one that ends empty).
	watchCalls := sum(fams, "etcd_client_calls_total", map[string]string{"kind": "watch"})
	assert.GreaterOrEqual(t, watchCalls, float64(1))
	assert.Equal(t, watchCalls, sum(fams, "etcd_client_calls_total", map[string]string{"kind": "watch", "outcome": "ok"}))
	rm = tm.collect(t)
	assert.Equal(t, int64(0), otelSum(rm, "etcd.client.call.active", nil))
	assert.Equal(t, int64(0), otelSum(rm, "etcd.client.endpoint.watches", nil))
}
