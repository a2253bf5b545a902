package discovery_test

import (
	"context"
	"iter"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/cache"
	"github.com/etcdv2/client/events"
	"github.com/etcdv2/client/integration/backend"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/registry"
)

// Errors that no retry can fix end registry.Watch, cache.Run (and
// WaitSynced, Events) and events.Watch with the error, instead of being
// retried, unseen, until the context ends. Each context here is a bound
// for a failing test: the errors must come long before it ends.
func TestUnrecoverableErrorsSurface(t *testing.T) {
	t.Run("RootIsAFile", func(t *testing.T) {
		// The server answers 104 (not a directory) to every listing.
		c := newCluster(t, testbed.Options{Size: 1})
		kapi := newKAPI(t, c.ClientURLs())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := kapi.Set(ctx, "/svcfile", "x", nil)
		require.NoError(t, err)
		notDir := client.Error{Code: client.ErrorCodeNotDir}

		n := 0
		for snap, err := range registry.New(kapi, "/svcfile").Watch(ctx, "api") {
			n++
			require.Nil(t, snap)
			require.ErrorIs(t, err, notDir)
		}
		require.Equal(t, 1, n, "one error, then the end")
		require.NoError(t, ctx.Err(), "the error came only when the bound ended")

		cc := cache.New(kapi, "/svcfile/api")
		runErr := make(chan error, 1)
		go func() { runErr <- cc.Run(ctx) }()
		err = cc.WaitSynced(ctx)
		require.ErrorIs(t, err, cache.ErrStopped)
		require.ErrorIs(t, err, notDir)
		require.ErrorIs(t, <-runErr, notDir)
		for _, err := range cc.Events(ctx) {
			require.ErrorIs(t, err, cache.ErrStopped)
			require.ErrorIs(t, err, notDir)
		}
		require.NoError(t, ctx.Err())
	})

	t.Run("ClusterReplaced", func(t *testing.T) {
		// The member behind the endpoint is replaced by one of another
		// cluster after the first listing: every answer then fails the
		// client's cluster-ID check.
		backend.FromEnv(t).SkipOnAdapter(t, "the proxy speaks the v2 HTTP API")
		a := newCluster(t, testbed.Options{Size: 1})
		b := newCluster(t, testbed.Options{Size: 1})
		p := newHoldProxy(t, a.Members()[0].ClientURL())
		kapi := newKAPI(t, []string{p.URL()})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r := registry.New(kapi, "/services")
		direct := registry.New(newKAPI(t, a.ClientURLs()), "/services")
		reg, err := direct.Register(ctx, registry.Instance{Service: "api", ID: "a"}, registry.WithTTL(30*time.Second))
		require.NoError(t, err)
		defer func() { _ = reg.Deregister(context.Background()) }()

		ev := events.New(kapi, "/events")
		evs := ev.Watch(ctx, "deploy") // its first read is on cluster a
		watch := r.Watch(ctx, "api")
		next, stop := iter.Pull2(watch)
		defer stop()
		snap, err, ok := next()
		require.True(t, ok)
		require.NoError(t, err)
		require.Len(t, snap, 1)
		cc := cache.New(kapi, "/services")
		runErr := make(chan error, 1)
		go func() { runErr <- cc.Run(ctx) }()
		require.NoError(t, cc.WaitSynced(ctx))

		p.retarget(b.Members()[0].ClientURL())

		_, err, ok = next()
		require.True(t, ok)
		require.ErrorIs(t, err, client.ErrClusterIDMismatch, "registry.Watch")
		_, _, ok = next()
		require.False(t, ok, "registry.Watch ends after the error")

		require.ErrorIs(t, <-runErr, client.ErrClusterIDMismatch, "cache.Run")
		for _, err := range cc.Events(ctx) {
			require.ErrorIs(t, err, cache.ErrStopped)
			require.ErrorIs(t, err, client.ErrClusterIDMismatch)
		}

		n := 0
		for _, err := range evs {
			n++
			require.ErrorIs(t, err, client.ErrClusterIDMismatch, "events.Watch")
		}
		require.Equal(t, 1, n, "events.Watch: one error, then the end")
		require.NoError(t, ctx.Err(), "the errors came only when the bound ended")
	})
}
