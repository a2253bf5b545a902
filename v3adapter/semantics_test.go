package v3adapter_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// TestSemantics pins the adapter's guarantees and documented differences
// on a 3-member etcd 3.6 cluster.
func TestSemantics(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Size: 3, Version: "3.6"})
	cli := newV3(t, c)
	k := v3adapter.NewKeysAPI(cli)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("directory TTL", func(t *testing.T) {
		r, err := k.Set(ctx, "/td", "", &client.SetOptions{Dir: true, TTL: 2 * time.Second})
		require.NoError(t, err)
		_, err = k.Set(ctx, "/td/child", "c", nil)
		require.NoError(t, err)
		_, err = k.Set(ctx, "/td/own", "o", &client.SetOptions{TTL: 30 * time.Second})
		require.NoError(t, err)
		w := k.Watcher("/td/child", &client.WatcherOptions{AfterIndex: r.Index + 2})
		ev, err := w.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, "expire", ev.Action)
		require.Equal(t, "/td", ev.Node.Key, "the directory's event, as v2")
		require.True(t, ev.Node.Dir)
		_, err = k.Get(ctx, "/td/child", nil)
		require.True(t, client.IsKeyNotFound(err), "%v", err)
		// The node with its own, longer TTL went with the directory, as
		// on v2 (it rode the directory's lease).
		_, err = k.Get(ctx, "/td/own", nil)
		require.Equal(t, "/td", err.(client.Error).Cause)
		raw, err := cli.Get(ctx, "/v2keys/td/own")
		require.NoError(t, err)
		require.Empty(t, raw.Kvs, "gone with the directory")
	})

	t.Run("directory TTL change moves the subtree", func(t *testing.T) {
		_, err := k.Set(ctx, "/tm", "", &client.SetOptions{Dir: true, TTL: 2 * time.Second})
		require.NoError(t, err)
		_, err = k.Set(ctx, "/tm/a/b", "c", nil)
		require.NoError(t, err)
		old, err := cli.Get(ctx, "/v2keys/tm/a/b")
		require.NoError(t, err)
		oldLease := clientv3.LeaseID(old.Kvs[0].Lease)
		require.NotZero(t, oldLease, "the child shares the directory's lease")
		r, err := k.Set(ctx, "/tm", "", &client.SetOptions{Dir: true, PrevExist: client.PrevExist, TTL: time.Minute})
		require.NoError(t, err)
		require.Equal(t, "update", r.Action)
		require.EqualValues(t, 60, r.Node.TTL)
		require.Eventually(t, func() bool { // the old lease is gone
			l, err := cli.TimeToLive(ctx, oldLease)
			return err == nil && l.TTL == -1
		}, 10*time.Second, 100*time.Millisecond)
		g, err := k.Get(ctx, "/tm/a/b", nil)
		require.NoError(t, err)
		require.Equal(t, "c", g.Node.Value)
	})

	t.Run("a TTL given to a directory takes its subtree", func(t *testing.T) {
		_, err := k.Set(ctx, "/pd", "", &client.SetOptions{Dir: true})
		require.NoError(t, err)
		_, err = k.Set(ctx, "/pd/a/b", "v", nil)
		require.NoError(t, err)
		r, err := k.Set(ctx, "/pd", "", &client.SetOptions{Dir: true, PrevExist: client.PrevExist, TTL: time.Second})
		require.NoError(t, err)
		ev, err := k.Watcher("/pd/a/b", &client.WatcherOptions{AfterIndex: r.Index}).Next(ctx)
		require.NoError(t, err)
		require.Equal(t, "expire", ev.Action)
		require.Equal(t, "/pd", ev.Node.Key)
		_, err = k.Get(ctx, "/pd/a/b", nil)
		require.True(t, client.IsKeyNotFound(err), "%v", err)
	})

	t.Run("directory delete seen below it after compaction", func(t *testing.T) {
		_, err := k.Set(ctx, "/cd/x", "v", nil)
		require.NoError(t, err)
		r, err := k.Delete(ctx, "/cd", &client.DeleteOptions{Recursive: true})
		require.NoError(t, err)
		ev, err := k.Watcher("/cd/x", &client.WatcherOptions{AfterIndex: r.Index - 1}).Next(ctx)
		require.NoError(t, err)
		require.Equal(t, "/cd", ev.Node.Key, "before compaction: the directory's event, as v2")
		_, err = cli.Compact(ctx, int64(r.Index))
		require.NoError(t, err)
		ev, err = k.Watcher("/cd/x", &client.WatcherOptions{AfterIndex: r.Index - 1}).Next(ctx)
		require.NoError(t, err)
		require.Equal(t, "delete", ev.Action)
		require.Equal(t, "/cd/x", ev.Node.Key, "after compaction: the key's own delete")
	})

	t.Run("a TTL change of a large directory is bounded by --max-txn-ops", func(t *testing.T) {
		_, err := k.Set(ctx, "/big", "", &client.SetOptions{Dir: true, TTL: time.Hour})
		require.NoError(t, err)
		for i := 0; i < 130; i++ { // plus the directory: over the default 128
			_, err := k.Set(ctx, fmt.Sprintf("/big/k%d", i), "v", nil)
			require.NoError(t, err)
		}
		_, err = k.Set(ctx, "/big", "", &client.SetOptions{Dir: true, PrevExist: client.PrevExist, TTL: 2 * time.Hour})
		require.ErrorContains(t, err, "too many operations in txn request")
		g, err := k.Get(ctx, "/big", nil)
		require.NoError(t, err)
		require.LessOrEqual(t, g.Node.TTL, int64(3600), "nothing changed")
	})

	t.Run("delete before expiry is delete", func(t *testing.T) {
		r, err := k.Set(ctx, "/del", "v", &client.SetOptions{TTL: 30 * time.Second})
		require.NoError(t, err)
		_, err = k.Delete(ctx, "/del", nil)
		require.NoError(t, err)
		ev, err := k.Watcher("/del", &client.WatcherOptions{AfterIndex: r.Index}).Next(ctx)
		require.NoError(t, err)
		require.Equal(t, "delete", ev.Action)
	})

	t.Run("leases of rewritten keys are revoked", func(t *testing.T) {
		before, err := cli.Leases(ctx)
		require.NoError(t, err)
		for i := 0; i < 5; i++ {
			_, err := k.Set(ctx, "/lease", fmt.Sprint(i), &client.SetOptions{TTL: time.Hour})
			require.NoError(t, err)
		}
		after, err := cli.Leases(ctx)
		require.NoError(t, err)
		require.Len(t, after.Leases, len(before.Leases)+1)
		_, err = k.Delete(ctx, "/lease", nil)
		require.NoError(t, err)
		after, err = cli.Leases(ctx)
		require.NoError(t, err)
		require.Len(t, after.Leases, len(before.Leases))
	})

	t.Run("cluster ID and raft term", func(t *testing.T) {
		ml, err := cli.MemberList(ctx)
		require.NoError(t, err)
		r, err := k.Set(ctx, "/hdr", "v", nil)
		require.NoError(t, err)
		require.Equal(t, strconv.FormatUint(ml.Header.ClusterId, 16), r.ClusterID)
		require.NotZero(t, r.RaftTerm)
		g, err := k.Get(ctx, "/hdr", nil)
		require.NoError(t, err)
		require.Equal(t, r.ClusterID, g.ClusterID)
	})

	t.Run("members", func(t *testing.T) {
		mapi := v3adapter.NewMembersAPI(cli)
		ms, err := mapi.List(ctx)
		require.NoError(t, err)
		require.Len(t, ms, 3)
		// A just-started cluster refuses reconfiguration with 412 until
		// its members have been connected for a few seconds.
		var me *client.MemberError
		require.Eventually(t, func() bool {
			_, err = mapi.Add(ctx, ms[0].PeerURLs[0])
			return !errors.As(err, &me) || me.StatusCode != 412
		}, 20*time.Second, 200*time.Millisecond)
		require.ErrorAs(t, err, &me)
		require.Equal(t, 409, me.StatusCode, "%v", err)
		require.NoError(t, mapi.Update(ctx, ms[1].ID, ms[1].PeerURLs))
		require.ErrorAs(t, mapi.Update(ctx, "not-hex", ms[1].PeerURLs), &me)
		require.Equal(t, 404, me.StatusCode)
	})

	t.Run("a write without an answer is of unknown outcome", func(t *testing.T) {
		m := c.Members()[2]
		pinned, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		require.NoError(t, err)
		defer pinned.Close()
		pk := v3adapter.NewKeysAPI(pinned)
		_, err = pk.Set(ctx, "/unknown", "before", nil)
		require.NoError(t, err)
		m.Stop(t) // SIGSTOP: the connection stays up, nothing answers
		defer m.Continue(t)
		// A plain Set is one write transaction, sent at once.
		wctx, wcancel := context.WithTimeout(ctx, time.Second)
		_, err = pk.Set(wctx, "/unknown", "v", nil)
		wcancel()
		require.ErrorIs(t, err, client.ErrOutcomeUnknown)
		// MembersAPI.Leader moves past the hung member.
		both, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL(), c.Members()[0].ClientURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		require.NoError(t, err)
		defer both.Close()
		start := time.Now()
		lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
		leader, err := v3adapter.NewMembersAPI(both).Leader(lctx)
		lcancel()
		require.NoError(t, err)
		require.NotEmpty(t, leader.ID)
		require.Less(t, time.Since(start), 10*time.Second)
		// A failed read is not a write: no outcome to be unsure of.
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		_, err = pk.Get(rctx, "/unknown", nil)
		rcancel()
		require.Error(t, err)
		require.NotErrorIs(t, err, client.ErrOutcomeUnknown)
	})

	t.Run("no half-applied directory change", func(t *testing.T) {
		// A raw v3 watcher replays every revision into a model and checks
		// that no node is ever visible without its parent directory.
		start, err := cli.Get(ctx, "/v2keys/atom", clientv3.WithCountOnly())
		require.NoError(t, err)
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		wch := cli.Watch(wctx, "/v2keys/atom", clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1))
		const rounds = 40
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < rounds; i++ {
					var err error
					if g == 0 {
						_, err = k.Set(ctx, fmt.Sprintf("/atom/d%d/x/y", i%3), "v", nil)
					} else {
						_, err = k.Delete(ctx, "/atom", &client.DeleteOptions{Recursive: true})
						if client.IsKeyNotFound(err) {
							err = nil
						}
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		require.NoError(t, <-errs)
		end, err := cli.Get(ctx, "/v2keys/atom", clientv3.WithCountOnly())
		require.NoError(t, err)
		model := map[string]bool{}
		checked := int64(0)
		for resp := range wch {
			require.NoError(t, resp.Err())
			for i, ev := range resp.Events {
				key := strings.TrimPrefix(string(ev.Kv.Key), "/v2keys")
				model[key] = ev.Type == clientv3.EventTypePut
				if !model[key] {
					delete(model, key)
				}
				if i+1 < len(resp.Events) && resp.Events[i+1].Kv.ModRevision == ev.Kv.ModRevision {
					continue // check after the whole revision
				}
				for p := range model {
					if par := p[:strings.LastIndex(p, "/")]; par != "" {
						require.True(t, model[par], "revision %d: %s visible without %s", ev.Kv.ModRevision, p, par)
					}
				}
				checked = ev.Kv.ModRevision
			}
			if checked >= end.Header.Revision {
				break
			}
		}
		require.Equal(t, end.Header.Revision, checked)
	})
}
