package v3adapter_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// TestWatchFailoverAndMembers runs on a 3-member etcd 3.7 cluster: a
// recursive watcher gets every write once and in order while the leader
// is killed and restarted, a compacted revision gives error 401, and the
// MembersAPI lists the members and their leader.
func TestWatchFailoverAndMembers(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Size: 3, Version: "3.7"})
	cli := newV3(t, c)
	k := v3adapter.NewKeysAPI(cli)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	mapi := v3adapter.NewMembersAPI(cli)
	ms, err := mapi.List(ctx)
	require.NoError(t, err)
	require.Len(t, ms, 3)
	leader, err := mapi.Leader(ctx)
	require.NoError(t, err)
	l, err := c.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, l.ID(), leader.ID)
	var me *client.MemberError
	require.ErrorAs(t, mapi.Remove(ctx, "abcdef"), &me)
	require.Equal(t, 404, me.StatusCode)

	first, err := k.Set(ctx, "/w/start", "0", nil)
	require.NoError(t, err)
	const writes = 60
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= writes; i++ {
			for attempt := 0; ; attempt++ {
				_, err := k.Set(ctx, fmt.Sprintf("/w/k%d", i%5), fmt.Sprint(i), nil)
				if err == nil {
					break
				}
				if ctx.Err() != nil || attempt > 100 {
					return
				}
			}
			if i == writes/3 {
				l.Kill(t)
			}
		}
	}()
	w := k.Watcher("/w", &client.WatcherOptions{AfterIndex: first.Index, Recursive: true})
	last := first.Index
	for i := 1; i <= writes; i++ {
		ev, err := w.Next(ctx)
		require.NoError(t, err, "event %d", i)
		require.Greater(t, ev.Node.ModifiedIndex, last)
		last = ev.Node.ModifiedIndex
		require.Equal(t, fmt.Sprint(i), ev.Node.Value, "events in order, none twice, none lost")
	}
	wg.Wait()
	l.Restart(t)

	// Compaction: a watcher from before it gets 401.
	_, err = k.Set(ctx, "/w/after", "x", nil)
	require.NoError(t, err)
	r, err := k.Get(ctx, "/w", nil)
	require.NoError(t, err)
	_, err = cli.Compact(ctx, int64(r.Index))
	require.NoError(t, err)
	_, err = k.Watcher("/w", &client.WatcherOptions{AfterIndex: first.Index}).Next(ctx)
	var ce client.Error
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, client.ErrorCodeEventIndexCleared, ce.Code)
}
