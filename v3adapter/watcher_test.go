package v3adapter_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// TestWatchFailoverAndMembers runs on a 3-member etcd 3.7 cluster: a
// recursive watcher gets every write once and in order while each member
// in turn is killed and restarted, a compacted revision gives error 401,
// and the MembersAPI lists the members and their leader.
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
	// Each member in turn is killed and restarted while the writes go on,
	// so the member carrying the watch stream goes down at least once.
	const writes = 60
	w := k.Watcher("/w", &client.WatcherOptions{AfterIndex: first.Index, Recursive: true})
	events := make(chan *client.Response, writes)
	watchErr := make(chan error, 1)
	go func() {
		for i := 0; i < writes; i++ {
			ev, err := w.Next(ctx)
			if err != nil {
				watchErr <- err
				return
			}
			events <- ev
		}
		close(events)
	}()
	for i := 1; i <= writes; i++ {
		j := (i - 10) / 15
		if i >= 10 && j < 3 {
			switch (i - 10) % 15 {
			case 0:
				c.Members()[j].Kill(t)
			case 7:
				c.Members()[j].Restart(t)
				require.NoError(t, c.WaitHealthy(ctx))
			}
		}
		// Create, so that a retry after an unknown outcome cannot write twice.
		for attempt := 0; ; attempt++ {
			_, err := k.Create(ctx, fmt.Sprintf("/w/k%03d", i), fmt.Sprint(i))
			if err == nil || errors.Is(err, client.Error{Code: client.ErrorCodeNodeExist}) {
				break
			}
			require.Less(t, attempt, 100, "%v", err)
		}
	}
	last := first.Index
	i := 0
	for ev := range events {
		i++
		require.Greater(t, ev.Node.ModifiedIndex, last)
		last = ev.Node.ModifiedIndex
		require.Equal(t, fmt.Sprintf("/w/k%03d", i), ev.Node.Key, "events in order, none twice, none lost")
	}
	select {
	case err := <-watchErr:
		require.NoError(t, err)
	default:
	}
	require.Equal(t, writes, i)

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

// TestWatchHungMember: with gRPC keepalives set, a watcher whose client
// spans two members keeps getting every event, in order, while one of
// them is SIGSTOPped (whichever carries the watch stream).
func TestWatchHungMember(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Size: 3, Version: "3.7"})
	ms := c.Members()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for round, hung := range []int{0, 1} {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:            []string{ms[0].ClientURL(), ms[1].ClientURL()},
			DialTimeout:          5 * time.Second,
			DialKeepAliveTime:    time.Second,
			DialKeepAliveTimeout: time.Second,
			Logger:               zap.NewNop(),
		})
		require.NoError(t, err)
		k := v3adapter.NewKeysAPI(cli)
		wcli, err := clientv3.New(clientv3.Config{Endpoints: []string{ms[2].ClientURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		require.NoError(t, err)
		defer wcli.Close()
		writer := v3adapter.NewKeysAPI(wcli) // on the member never stopped
		dir := fmt.Sprintf("/hung%d", round)
		first, err := writer.Set(ctx, dir+"/start", "", nil)
		require.NoError(t, err)
		w := k.Watcher(dir, &client.WatcherOptions{AfterIndex: first.Index - 1, Recursive: true})
		ev, err := w.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, dir+"/start", ev.Node.Key)
		ms[hung].Stop(t)
		for i := 1; i <= 5; i++ {
			// Stopping the leader fails writes until a new one is elected;
			// Create, so that a retry cannot write twice.
			for attempt := 0; ; attempt++ {
				_, err := writer.Create(ctx, fmt.Sprintf("%s/k%d", dir, i), "v")
				if err == nil || errors.Is(err, client.Error{Code: client.ErrorCodeNodeExist}) {
					break
				}
				require.Less(t, attempt, 100, "%v", err)
			}
		}
		for i := 1; i <= 5; i++ {
			nctx, ncancel := context.WithTimeout(ctx, 30*time.Second)
			ev, err := w.Next(nctx)
			ncancel()
			require.NoError(t, err, "event %d with m%d hung", i, hung)
			require.Equal(t, fmt.Sprintf("%s/k%d", dir, i), ev.Node.Key)
		}
		ms[hung].Continue(t)
		require.NoError(t, c.WaitHealthy(ctx))
		cli.Close()
	}
}
