package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/events"
	"github.com/etcdv2/client/integration/backend"
	"github.com/etcdv2/client/integration/testbed"
)

// eventWatch ranges over an events Watch in a goroutine; while blocked is
// set its loop body stalls, so the watch falls behind the history window.
type eventWatch struct {
	mu      sync.Mutex
	got     []events.Event
	err     error
	block   chan struct{}
	stalled chan struct{}
	wg      sync.WaitGroup
}

func watchEvents(t *testing.T, ev *events.Events, ctx context.Context, name string) *eventWatch {
	w := &eventWatch{stalled: make(chan struct{}, 1)}
	seq := ev.Watch(ctx, name)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for e, err := range seq {
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			w.got = append(w.got, e)
			b := w.block
			w.mu.Unlock()
			if b != nil {
				select {
				case w.stalled <- struct{}{}:
				default:
				}
				<-b
			}
		}
	}()
	t.Cleanup(w.wg.Wait)
	return w
}

func (w *eventWatch) ids() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, len(w.got))
	for i, e := range w.got {
		out[i] = e.ID
	}
	return out
}

func TestEventsDeliveredOnceInOrder(t *testing.T) {
	c := newCluster(t, testbed.Options{Size: 3})
	urls := c.ClientURLs()
	ev := events.New(newKAPI(t, urls), "/events")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	a := watchEvents(t, events.New(newKAPI(t, urls), "/events"), ctx, "deploy")
	fire := func(i int) string {
		fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
		defer fcancel()
		id, err := ev.Fire(fctx, "deploy", []byte(fmt.Sprint(i)))
		if err != nil {
			t.Logf("fire %d: %v", i, err)
			return ""
		}
		return id
	}
	var fired []string
	for i := 0; i < 40; i++ {
		fired = append(fired, fire(i))
	}
	// A watcher started now sees only what is fired from now on.
	b := watchEvents(t, events.New(newKAPI(t, urls), "/events"), ctx, "deploy")
	firstForB := len(fired)
	// Failover: kill the first member (the watchers' clients stick to it).
	m0 := c.Members()[0]
	m0.Kill(t)
	for i := 40; i < 80; i++ {
		fired = append(fired, fire(i))
	}
	m0.Restart(t)
	// Forced 401 for a: its loop stalls while more than 1000 writes pass.
	a.mu.Lock()
	a.block = make(chan struct{})
	a.mu.Unlock()
	fired = append(fired, fire(80))
	select {
	case <-a.stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher a did not receive event 80")
	}
	flood := newKAPI(t, urls)
	for i := 0; i < 1100; i++ {
		if i%50 == 0 {
			fired = append(fired, fire(81+i/50))
		}
		_, err := flood.Set(ctx, fmt.Sprintf("/flood/%d", i%50), "x", nil)
		require.NoError(t, err)
	}
	// On the adapter, compact what b has seen (all fired so far), no more.
	lastFired := ""
	for _, id := range fired {
		if id != "" {
			lastFired = id
		}
	}
	require.Eventually(t, func() bool { return slices.Contains(b.ids(), lastFired) }, 20*time.Second, 10*time.Millisecond)
	b.mu.Lock()
	bAt := b.got[len(b.got)-1].Index
	b.mu.Unlock()
	clearHistory(t, urls, bAt)
	// The stalled watcher's cursor is out of the window now (the test
	// proves something only if so).
	a.mu.Lock()
	stalledAt := a.got[len(a.got)-1].Index
	a.mu.Unlock()
	_, err := flood.Watcher("/events/deploy", &client.WatcherOptions{AfterIndex: stalledAt, Recursive: true}).Next(ctx)
	require.ErrorIs(t, err, client.Error{Code: client.ErrorCodeEventIndexCleared})
	a.mu.Lock()
	close(a.block)
	a.block = nil
	a.mu.Unlock()
	for i := 200; i < 220; i++ {
		fired = append(fired, fire(i))
	}

	list, err := ev.List(ctx, "deploy")
	require.NoError(t, err)
	all := make([]string, len(list))
	for i, e := range list {
		all[i] = e.ID
		if i > 0 {
			require.Greater(t, e.Index, list[i-1].Index)
		}
	}
	// Every acknowledged fire is listed, in firing order.
	known := []string{}
	for _, id := range fired {
		if id != "" {
			known = append(known, id)
		}
	}
	require.Subset(t, all, known)
	pos := map[string]int{}
	for i, id := range all {
		pos[id] = i
	}
	for i := 1; i < len(known); i++ {
		require.Less(t, pos[known[i-1]], pos[known[i]], "listed out of firing order")
	}
	caughtUp := func(w *eventWatch) bool {
		ids := w.ids()
		return len(ids) > 0 && ids[len(ids)-1] == all[len(all)-1]
	}
	require.Eventually(t, func() bool { return caughtUp(a) && caughtUp(b) }, 20*time.Second, 20*time.Millisecond,
		"the watchers did not catch up with the last event")
	cancel()
	a.wg.Wait()
	b.wg.Wait()
	require.ErrorIs(t, a.err, context.Canceled)
	require.Equal(t, all, a.ids(), "watcher a: every event once, in order")
	// b: exactly the events fired after its call: a suffix of the list
	// holding every fire acknowledged after it.
	gotB := b.ids()
	require.Equal(t, all[len(all)-len(gotB):], gotB, "watcher b is not a suffix of the list")
	for _, id := range fired[firstForB:] {
		if id != "" {
			require.Contains(t, gotB, id)
		}
	}
	for _, id := range fired[:firstForB] {
		require.NotContains(t, gotB, id, "b got an event fired before its call")
	}
}

func TestEventsExpireAndErrors(t *testing.T) {
	c := newCluster(t, testbed.Options{Size: 3})
	ev := events.New(newKAPI(t, c.ClientURLs()), "/events")
	ctx := context.Background()
	_, err := ev.Fire(ctx, "short", []byte("a"), events.WithTTL(time.Second))
	require.NoError(t, err)
	keep, err := ev.Fire(ctx, "short", []byte("b"), events.WithTTL(time.Hour))
	require.NoError(t, err)
	list, err := ev.List(ctx, "short")
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, []byte("a"), list[0].Payload)
	require.Eventually(t, func() bool {
		l, err := ev.List(ctx, "short")
		return err == nil && len(l) == 1 && l[0].ID == keep
	}, 5*time.Second, 50*time.Millisecond, "the expired event is still listed")

	empty, err := ev.List(ctx, "never")
	require.NoError(t, err)
	require.Empty(t, empty)
	_, err = ev.Fire(ctx, "_x", nil)
	require.ErrorIs(t, err, events.ErrInvalid)
	_, err = ev.Fire(ctx, "x", nil, events.WithTTL(time.Millisecond))
	require.ErrorIs(t, err, events.ErrInvalid)

	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	_, err = ev.Fire(cctx, "x", nil)
	require.ErrorIs(t, err, context.Canceled)
	_, err = ev.List(cctx, "x")
	require.ErrorIs(t, err, context.Canceled)
	for _, err := range ev.Watch(cctx, "x") {
		require.ErrorIs(t, err, context.Canceled)
	}

	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	n := 0
	for _, err := range ev.Watch(wctx, "quiet") {
		require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
		n++
	}
	require.Equal(t, 1, n)
}

// TestEventsWatchLeavesIsolatedMember cuts the member an events watch is
// on off from its peers; the watch's progress check (every 10 s) must
// notice, and the events fired meanwhile arrive, once, in order.
func TestEventsWatchLeavesIsolatedMember(t *testing.T) {
	backend.FromEnv(t).SkipOnAdapter(t, "needs a client that prefers one member and reads stale data from it")
	c := newCluster(t, testbed.Options{Size: 3, ProxyPeers: true})
	ms := c.Members()
	urls := []string{ms[0].URL(), ms[1].URL(), ms[2].URL()}
	ev := events.New(newKAPI(t, []string{ms[1].URL(), ms[2].URL()}), "/events")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := watchEvents(t, events.New(preferring(t, urls, ms[0].URL()), "/events"), ctx, "iso")
	var fired []string
	id, err := ev.Fire(ctx, "iso", []byte("before"))
	require.NoError(t, err)
	fired = append(fired, id)
	require.Eventually(t, func() bool { return len(w.ids()) == 1 }, 5*time.Second, 10*time.Millisecond)
	ms[0].Isolate(t)
	start := time.Now()
	waitQuorum(t, newKAPI(t, []string{ms[1].URL(), ms[2].URL()}))
	for i := 0; i < 5; i++ {
		id, err := ev.Fire(ctx, "iso", []byte(fmt.Sprint(i)))
		require.NoError(t, err)
		fired = append(fired, id)
	}
	require.Eventually(t, func() bool { return len(w.ids()) == len(fired) }, 40*time.Second, 50*time.Millisecond,
		"the watch stayed on the isolated member")
	t.Logf("caught up %v after the isolation", time.Since(start).Round(time.Millisecond))
	cancel()
	w.wg.Wait()
	require.Equal(t, fired, w.ids())
}
