package v3adapter_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// TestRequestTimeout: with WithRequestTimeout, calls to a SIGSTOPped member
// (its connection stays up, nothing answers) end after the timeout, not at
// the caller's 30 s deadline: a read, and the lease grant a TTL write makes
// before its transaction, with a retryable *client.AttemptTimeoutError; a
// write transaction and a membership change with a
// *client.OutcomeUnknownError around it. A Watcher is bounded by the
// caller's context only.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	const d = time.Second
	// The caller's deadline is far off; the bound leaves room for a loaded
	// machine but not for the caller's deadline.
	const callerDeadline, within = 30 * time.Second, d + 3*time.Second
	c := testbed.NewCluster(t, testbed.Options{Version: "3.7"})
	cli := newV3(t, c)
	kapi := v3adapter.NewKeysAPI(cli, v3adapter.WithRequestTimeout(d))
	mapi := v3adapter.NewMembersAPI(cli, v3adapter.WithRequestTimeout(d))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := kapi.Set(ctx, "/k", "before", nil)
	require.NoError(t, err)
	// A Watcher waits for its event as long as the caller's context
	// allows, not just the per-request timeout.
	wctx, wcancel := context.WithTimeout(ctx, 2*d)
	start := time.Now()
	_, err = kapi.Watcher("/k", nil).Next(wctx)
	wcancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, client.ErrAttemptTimeout)
	require.GreaterOrEqual(t, time.Since(start), 2*d)

	m := c.Members()[0]
	m.Stop(t)
	defer m.Continue(t)

	timed := func(name string, f func(context.Context) error) error {
		t.Helper()
		cctx, ccancel := context.WithTimeout(ctx, callerDeadline)
		defer ccancel()
		start := time.Now()
		err := f(cctx)
		took := time.Since(start)
		t.Logf("%s: %v after %v", name, err, took)
		require.Less(t, took, within, name)
		require.GreaterOrEqual(t, took, d, name)
		require.ErrorIs(t, err, client.ErrAttemptTimeout, name)
		var te *client.AttemptTimeoutError
		require.ErrorAs(t, err, &te, name)
		require.Equal(t, d, te.After, name)
		return err
	}

	err = timed("Get", func(ctx context.Context) error {
		_, err := kapi.Get(ctx, "/k", nil)
		return err
	})
	require.NotErrorIs(t, err, client.ErrOutcomeUnknown)

	err = timed("Set with a TTL (its lease grant)", func(ctx context.Context) error {
		_, err := kapi.Set(ctx, "/k", "ttl", &client.SetOptions{TTL: time.Minute})
		return err
	})
	require.NotErrorIs(t, err, client.ErrOutcomeUnknown)

	err = timed("List members", func(ctx context.Context) error {
		_, err := mapi.List(ctx)
		return err
	})
	require.NotErrorIs(t, err, client.ErrOutcomeUnknown)

	// A plain Set is one write transaction, sent at once.
	err = timed("Set", func(ctx context.Context) error {
		_, err := kapi.Set(ctx, "/k", "after", nil)
		return err
	})
	require.ErrorIs(t, err, client.ErrOutcomeUnknown)
	var oe *client.OutcomeUnknownError
	require.ErrorAs(t, err, &oe)

	err = timed("Remove member", func(ctx context.Context) error {
		return mapi.Remove(ctx, "1234")
	})
	require.ErrorIs(t, err, client.ErrOutcomeUnknown)

	// The caller's own deadline, shorter than the timeout, is reported as
	// before: the context's error, not a per-request timeout.
	cctx, ccancel := context.WithTimeout(ctx, d/4)
	_, err = kapi.Get(cctx, "/k", nil)
	ccancel()
	require.Error(t, err)
	require.NotErrorIs(t, err, client.ErrAttemptTimeout)

	// Once the member answers again, so does the adapter.
	m.Continue(t)
	require.Eventually(t, func() bool {
		rctx, rcancel := context.WithTimeout(ctx, 2*d)
		defer rcancel()
		_, err := kapi.Get(rctx, "/k", nil)
		return err == nil
	}, 30*time.Second, 100*time.Millisecond)
}
