package watchresume_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// TestHistoryEventCutAfterHeaders: a watch whose cursor points into the
// server's history is answered with headers carrying the store's current
// index, then the event. When the answer is cut between the two, the
// watcher must resume at the same cursor and deliver the event, exactly
// once.
func TestHistoryEventCutAfterHeaders(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Size: 1, ProxyClients: true})
	cli, err := client.New(client.Config{Endpoints: c.ClientURLs()})
	require.NoError(t, err)
	defer cli.Close()
	k := client.NewKeysAPI(cli)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	first, err := k.Set(ctx, "/w/key", "v1", nil)
	require.NoError(t, err)
	var last *client.Response
	for i := 0; i < 5; i++ { // the store moves on past the event
		last, err = k.Set(ctx, fmt.Sprintf("/w/other%d", i), "x", nil)
		require.NoError(t, err)
	}

	proxy := c.Members()[0].Proxy()
	proxy.CutAfterHeaders("wait=true", 1)
	w := k.Watcher("/w/key", &client.WatcherOptions{AfterIndex: first.Node.ModifiedIndex - 1})

	// The event sits in the history: without the cut it would be
	// delivered at once. Bound the wait well below the test's deadline.
	nctx, ncancel := context.WithTimeout(ctx, 15*time.Second)
	resp, err := w.Next(nctx)
	ncancel()
	require.NoError(t, err, "the history event was skipped after the cut")
	require.Equal(t, 1, proxy.Cuts(), "the first poll's answer was not cut")
	require.Equal(t, "v1", resp.Node.Value)
	require.Equal(t, first.Node.ModifiedIndex, resp.Node.ModifiedIndex)
	require.Greater(t, last.Index, first.Node.ModifiedIndex)

	// Exactly once: the next event is the next write, not the same one.
	second, err := k.Set(ctx, "/w/key", "v2", nil)
	require.NoError(t, err)
	nctx, ncancel = context.WithTimeout(ctx, 15*time.Second)
	resp, err = w.Next(nctx)
	ncancel()
	require.NoError(t, err)
	require.Equal(t, "v2", resp.Node.Value)
	require.Equal(t, second.Node.ModifiedIndex, resp.Node.ModifiedIndex)
}
