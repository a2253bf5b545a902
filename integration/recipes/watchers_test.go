package recipes_test

import (
	"context"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client/concurrency"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/internal/leakcheck"
)

// sharedPolls counts the goroutines running one of the native client's
// shared watch polls (one per watched key with watchers subscribed).
func sharedPolls() int {
	n := 0
	for _, g := range leakcheck.Stacks() {
		if strings.Contains(g, ".(*watchShare).run(") {
			n++
		}
	}
	return n
}

// waitSharedPolls waits until want holds of the number of shared polls.
func waitSharedPolls(t *testing.T, what string, want func(n int) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		n := sharedPolls()
		if want(n) {
			return
		}
		require.True(t, time.Now().Before(deadline) && i < 1000, "%s: %d shared polls", what, n)
		time.Sleep(5 * time.Millisecond) // a goroutine's start or end is no event to wait on
	}
}

// TestWatchersLeaveSharedPolls: the watchers of the recipes leave the
// client's shared polls once used: after a mutex hand-off, after an Observe
// loop was stopped, after a Barrier.Wait and a Queue.Dequeue woken by an
// event, no shared poll is left (a poll and its goroutine stay while a
// watcher is subscribed, and a watcher left subscribed leaves only when it
// is garbage-collected).
//
// Not parallel: it counts every shared poll of the process, and runs before
// the parallel tests start.
func TestWatchersLeaveSharedPolls(t *testing.T) {
	skipOnAdapter(t, "counts the shared polls of the native client")
	// No GC while it runs: it would let dropped watchers leave their polls.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	none := func(n int) bool { return n == 0 }
	some := func(n int) bool { return n > 0 }
	waitSharedPolls(t, "before", none)
	s1 := newSession(t, kapi, 10*time.Second)
	s2 := newSession(t, kapi, 10*time.Second)

	// Mutex hand-off: the waiter watched its predecessor's node.
	m1 := concurrency.NewMutex(s1, "/leave/lock")
	m2 := concurrency.NewMutex(s2, "/leave/lock")
	require.NoError(t, m1.Lock(ctx))
	locked := make(chan error, 1)
	go func() { locked <- m2.Lock(ctx) }()
	waitSharedPolls(t, "waiter watching", some)
	require.NoError(t, m1.Unlock(ctx))
	require.NoError(t, <-locked)
	waitSharedPolls(t, "after the hand-off", none)
	require.NoError(t, m2.Unlock(ctx))

	// Observe, stopped after the first leader, which comes by an event.
	first := make(chan concurrency.Leader, 1)
	observed := make(chan error, 1)
	go func() {
		for l, err := range concurrency.NewElection(s1, "/leave/election").Observe(ctx) {
			if err != nil {
				observed <- err
				return
			}
			first <- l
			break
		}
		observed <- nil
	}()
	waitSharedPolls(t, "Observe watching", some)
	e := concurrency.NewElection(s2, "/leave/election")
	require.NoError(t, e.Campaign(ctx, "x"))
	require.NoError(t, <-observed)
	require.Equal(t, "x", (<-first).Value)
	waitSharedPolls(t, "after Observe stopped", none)
	require.NoError(t, e.Resign(ctx))

	// Barrier.Wait woken by the release.
	b := concurrency.NewBarrier(kapi, "/leave/barrier")
	require.NoError(t, b.Hold(ctx))
	waited := make(chan error, 1)
	go func() { waited <- b.Wait(ctx) }()
	waitSharedPolls(t, "Barrier.Wait watching", some)
	require.NoError(t, b.Release(ctx))
	require.NoError(t, <-waited)
	waitSharedPolls(t, "after Barrier.Wait", none)

	// Queue.Dequeue woken by an item.
	q := concurrency.NewQueue(kapi, "/leave/queue")
	got := make(chan string, 1)
	go func() {
		v, _ := q.Dequeue(ctx)
		got <- v
	}()
	waitSharedPolls(t, "Queue.Dequeue watching", some)
	require.NoError(t, q.Enqueue(ctx, "item"))
	require.Equal(t, "item", <-got)
	waitSharedPolls(t, "after Queue.Dequeue", none)
}
