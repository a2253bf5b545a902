package v3adapter_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// watchedEvent is what two watchers of the same history must agree on.
type watchedEvent struct {
	Action string
	Key    string
	Index  uint64
}

// TestWatchDeleteOrExpireIsTheWrites checks, on a 1-member etcd 3.7
// cluster, that whether a watcher reports a delete, a compare-and-delete
// or an expiry depends on the write alone, not on when the watcher reads
// the event: a watcher that reads the history live and one that reads it
// after the TTLs ran out report the same events. Keys with a TTL (their
// own, or their directory's lease) deleted before they expire are deletes
// for both; keys whose lease ran out are expiries for both.
func TestWatchDeleteOrExpireIsTheWrites(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Version: "3.7"})
	cli := newV3(t, c)
	k := v3adapter.NewKeysAPI(cli)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	start, err := k.Set(ctx, "/da/start", "s", nil)
	require.NoError(t, err)
	live := k.Watcher("/da", &client.WatcherOptions{AfterIndex: start.Index, Recursive: true})

	_, err = k.Set(ctx, "/da/k", "v", &client.SetOptions{TTL: time.Second})
	require.NoError(t, err)
	_, err = k.Set(ctx, "/da/late", "v", &client.SetOptions{TTL: time.Second}) // expires after /da/k
	require.NoError(t, err)
	d, err := k.Delete(ctx, "/da/k", nil)
	require.NoError(t, err)
	require.Equal(t, "delete", d.Action)
	_, err = k.Set(ctx, "/da/t", "", &client.SetOptions{Dir: true, TTL: time.Second})
	require.NoError(t, err)
	x, err := k.Set(ctx, "/da/t/x", "v", nil) // on the directory's lease
	require.NoError(t, err)
	dx, err := k.Delete(ctx, "/da/t/x", nil)
	require.NoError(t, err)
	require.Equal(t, "delete", dx.Action)
	_, err = k.Set(ctx, "/da/c", "v", &client.SetOptions{TTL: time.Second})
	require.NoError(t, err)
	cad, err := k.Delete(ctx, "/da/c", &client.DeleteOptions{PrevValue: "v"})
	require.NoError(t, err)
	require.Equal(t, "compareAndDelete", cad.Action)

	// The live watcher reads until both leases left have run out: by then
	// every TTL above has passed.
	var got []watchedEvent
	expired := map[string]bool{}
	for len(expired) < 2 {
		ev, err := live.Next(ctx)
		require.NoError(t, err)
		got = append(got, watchedEvent{ev.Action, ev.Node.Key, ev.Node.ModifiedIndex})
		if ev.Action == "expire" {
			expired[ev.Node.Key] = true
		}
	}
	want := map[string]string{"/da/k": "delete", "/da/t/x": "delete", "/da/c": "compareAndDelete", "/da/late": "expire", "/da/t": "expire"}
	removals := map[string]string{}
	for _, ev := range got {
		switch ev.Action {
		case "delete", "compareAndDelete", "expire":
			removals[ev.Key] = ev.Action
		}
	}
	require.Equal(t, want, removals, "live: %v", got)

	// The same history read afterwards.
	late := k.Watcher("/da", &client.WatcherOptions{AfterIndex: start.Index, Recursive: true})
	for i, w := range got {
		ev, err := late.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, w, watchedEvent{ev.Action, ev.Node.Key, ev.Node.ModifiedIndex}, "event %d read after the TTLs ran out", i)
	}
	// And from the key itself: the key's own delete, not its lease's end.
	ev, err := k.Watcher("/da/t/x", &client.WatcherOptions{AfterIndex: x.Index}).Next(ctx)
	require.NoError(t, err)
	require.Equal(t, watchedEvent{"delete", "/da/t/x", dx.Index}, watchedEvent{ev.Action, ev.Node.Key, ev.Node.ModifiedIndex})

	// A key on a lease deleted by another program leaves no marker: it
	// reaches watchers as an expiry (documented difference).
	o, err := k.Set(ctx, "/da/other", "v", &client.SetOptions{TTL: time.Minute})
	require.NoError(t, err)
	raw, err := cli.Delete(ctx, "/v2keys/da/other")
	require.NoError(t, err)
	require.EqualValues(t, 1, raw.Deleted)
	ev, err = k.Watcher("/da/other", &client.WatcherOptions{AfterIndex: o.Index}).Next(ctx)
	require.NoError(t, err)
	require.Equal(t, watchedEvent{"expire", "/da/other", uint64(raw.Header.Revision)}, watchedEvent{ev.Action, ev.Node.Key, ev.Node.ModifiedIndex})
}

// TestMigrateSweepIsADelete checks that a key Migrate deletes from the
// target because the source lacks it reaches watchers as a delete, also a
// key with a TTL (on a lease), on etcd 3.5.
func TestMigrateSweepIsADelete(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{})
	src := newV2(t, c)
	cli := newV3(t, c)
	dst := v3adapter.NewKeysAPI(cli)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := src.Set(ctx, "/keep", "v", nil)
	require.NoError(t, err)
	stale, err := dst.Set(ctx, "/stale", "v", &client.SetOptions{TTL: time.Minute})
	require.NoError(t, err)
	_, err = v3adapter.Migrate(ctx, src, cli, v3adapter.MigrateOptions{Quiet: 200 * time.Millisecond})
	require.NoError(t, err)
	ev, err := dst.Watcher("/stale", &client.WatcherOptions{AfterIndex: stale.Index}).Next(ctx)
	require.NoError(t, err)
	require.Equal(t, "delete", ev.Action)
	require.Equal(t, "/stale", ev.Node.Key)
}

// TestWatchDeleteCompactedBeforeMarkerRead checks, on a 1-member etcd 3.7
// cluster, that a watcher that received a delete event but finds its
// revision compacted when it reads the delete marker returns error 401
// (it cannot tell a delete from an expiry any more), as for a compacted
// start revision. The watcher's stream goes through a proxy delaying every
// chunk by 2 s; the compaction happens after the server sent the event
// (its events counter moved) and before the watcher got it.
func TestWatchDeleteCompactedBeforeMarkerRead(t *testing.T) {
	t.Parallel()
	m, direct, slow := slowStreamMember(t, 30*time.Second)
	k := v3adapter.NewKeysAPI(direct)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, err := k.Set(ctx, "/z/k", "v", nil)
	require.NoError(t, err)
	d, err := k.Delete(ctx, "/z/k", nil)
	require.NoError(t, err)
	later, err := k.Set(ctx, "/z/later", "v", nil)
	require.NoError(t, err)

	sent := func() float64 {
		resp, err := http.Get(m.ClientURL() + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "etcd_debugging_mvcc_events_total "); ok {
				f, err := strconv.ParseFloat(v, 64)
				require.NoError(t, err)
				return f
			}
		}
		require.NoError(t, sc.Err())
		t.Fatal("no etcd_debugging_mvcc_events_total in /metrics")
		return 0
	}
	before := sent()
	m.Proxy().SetDelay(2 * time.Second)
	type result struct {
		ev  *client.Response
		err error
	}
	got := make(chan result, 1)
	go func() {
		ev, err := v3adapter.NewKeysAPI(slow).Watcher("/z/k", &client.WatcherOptions{AfterIndex: d.Index - 1}).Next(ctx)
		got <- result{ev, err}
	}()
	require.Eventually(t, func() bool { return sent() > before }, 30*time.Second, 10*time.Millisecond, "the server never sent the delete")
	_, err = direct.Compact(ctx, int64(later.Index))
	require.NoError(t, err)
	select {
	case r := <-got:
		t.Fatalf("the watcher answered (%v, %v) before the compaction: the proxy's delay is too short here", r.ev, r.err)
	default:
	}
	r := <-got
	require.ErrorIs(t, r.err, client.Error{Code: client.ErrorCodeEventIndexCleared}, "got %v", r.ev)
}
