package cache_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/cache"
	"github.com/etcdv2/client/internal/leakcheck"
)

// The behaviour against real servers is tested in integration/discovery.
// These tests drive the cache with a scripted KeysAPI for what a real
// server cannot be made to do on demand: answer for another cluster.

func TestMain(m *testing.M) { leakcheck.Main(m) }

// step is one scripted answer: a listing (for Get) or a watch result.
type step struct {
	resp *client.Response
	err  error
}

// scripted is a KeysAPI whose Get and Watcher.Next return scripted
// answers, in order.
type scripted struct {
	client.KeysAPI // nil: the cache must not call anything else
	gets           chan step
	events         chan step
	mu             sync.Mutex
	watchedAfter   []uint64
	// released, when set, gets a value for each Next called with a
	// context that had already ended (a watcher released after its
	// last use).
	released chan struct{}
}

func (s *scripted) Get(ctx context.Context, key string, opts *client.GetOptions) (*client.Response, error) {
	if !opts.Quorum || !opts.Recursive {
		return nil, errors.New("the cache must list with a recursive quorum read")
	}
	select {
	case st := <-s.gets:
		return st.resp, st.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *scripted) Watcher(key string, opts *client.WatcherOptions) client.Watcher {
	s.mu.Lock()
	s.watchedAfter = append(s.watchedAfter, opts.AfterIndex)
	s.mu.Unlock()
	return s
}

func (s *scripted) Next(ctx context.Context) (*client.Response, error) {
	if err := ctx.Err(); err != nil {
		// As the client's watchers do: an ended context takes no event.
		if s.released != nil {
			s.released <- struct{}{}
		}
		return nil, err
	}
	select {
	case st := <-s.events:
		return st.resp, st.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func listing(index uint64, cluster string, kv ...string) step {
	root := &client.Node{Key: "/p", Dir: true}
	for i := 0; i < len(kv); i += 2 {
		root.Nodes = append(root.Nodes, &client.Node{Key: "/p/" + kv[i], Value: kv[i+1], CreatedIndex: 1, ModifiedIndex: 1})
	}
	return step{resp: &client.Response{Action: "get", Node: root, Index: index, ClusterID: cluster}}
}

func event(action, key, value string, index uint64, cluster string) step {
	return step{resp: &client.Response{Action: action, Node: &client.Node{Key: key, Value: value, CreatedIndex: index, ModifiedIndex: index}, ClusterID: cluster}}
}

func next(t *testing.T, evs <-chan cache.Event) cache.Event {
	t.Helper()
	select {
	case ev := <-evs:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return cache.Event{}
}

func TestResyncOnClusterChangeAnd401(t *testing.T) {
	s := &scripted{gets: make(chan step, 4), events: make(chan step, 8)}
	c := cache.New(s, "/p/")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := make(chan cache.Event, 64)
	seq := c.Events(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	var subErr, runErr error
	go func() {
		defer wg.Done()
		for ev, err := range seq {
			if err != nil {
				subErr = err
				return
			}
			evs <- ev
		}
	}()
	go func() { defer wg.Done(); runErr = c.Run(ctx) }()

	s.gets <- listing(10, "A", "a", "1")
	require.NoError(t, c.WaitSynced(ctx))
	ev := next(t, evs)
	require.Equal(t, cache.Event{Type: cache.Put, Node: ev.Node, Index: 10, Action: "resync", Resync: true}, ev)
	require.Equal(t, "/p/a", ev.Node.Key)

	s.events <- event("set", "/p/_hidden", "x", 11, "A")
	s.events <- event("set", "/p/b", "2", 12, "A")
	ev = next(t, evs)
	require.Equal(t, "/p/b", ev.Node.Key, "a hidden key is not cached")
	require.False(t, ev.Resync)
	require.Equal(t, uint64(12), c.Index())

	// An event of another cluster: list again; its lower indexes are taken
	// as they are and the difference is reported.
	s.events <- event("set", "/p/c", "3", 3, "B")
	s.gets <- listing(5, "B", "a", "1", "c", "3")
	got := []cache.Event{next(t, evs), next(t, evs)}
	require.Equal(t, cache.Put, got[0].Type)
	require.Equal(t, "/p/c", got[0].Node.Key)
	require.Equal(t, cache.Delete, got[1].Type)
	require.Equal(t, "/p/b", got[1].Node.Key)
	require.Equal(t, uint64(5), got[1].Index)
	for _, e := range got {
		require.True(t, e.Resync)
	}
	require.Equal(t, uint64(5), c.Index())

	// 401: list again, watch from the listing.
	s.events <- step{err: client.Error{Code: client.ErrorCodeEventIndexCleared, Index: 2000}}
	s.gets <- listing(2000, "B", "a", "1", "c", "3", "d", "4")
	ev = next(t, evs)
	require.Equal(t, "/p/d", ev.Node.Key)
	require.True(t, ev.Resync)
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.watchedAfter) == 3
	}, 5*time.Second, 5*time.Millisecond)
	s.mu.Lock()
	require.Equal(t, []uint64{10, 5, 2000}, s.watchedAfter, "each watch starts at its listing's index")
	s.mu.Unlock()

	// Events below the applied index are not applied twice.
	s.events <- event("set", "/p/a", "old", 1999, "B")
	s.events <- event("delete", "/p/a", "", 2001, "B")
	ev = next(t, evs)
	require.Equal(t, cache.Delete, ev.Type)
	require.Equal(t, uint64(2001), ev.Index)
	require.Equal(t, "1", ev.PrevNode.Value)
	_, ok := c.Get("/p/a")
	require.False(t, ok)
	require.Len(t, c.List("/p/"), 2)

	cancel()
	wg.Wait()
	require.ErrorIs(t, runErr, context.Canceled)
	require.ErrorIs(t, subErr, context.Canceled)
	require.ErrorIs(t, c.Run(context.Background()), cache.ErrRunning)
	for _, err := range c.Events(context.Background()) {
		require.ErrorIs(t, err, cache.ErrStopped)
	}
}

func TestOptions(t *testing.T) {
	s := &scripted{gets: make(chan step, 1), events: make(chan step, 4)}
	var handled []string
	c := cache.New(s, "/p", cache.WithDepth(1),
		cache.WithFilter(func(n *client.Node) bool { return n.Value != "skip" }),
		cache.WithEventHandler(func(ev cache.Event) { handled = append(handled, ev.Type.String()+" "+ev.Node.Key) }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	s.gets <- listing(10, "A", "a", "1", "b", "skip")
	require.NoError(t, c.WaitSynced(ctx))
	s.events <- event("set", "/p/d/deep", "x", 11, "A") // below the depth: only /p/d is kept
	s.events <- event("set", "/p/a", "skip", 12, "A")   // stops passing the filter: removed
	s.events <- event("set", "/p/e", "5", 13, "A")
	require.Eventually(t, func() bool { return c.Index() == 13 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.Equal(t, []string{"put /p/a", "put /p/d", "delete /p/a", "put /p/e"}, handled)
	keys := []string{}
	for _, n := range c.List("") {
		keys = append(keys, n.Key)
	}
	require.Equal(t, []string{"/p/d", "/p/e"}, keys)

	wctx, wcancel := context.WithCancel(context.Background())
	wcancel()
	require.ErrorIs(t, cache.New(s, "/q").WaitSynced(wctx), context.Canceled)
}

// A watch round that ends on a cluster change releases its watcher (a
// Next with an ended context): with the client's shared polls, a watcher
// stays subscribed to its poll until then (or until it is
// garbage-collected).
func TestWatcherReleasedAfterClusterChange(t *testing.T) {
	s := &scripted{gets: make(chan step, 2), events: make(chan step, 2), released: make(chan struct{}, 8)}
	c := cache.New(s, "/p")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	s.gets <- listing(10, "A", "a", "1")
	require.NoError(t, c.WaitSynced(ctx))
	s.events <- event("set", "/p/b", "2", 3, "B") // another cluster: list again
	select {
	case <-s.released:
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher of the round that ended was not released")
	}
	s.gets <- listing(5, "B", "a", "1", "b", "2")
	require.Eventually(t, func() bool { return c.Index() == 5 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}
