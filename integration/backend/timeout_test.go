package backend

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// TestAdapterHeaderTimeout: on the adapter, a positive
// Config.HeaderTimeoutPerRequest bounds each request to a SIGSTOPped member
// (the error matches client.ErrAttemptTimeout), and zero leaves only the
// caller's deadline.
func TestAdapterHeaderTimeout(t *testing.T) {
	t.Parallel()
	const d = time.Second
	c := testbed.NewCluster(t, V3Adapter.Options(testbed.Options{}))
	bounded := V3Adapter.KeysAPI(t, c.ClientURLs(), client.Config{HeaderTimeoutPerRequest: d})
	unbounded := V3Adapter.KeysAPI(t, c.ClientURLs(), client.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, k := range []client.KeysAPI{bounded, unbounded} {
		_, err := k.Get(ctx, "/", nil)
		require.NoError(t, err)
	}
	m := c.Members()[0]
	m.Stop(t)
	defer m.Continue(t)

	const callerDeadline = 4 * d
	get := func(k client.KeysAPI) (time.Duration, error) {
		cctx, ccancel := context.WithTimeout(ctx, callerDeadline)
		defer ccancel()
		start := time.Now()
		_, err := k.Get(cctx, "/", nil)
		return time.Since(start), err
	}
	took, err := get(bounded)
	require.ErrorIs(t, err, client.ErrAttemptTimeout)
	require.GreaterOrEqual(t, took, d)
	require.Less(t, took, callerDeadline)

	took, err = get(unbounded)
	require.Error(t, err)
	require.NotErrorIs(t, err, client.ErrAttemptTimeout)
	require.GreaterOrEqual(t, took, callerDeadline)
}
