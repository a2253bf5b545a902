package recipes_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/concurrency"
	"github.com/etcdv2/client/integration/testbed"
)

// flood writes n keys under prefix with 8 writers.
func flood(t testing.TB, kapi client.KeysAPI, prefix string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := kapi.Set(ctx, fmt.Sprintf("%s/%d", prefix, i%50), "x", nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
}

// TestMutexResyncAfter401: a waiter's only endpoint goes silent (black hole)
// while the holder releases and 1500 unrelated writes push the waiter's
// watch cursor out of etcd's 1000-event history. When the endpoint comes
// back the waiter's watch gets 401, it lists again (quorum) and is granted.
func TestMutexResyncAfter401(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3, ProxyClients: true})
	ms := c.Members()
	holderK, _ := newClient(t, []string{ms[1].URL(), ms[2].URL()})
	waiterK, wtr := newClient(t, []string{ms[0].URL()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	h := concurrency.NewMutex(newSession(t, holderK, 10*time.Second), "/resync/lock")
	require.NoError(t, h.Lock(ctx))
	w := concurrency.NewMutex(newSession(t, waiterK, 20*time.Second), "/resync/lock")
	errc := make(chan error, 1)
	go func() { errc <- w.Lock(ctx) }()
	waitChildren(t, holderK, "/resync/lock", 2)
	waitWatch(t, wtr)
	holderTok := h.Token()

	ms[0].Proxy().BlackHole(true)
	require.NoError(t, h.Unlock(ctx))
	flood(t, holderK, "/flood", 1500)
	clearHistory(t, []string{ms[1].URL(), ms[2].URL()})
	ms[0].Proxy().BlackHole(false)
	ms[0].Proxy().ResetAll()

	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the waiter was not granted after the endpoint came back")
	}
	require.Greater(t, w.Token(), holderTok)
	require.GreaterOrEqual(t, wtr.cleared.Load(), int64(1), "the waiter's watch never got 401")
	require.NoError(t, w.Unlock(ctx))
}

// waitWatch waits until tr has sent a watch request.
func waitWatch(t testing.TB, tr *countingTransport) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tr.watches.Load() == 0 {
		require.True(t, time.Now().Before(deadline), "no watch sent")
		time.Sleep(10 * time.Millisecond) // polled counter, bounded
	}
}

// TestObserveAfter401: an observer whose only endpoint goes silent while the
// leader changes and 1500 writes push its cursor out of the history: after
// the 401 it lists again and delivers the new leader; tokens keep rising.
func TestObserveAfter401(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3, ProxyClients: true})
	ms := c.Members()
	k, _ := newClient(t, []string{ms[1].URL(), ms[2].URL()})
	obsK, otr := newClient(t, []string{ms[0].URL()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	a := concurrency.NewElection(newSession(t, k, 10*time.Second), "/obs401/svc")
	b := concurrency.NewElection(newSession(t, k, 10*time.Second), "/obs401/svc")
	require.NoError(t, a.Campaign(ctx, "a"))
	la, err := a.Leader(ctx)
	require.NoError(t, err)
	obs := startObserver(t, concurrency.NewElection(newSession(t, obsK, 20*time.Second), "/obs401/svc"))
	obs.waitFor(t, la, 20*time.Second)
	waitWatch(t, otr)

	ms[0].Proxy().BlackHole(true)
	errc := make(chan error, 1)
	go func() { errc <- b.Campaign(ctx, "b") }()
	waitChildren(t, k, "/obs401/svc", 2)
	require.NoError(t, a.Resign(ctx))
	require.NoError(t, <-errc)
	lb, err := b.Leader(ctx)
	require.NoError(t, err)
	flood(t, k, "/flood", 1500)
	clearHistory(t, []string{ms[1].URL(), ms[2].URL()})
	ms[0].Proxy().BlackHole(false)
	ms[0].Proxy().ResetAll()

	seen := obs.waitFor(t, lb, 30*time.Second)
	require.Equal(t, []concurrency.Leader{la, lb}, seen)
	require.GreaterOrEqual(t, otr.cleared.Load(), int64(1), "the observer's watch never got 401")
	require.NoError(t, b.Resign(ctx))
}

// TestObserveQuietStretch: Observe's wait is capped (then the cluster is
// probed with a quorum read and the watch resumes from its cursor); a
// change after a stretch longer than the cap is still delivered, once.
func TestObserveQuietStretch(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	k, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := concurrency.NewElection(newSession(t, k, 10*time.Second), "/quiet/svc")
	require.NoError(t, a.Campaign(ctx, "a"))
	la, err := a.Leader(ctx)
	require.NoError(t, err)
	obs := startObserver(t, concurrency.NewElection(newSession(t, k, 10*time.Second), "/quiet/svc"))
	obs.waitFor(t, la, 20*time.Second)
	time.Sleep(12 * time.Second) // longer than Observe's 10s cap: the quiet stretch is what is tested
	require.NoError(t, a.Proclaim(ctx, "a2"))
	la.Value = "a2"
	seen := obs.waitFor(t, la, 20*time.Second)
	require.Len(t, seen, 2)
	require.NoError(t, a.Resign(ctx))
}
