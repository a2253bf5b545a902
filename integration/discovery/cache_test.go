package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/cache"
	"github.com/etcdv2/client/integration/backend"
	"github.com/etcdv2/client/integration/testbed"
)

// flatNode is what the comparisons look at.
type flatNode struct {
	Dir               bool
	Value             string
	Created, Modified uint64
}

func flatOf(n *client.Node) flatNode {
	return flatNode{Dir: n.Dir, Value: n.Value, Created: n.CreatedIndex, Modified: n.ModifiedIndex}
}

func hiddenBelow(prefix, key string) bool {
	rel := strings.TrimPrefix(key, prefix+"/")
	for _, s := range strings.Split(rel, "/") {
		if strings.HasPrefix(s, "_") {
			return true
		}
	}
	return false
}

// snapshot is a quorum listing of prefix, flattened, without hidden nodes.
func snapshot(t *testing.T, kapi client.KeysAPI, prefix string) (map[string]flatNode, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kapi.Get(ctx, prefix, &client.GetOptions{Recursive: true, Quorum: true})
	out := map[string]flatNode{}
	if client.IsKeyNotFound(err) {
		return out, 0
	}
	require.NoError(t, err)
	var walk func(n *client.Node)
	walk = func(n *client.Node) {
		for _, ch := range n.Nodes {
			if hiddenBelow(prefix, ch.Key) {
				continue
			}
			out[ch.Key] = flatOf(ch)
			walk(ch)
		}
	}
	walk(resp.Node)
	return out, resp.Index
}

func cacheContent(c *cache.Cache) map[string]flatNode {
	out := map[string]flatNode{}
	for _, n := range c.List("") {
		out[n.Key] = flatOf(n)
	}
	return out
}

// recorder watches a prefix from an index and must keep up (a 401 fails
// the test): it is the ground truth of what happened, in index order.
type recorder struct {
	mu     sync.Mutex
	events []*client.Response
	err    error
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

func startRecorder(t *testing.T, kapi client.KeysAPI, prefix string, after uint64) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{cancel: cancel}
	w := kapi.Watcher(prefix, &client.WatcherOptions{AfterIndex: after, Recursive: true})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			ev, err := w.Next(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, client.Error{Code: client.ErrorCodeEventIndexCleared}) {
					r.mu.Lock()
					r.err = err
					r.mu.Unlock()
					return
				}
				time.Sleep(50 * time.Millisecond)
				continue
			}
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *recorder) stop() { r.cancel(); r.wg.Wait() }

// sawIndex reports whether r recorded an event at index i or later.
func (r *recorder) sawIndex(i uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events) > 0 && r.events[len(r.events)-1].Node.ModifiedIndex >= i
}

func (r *recorder) sawKey(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if ev.Node != nil && ev.Node.Key == key {
			return true
		}
	}
	return false
}

// eventLog collects a cache's Events.
type eventLog struct {
	mu     sync.Mutex
	events []cache.Event
	wg     sync.WaitGroup
}

func collect(ctx context.Context, c *cache.Cache) *eventLog {
	l := &eventLog{}
	seq := c.Events(ctx)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for ev, err := range seq {
			if err != nil {
				return
			}
			l.mu.Lock()
			l.events = append(l.events, ev)
			l.mu.Unlock()
		}
	}()
	return l
}

// gate blocks the cache's event handler while closed.
type gate struct {
	mu      sync.Mutex
	blocked chan struct{}
	entered chan struct{}
}

func (g *gate) handler(cache.Event) {
	g.mu.Lock()
	b, e := g.blocked, g.entered
	g.mu.Unlock()
	if b == nil {
		return
	}
	select {
	case e <- struct{}{}:
	default:
	}
	<-b
}

func (g *gate) close() {
	g.mu.Lock()
	g.blocked, g.entered = make(chan struct{}), make(chan struct{}, 1)
	g.mu.Unlock()
}

func (g *gate) open() {
	g.mu.Lock()
	if g.blocked != nil {
		close(g.blocked)
	}
	g.blocked = nil
	g.mu.Unlock()
}

// workload performs random operations under prefix.
type workload struct {
	kapi   client.KeysAPI
	prefix string
	rng    *rand.Rand
	n      int
}

func (w *workload) key() string {
	switch w.rng.IntN(3) {
	case 0:
		return fmt.Sprintf("%s/k%d", w.prefix, w.rng.IntN(12))
	case 1:
		return fmt.Sprintf("%s/d%d/k%d", w.prefix, w.rng.IntN(3), w.rng.IntN(4))
	default:
		return fmt.Sprintf("%s/d%d/e/k%d", w.prefix, w.rng.IntN(3), w.rng.IntN(3))
	}
}

func (w *workload) step(ctx context.Context) {
	w.n++
	k := w.key()
	v := fmt.Sprintf("v%d", w.n)
	switch w.rng.IntN(12) {
	case 0, 1:
		_, _ = w.kapi.Set(ctx, k, v, nil)
	case 2:
		_, _ = w.kapi.Create(ctx, k, v)
	case 3:
		_, _ = w.kapi.Update(ctx, k, v)
	case 4:
		if r, err := w.kapi.Get(ctx, k, &client.GetOptions{Quorum: true}); err == nil && !r.Node.Dir {
			_, _ = w.kapi.Set(ctx, k, v, &client.SetOptions{PrevIndex: r.Node.ModifiedIndex})
		}
	case 5:
		if r, err := w.kapi.Get(ctx, k, &client.GetOptions{Quorum: true}); err == nil && !r.Node.Dir {
			_, _ = w.kapi.Delete(ctx, k, &client.DeleteOptions{PrevIndex: r.Node.ModifiedIndex})
		}
	case 6:
		_, _ = w.kapi.Delete(ctx, k, nil)
	case 7:
		_, _ = w.kapi.Set(ctx, k, v, &client.SetOptions{TTL: time.Second})
	case 8:
		d := fmt.Sprintf("%s/t%d", w.prefix, w.rng.IntN(3))
		if _, err := w.kapi.Set(ctx, d, "", &client.SetOptions{Dir: true, TTL: time.Second, PrevExist: client.PrevNoExist}); err == nil {
			_, _ = w.kapi.Set(ctx, d+"/x", v, nil)
			_, _ = w.kapi.Set(ctx, d+"/y/z", v, nil)
		}
	case 9:
		_, _ = w.kapi.Delete(ctx, fmt.Sprintf("%s/d%d", w.prefix, w.rng.IntN(3)), &client.DeleteOptions{Recursive: true})
	case 10:
		_, _ = w.kapi.CreateInOrder(ctx, w.prefix+"/q", v, nil)
	case 11:
		_, _ = w.kapi.Set(ctx, w.prefix+"/_hidden/"+v, v, nil)
	}
}

func (w *workload) run(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		w.step(ctx)
	}
}

func typeOf(action string) cache.EventType {
	switch action {
	case "delete", "expire", "compareAndDelete":
		return cache.Delete
	}
	return cache.Put
}

// checkStream checks a cache's event stream against the recorder's
// events of prefix: every event the cache received from a watch is the
// recorder's event at that index, once, in index order; every recorder
// event the cache did not receive falls in a gap that a resync covered;
// and applying the stream to an empty map gives want.
func checkStream(t *testing.T, prefix string, rec []*client.Response, got []cache.Event, want map[string]flatNode) (live, resyncs int) {
	t.Helper()
	byIndex := map[uint64]*client.Response{}
	var recIdx []uint64
	for _, ev := range rec {
		if ev.Node == nil || ev.Node.Key == prefix || hiddenBelow(prefix, ev.Node.Key) {
			continue
		}
		if !strings.HasPrefix(ev.Node.Key, prefix+"/") {
			continue
		}
		byIndex[ev.Node.ModifiedIndex] = ev
		recIdx = append(recIdx, ev.Node.ModifiedIndex)
	}
	for i := 1; i < len(got); i++ {
		require.GreaterOrEqual(t, got[i].Index, got[i-1].Index, "event %d goes back in index", i)
	}
	// Group live events by index.
	type group struct {
		index        uint64
		resyncBefore bool
	}
	var groups []group
	delivered := map[uint64]bool{}
	resyncSince := false
	var lastLive uint64
	for i := 0; i < len(got); i++ {
		ev := got[i]
		if ev.Resync {
			if i == 0 || !got[i-1].Resync {
				resyncs++
			}
			resyncSince = true
			continue
		}
		// The last live event of this index is the write itself; the
		// ones before it are directories the write created.
		j := i
		for j+1 < len(got) && !got[j+1].Resync && got[j+1].Index == ev.Index {
			j++
		}
		main := got[j]
		r, ok := byIndex[main.Index]
		require.True(t, ok, "cache event %s %s at %d is not in the recorder's history", main.Type, main.Node.Key, main.Index)
		require.Greater(t, main.Index, lastLive, "cache events out of order or repeated at %d", main.Index)
		require.False(t, delivered[main.Index], "index %d delivered twice", main.Index)
		require.Equal(t, r.Node.Key, main.Node.Key, "key of the event at %d", main.Index)
		require.Equal(t, typeOf(r.Action), main.Type, "type of the event at %d (%s)", main.Index, r.Action)
		require.Equal(t, r.Action, main.Action, "action of the event at %d (%s)", main.Index, main.Node.Key)
		if main.Type == cache.Put {
			require.Equal(t, r.Node.Value, main.Node.Value, "value of the event at %d (%s)", main.Index, main.Node.Key)
		}
		for k := i; k < j; k++ {
			require.True(t, got[k].Node.Dir && strings.HasPrefix(main.Node.Key, got[k].Node.Key+"/"),
				"extra event %s %s at %d", got[k].Type, got[k].Node.Key, got[k].Index)
		}
		delivered[main.Index] = true
		groups = append(groups, group{index: main.Index, resyncBefore: resyncSince})
		resyncSince = false
		lastLive = main.Index
		live++
		i = j
	}
	trailingResync := resyncSince
	for _, idx := range recIdx {
		if delivered[idx] {
			continue
		}
		k := sort.Search(len(groups), func(i int) bool { return groups[i].index > idx })
		covered := (k < len(groups) && groups[k].resyncBefore) || (k == len(groups) && trailingResync)
		require.True(t, covered, "the recorder's %s %s at %d is missing from the cache's events and no resync covers it",
			byIndex[idx].Action, byIndex[idx].Node.Key, idx)
	}
	// Replay.
	state := map[string]flatNode{}
	for _, ev := range got {
		k := ev.Node.Key
		switch ev.Type {
		case cache.Put:
			state[k] = flatOf(ev.Node)
		case cache.Delete:
			all := strings.HasPrefix(prefix+"/", k+"/") // the prefix or an ancestor
			for s := range state {
				if all || s == k || strings.HasPrefix(s, k+"/") {
					delete(state, s)
				}
			}
		}
	}
	require.Equal(t, want, state, "replaying the events does not give the content")
	return live, resyncs
}

func TestCacheMatchesQuorumAndRecorder(t *testing.T) {
	c := newCluster(t, testbed.Options{Size: 3})
	urls := c.ClientURLs()
	writer := newKAPI(t, urls)
	const prefix = "/c"
	w := &workload{kapi: writer, prefix: prefix, rng: rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))}
	t.Logf("seed %d", w.rng.Uint64())

	ctx := context.Background()
	start, err := writer.Get(ctx, "/", &client.GetOptions{Quorum: true})
	require.NoError(t, err)
	rec := startRecorder(t, newKAPI(t, urls), prefix, start.Index)
	w.run(t, 30) // content before the cache starts: its first listing

	g := &gate{}
	cc := cache.New(newKAPI(t, urls), prefix, cache.WithEventHandler(g.handler))
	cctx, cancel := context.WithCancel(ctx)
	log := collect(cctx, cc)
	var runWG sync.WaitGroup
	runWG.Add(1)
	var runErr error
	go func() { defer runWG.Done(); runErr = cc.Run(cctx) }()
	t.Cleanup(func() {
		cancel()
		runWG.Wait()
		log.wg.Wait()
		require.ErrorIs(t, runErr, context.Canceled)
	})
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	require.NoError(t, cc.WaitSynced(sctx))
	scancel()
	flood := newKAPI(t, urls)

	rounds := 1
	if faults() {
		rounds = 4
	}
	for round := 0; round < rounds; round++ {
		w.run(t, 150)

		// Member failures, while writes go on: a member killed (the first
		// one, where the cache's client sticks, in the first round), with
		// ETCDV2_FAULTS=1 a member stopped (SIGSTOP: it hangs with its
		// connections open), and the leader killed.
		m := c.Members()[round%3]
		m.Kill(t)
		w.run(t, 60)
		m.Restart(t)
		if faults() {
			s := c.Members()[(round+1)%3]
			s.Stop(t)
			w.run(t, 60)
			s.Continue(t)
		}
		leader, err := c.Leader(ctx)
		require.NoError(t, err)
		leader.Kill(t)
		hctx, hcancel := context.WithTimeout(ctx, 20*time.Second)
		require.NoError(t, c.WaitHealthy(hctx))
		hcancel()
		w.run(t, 60)
		leader.Restart(t)

		// Forced 401: the cache's handler blocks while more than 1000
		// events go by, some of them under the prefix.
		g.close()
		_, err = writer.Set(ctx, prefix+"/trigger", fmt.Sprint(round), nil)
		require.NoError(t, err)
		select {
		case <-g.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the cache did not see the trigger")
		}
		for i := 0; i < 1100; i++ {
			if i%25 == 0 {
				w.step(ctx)
			}
			_, err := flood.Set(ctx, fmt.Sprintf("/flood/%d", i%50), "x", nil)
			require.NoError(t, err)
		}
		if backend.FromEnv(t).Adapter() {
			// Compact only what the recorder has seen: a marker under the
			// prefix, once recorded, bounds the history it still needs.
			r, err := writer.Set(ctx, prefix+"/compacted", fmt.Sprint(round), nil)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return rec.sawIndex(r.Node.ModifiedIndex) }, 20*time.Second, 10*time.Millisecond)
			clearHistory(t, urls, r.Node.ModifiedIndex)
		}
		g.open()
		w.run(t, 40)
	}

	// Quiescence: TTLs run out, then a last write both must see.
	time.Sleep(2500 * time.Millisecond)
	_, err = writer.Set(ctx, prefix+"/zz-end", "end", nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, ok := cc.Get(prefix + "/zz-end")
		return ok && rec.sawKey(prefix+"/zz-end")
	}, 20*time.Second, 20*time.Millisecond)

	want, _ := snapshot(t, writer, prefix)
	require.Equal(t, want, cacheContent(cc), "the cache differs from a quorum snapshot")
	rec.stop()
	require.NoError(t, rec.err, "the recorder fell behind: the test proves nothing")
	cancel()
	runWG.Wait()
	log.wg.Wait()
	live, resyncs := checkStream(t, prefix, rec.events, log.events, want)
	t.Logf("%d nodes, %d recorder events, %d cache events (%d live, %d resync batches)", len(want), len(rec.events), len(log.events), live, resyncs)
	require.GreaterOrEqual(t, resyncs, 1+rounds, "the initial listing and each forced 401 give a resync")
	require.Greater(t, live, 100)
}
