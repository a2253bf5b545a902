package recipes_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/concurrency"
	"github.com/etcdv2/client/integration/testbed"
)

func newSession(t testing.TB, kapi client.KeysAPI, ttl time.Duration) *concurrency.Session {
	t.Helper()
	s, err := concurrency.NewSession(kapi, concurrency.WithTTL(ttl))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func children(t testing.TB, kapi client.KeysAPI, dir string) []*client.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := kapi.Get(ctx, dir, &client.GetOptions{Recursive: true, Sort: true, Quorum: true})
	if errCodeIs(err, client.ErrorCodeKeyNotFound) {
		return nil
	}
	require.NoError(t, err)
	return r.Node.Nodes
}

// TestMutexBasics: TryLock, Unlock, tokens, keys, cancellation and the
// session's keys on a 3-member cluster.
func TestMutexBasics(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s1 := newSession(t, kapi, 5*time.Second)
	s2 := newSession(t, kapi, 5*time.Second)
	require.Equal(t, 5*time.Second, s1.TTL())
	require.NotEqual(t, s1.ID(), s2.ID())

	m1 := concurrency.NewMutex(s1, "/basics/lock")
	m2 := concurrency.NewMutex(s2, "/basics/lock")
	require.ErrorIs(t, m1.Unlock(ctx), concurrency.ErrNotHeld)
	require.Zero(t, m1.Token())
	require.NoError(t, m1.Lock(ctx))
	require.ErrorIs(t, m1.Lock(ctx), concurrency.ErrHeld)
	require.True(t, strings.HasPrefix(m1.Key(), "/basics/lock/"), m1.Key())
	tok1 := m1.Token()
	require.Equal(t, m1.Key(), "/basics/lock/"+pad20(tok1), "the token is the createdIndex of the node")

	// TryLock while held: ErrLocked, and its node is gone.
	require.ErrorIs(t, m2.TryLock(ctx), concurrency.ErrLocked)
	require.Len(t, children(t, kapi, "/basics/lock"), 1)

	// Lock with a context that ends: ctx.Err(), no node left behind.
	lctx, lcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err := m2.Lock(lctx)
	lcancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, children(t, kapi, "/basics/lock"), 1)

	// Hand-off: m2 waits, m1 unlocks, m2 gets a higher token.
	got := make(chan error, 1)
	go func() { got <- m2.Lock(ctx) }()
	waitChildren(t, kapi, "/basics/lock", 2)
	require.NoError(t, m1.Unlock(ctx))
	require.NoError(t, <-got)
	require.Greater(t, m2.Token(), tok1)
	require.ErrorIs(t, m1.Unlock(ctx), concurrency.ErrNotHeld)

	// The holder's node survives several TTLs (renewed by refresh), and
	// keeps its value (refresh with prevValue keeps it on etcd 3.5).
	n := children(t, kapi, "/basics/lock")[0]
	// For more than a TTL, a watch on the node sees nothing: renewals
	// (refresh=true) wake no watcher.
	wctx, wcancel := context.WithTimeout(ctx, 8*time.Second)
	ev, err := kapi.Watcher(n.Key, &client.WatcherOptions{AfterIndex: n.ModifiedIndex}).Next(wctx)
	wcancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "a renewal woke a watcher: %+v", ev)
	n2 := children(t, kapi, "/basics/lock")[0]
	require.Equal(t, n.Key, n2.Key)
	require.Equal(t, n.Value, n2.Value)
	require.Greater(t, n2.ModifiedIndex, n.ModifiedIndex, "renewals bump modifiedIndex")
	select {
	case <-s2.Done():
		t.Fatal("session ended while renewing")
	default:
	}

	// Close deletes the session's keys (by owner), so the lock is free.
	require.NoError(t, s2.Close())
	require.Empty(t, children(t, kapi, "/basics/lock"))
	<-s2.Done()
	require.ErrorIs(t, concurrency.NewMutex(s2, "/basics/lock").Lock(ctx), concurrency.ErrSessionExpired)
	require.NoError(t, m1.Lock(ctx))
	require.NoError(t, m1.Unlock(ctx))
}

func pad20(v uint64) string {
	s := strconv.FormatUint(v, 10)
	return strings.Repeat("0", 20-len(s)) + s
}

func waitChildren(t testing.TB, kapi client.KeysAPI, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(children(t, kapi, dir)) != n {
		require.True(t, time.Now().Before(deadline), "%s never had %d children", dir, n)
		time.Sleep(20 * time.Millisecond) // polled state, bounded by the deadline
	}
}

// holds are the critical-section writes of contender processes.
type hold struct{ token, index uint64 }

// checkExclusion checks mutual exclusion in index space: every write made
// inside a critical section falls at an index where the writer's node was
// the first live node of the lock directory, per the recorder; and tokens
// never decrease along the history.
func checkExclusion(t *testing.T, evs []event, dir string, holds []hold) {
	t.Helper()
	require.NotEmpty(t, holds)
	sorted := append([]hold(nil), holds...)
	sortHolds(sorted)
	var last uint64
	for _, h := range sorted {
		live := liveAt(evs, dir, h.index)
		require.NotEmpty(t, live, "write at %d by token %d: no node was live", h.index, h.token)
		require.Equal(t, h.token, live[0].created, "write at %d by token %d while %d held the lock", h.index, h.token, live[0].created)
		require.Greater(t, h.token, last, "token did not rise at index %d (one write per grant)", h.index)
		last = h.token
	}
}

func sortHolds(h []hold) {
	for i := 1; i < len(h); i++ {
		for j := i; j > 0 && h[j].index < h[j-1].index; j-- {
			h[j], h[j-1] = h[j-1], h[j]
		}
	}
}

// runContenders runs procs processes of workers goroutines, each making
// count acquisitions. While they run, fault(i) is called (from the test
// goroutine) each time i*step holds have been reported, i = 1, 2, ...;
// step 0 means never. It returns the holds reported.
func runContenders(t *testing.T, c *testbed.Cluster, dir, res string, procs, workers, count, ttl, step int, fault func(i int)) ([]hold, []lockOp) {
	return runContendersOf(t, c, "mutex", dir, res, procs, workers, count, ttl, step, fault)
}

// runContendersOf is runContenders for a recipe: "mutex" or "semaphore"
// (limit 2).
func runContendersOf(t *testing.T, c *testbed.Cluster, recipe, dir, res string, procs, workers, count, ttl, step int, fault func(i int)) ([]hold, []lockOp) {
	t.Helper()
	env := map[string]string{
		recipeEnv:    recipe,
		endpointsEnv: strings.Join(c.ClientURLs(), ","),
		keyEnv:       dir, resEnv: res,
		ttlEnv: strconv.Itoa(ttl), countEnv: strconv.Itoa(count), workersEnv: strconv.Itoa(workers),
	}
	ps := make([]*proc, procs)
	for i := range ps {
		ps[i] = startProc(t, "contender", env)
	}
	var mu sync.Mutex
	var holds []hold
	var ops []lockOp
	var bad []string
	done := make(chan struct{}, procs)
	for _, p := range ps {
		go func() {
			defer func() { done <- struct{}{} }()
			for l := range p.lines {
				f := strings.Fields(l)
				mu.Lock()
				switch f[0] {
				case "DONE":
					mu.Unlock()
					return
				case "HOLD":
					a, _ := strconv.ParseUint(f[1], 10, 64)
					b, _ := strconv.ParseUint(f[2], 10, 64)
					holds = append(holds, hold{a, b})
				case "HOLDLOST", "ACQFAIL":
				case "ACQ", "REL":
					id, _ := strconv.Atoi(f[1])
					call, _ := strconv.ParseInt(f[2], 10, 64)
					ret, _ := strconv.ParseInt(f[3], 10, 64)
					op := lockOp{id: id, acquire: f[0] == "ACQ", call: call, ret: ret}
					if len(f) > 4 {
						op.lost = f[4] == "lost"
					}
					ops = append(ops, op)
				default:
					bad = append(bad, l)
				}
				mu.Unlock()
			}
			mu.Lock()
			bad = append(bad, "a contender exited before DONE")
			mu.Unlock()
		}()
	}
	deadline := time.After(6 * time.Minute)
	next := 1
	for finished := 0; finished < procs; {
		select {
		case <-done:
			finished++
		case <-deadline:
			t.Fatal("contenders did not finish")
		case <-time.After(100 * time.Millisecond): // progress check for the fault schedule
		}
		mu.Lock()
		n := len(holds)
		mu.Unlock()
		if step > 0 && finished == 0 && n >= next*step {
			fault(next)
			next++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, bad)
	return holds, ops
}

// TestMutexExclusionSmoke: 2 processes x 3 contenders x 35 acquisitions on
// a 3-member cluster, the etcd leader killed and restarted once;
// exclusion, token order and no orphan nodes, checked against a recorder
// that watches the prefix from before the first acquisition.
func TestMutexExclusionSmoke(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	from := currentIndex(t, kapi)
	rec := startRecorder(t, kapi, "/smoke", from)
	holds, ops := runContenders(t, c, "/smoke/lock", "/smoke-res", 2, 3, 35, 5, 70, func(i int) {
		if i > 1 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		l, err := c.Leader(ctx)
		require.NoError(t, err)
		l.Kill(t)
		l.Restart(t)
	})
	require.GreaterOrEqual(t, len(holds), 2*3*35*9/10, "most acquisitions reported a hold")
	evs := rec.waitIndex(t, marker(t, kapi, "/smoke"), 30*time.Second)
	checkExclusion(t, evs, "/smoke/lock", holds)
	t.Logf("%d acquisitions checked against %d recorded events", len(holds), len(evs))
	checkLockLinearizable(t, ops)
	waitChildren(t, kapi, "/smoke/lock", 0)
}

var _ = errors.Is

// TestMutexFairNoHerd: six waiters enqueued one after the other are granted
// in that order; each watches only its predecessor's key, and each release
// wakes exactly one watch (counted on the waiters' transports).
func TestMutexFairNoHerd(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 6
	first := concurrency.NewMutex(newSession(t, kapi, 10*time.Second), "/fair/lock")
	require.NoError(t, first.Lock(ctx))

	type waiter struct {
		m   *concurrency.Mutex
		tr  *countingTransport
		key string
	}
	ws := make([]*waiter, n)
	granted := make(chan int, n)
	errs := make(chan error, n)
	for i := range ws {
		k, tr := newClient(t, c.ClientURLs())
		ws[i] = &waiter{m: concurrency.NewMutex(newSession(t, k, 10*time.Second), "/fair/lock"), tr: tr}
		go func() {
			if err := ws[i].m.Lock(ctx); err != nil {
				errs <- err
				return
			}
			granted <- i
		}()
		waitChildren(t, kapi, "/fair/lock", i+2)
		nodes := children(t, kapi, "/fair/lock")
		ws[i].key = nodes[len(nodes)-1].Key
	}
	nodes := children(t, kapi, "/fair/lock")
	holder := first
	for i := 0; i < n; i++ {
		var before int64
		for _, w := range ws {
			before += w.tr.woken.Load()
		}
		require.NoError(t, holder.Unlock(ctx))
		select {
		case g := <-granted:
			require.Equal(t, i, g, "grant out of arrival order")
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("no grant")
		}
		require.Equal(t, ws[i].key, ws[i].m.Key())
		var after int64
		for _, w := range ws {
			after += w.tr.woken.Load()
		}
		require.Equal(t, int64(1), after-before, "hand-off %d woke %d watches", i, after-before)
		// The waiter watched its predecessor, and nothing else.
		for p := range ws[i].tr.paths() {
			require.Equal(t, "/v2/keys"+nodes[i].Key, p, "waiter %d watched another key", i)
		}
		holder = ws[i].m
	}
	require.NoError(t, holder.Unlock(ctx))
}

// TestMutexAmbiguousWrites: answers lost after the server applied the write
// (the client reports an unknown outcome and does not resend). The create
// of a waiter node, a create applied twice, the session key's create and the
// Unlock's delete are each resolved by reading back by owner id: one node
// is used, duplicates are removed, nothing is left behind.
func TestMutexAmbiguousWrites(t *testing.T) {
	t.Parallel()
	skipOnAdapter(t, "it loses HTTP answers in the native client's transport")
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, tr := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Session creation with a lost answer.
	tr.loseMatch.Store("PUT /v2/keys/_etcdv2/sessions/")
	tr.loseNext.Store(1)
	s, err := concurrency.NewSession(kapi, concurrency.WithTTL(5*time.Second))
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, int64(0), tr.loseNext.Load(), "the session create was not intercepted")

	from := currentIndex(t, kapi)
	rec := startRecorder(t, kapi, "/amb", from)
	m := concurrency.NewMutex(s, "/amb/lock")
	for _, dup := range []bool{false, true} {
		tr.loseMatch.Store("POST /v2/keys/amb/lock")
		tr.duplicate.Store(dup)
		tr.loseNext.Store(1)
		require.NoError(t, m.Lock(ctx))
		require.Equal(t, int64(0), tr.loseNext.Load())
		nodes := children(t, kapi, "/amb/lock")
		require.Len(t, nodes, 1, "a duplicate of the create is removed")
		require.Equal(t, m.Key(), nodes[0].Key, "the first copy is the one used")
		tr.loseMatch.Store("DELETE /v2/keys/amb/lock")
		tr.duplicate.Store(false)
		tr.loseNext.Store(1)
		require.NoError(t, m.Unlock(ctx))
		require.Equal(t, int64(0), tr.loseNext.Load())
	}
	tr.loseMatch.Store("")
	last := marker(t, kapi, "/amb")
	creates := 0
	for _, e := range rec.waitIndex(t, last, 10*time.Second) {
		if e.action == "create" && strings.HasPrefix(e.key, "/amb/lock/") {
			creates++
		}
	}
	require.Equal(t, 3, creates, "one create, then one create applied twice")
	waitChildren(t, kapi, "/amb/lock", 0)
}

// TestMutexAmbiguousCreateThroughProxy: the fault proxy delays the waiter
// node's create so that it reaches the server but its answer comes after
// the client's per-attempt timeout (an unknown outcome). Lock finds the node
// by its owner id, uses it, and creates no second one.
func TestMutexAmbiguousCreateThroughProxy(t *testing.T) {
	t.Parallel()
	skipOnAdapter(t, "it relies on the native client's per-request timeout and counts its POSTs")
	c := newCluster(t, testbed.Options{Size: 3, ProxyClients: true})
	ms := c.Members()
	obsK, _ := newClient(t, []string{ms[1].URL(), ms[2].URL()})
	tr := newCountingTransport()
	cl, err := client.New(client.Config{Endpoints: []string{ms[0].URL()}, Transport: tr, HeaderTimeoutPerRequest: time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close(); tr.base.CloseIdleConnections() })
	k := client.NewKeysAPI(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	from := currentIndex(t, obsK)
	rec := startRecorder(t, obsK, "/ambproxy", from)

	m := concurrency.NewMutex(newSession(t, k, 10*time.Second), "/ambproxy/lock")
	ms[0].Proxy().SetDelay(700 * time.Millisecond) // request at the server after 0.7s, answer after 1.4s > 1s timeout
	errc := make(chan error, 1)
	go func() { errc <- m.Lock(ctx) }()
	select {
	case <-tr.postFailed:
	case <-time.After(20 * time.Second):
		t.Fatal("the create never timed out")
	}
	ms[0].Proxy().SetDelay(0)
	require.NoError(t, <-errc)
	nodes := children(t, obsK, "/ambproxy/lock")
	require.Len(t, nodes, 1)
	require.Equal(t, nodes[0].Key, m.Key())
	creates := 0
	for _, e := range rec.waitIndex(t, marker(t, obsK, "/ambproxy"), 10*time.Second) {
		if e.action == "create" && strings.HasPrefix(e.key, "/ambproxy/lock/") {
			creates++
		}
	}
	require.Equal(t, 1, creates, "the create was applied once")
	require.Equal(t, int64(1), tr.posts.Load(), "the create whose answer was lost was found by reading back, not resent")
	require.NoError(t, m.Unlock(ctx))
}

// TestReleaseAfterContextEnded: a release called with a context that has
// already ended (defer m.Unlock(reqCtx) after the request timed out) still
// deletes the node, so the next holder does not wait for it to expire.
func TestReleaseAfterContextEnded(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := newSession(t, kapi, 10*time.Second)
	m := concurrency.NewMutex(s, "/ended/mutex")
	e := concurrency.NewElection(s, "/ended/election")
	sem := concurrency.NewSemaphore(s, "/ended/sem", 1)
	rw := concurrency.NewRWMutex(s, "/ended/rw")
	cases := map[string]struct {
		dir           string
		take, release func(context.Context) error
	}{
		"Mutex.Unlock":      {"/ended/mutex", m.Lock, m.Unlock},
		"Election.Resign":   {"/ended/election", func(ctx context.Context) error { return e.Campaign(ctx, "v") }, e.Resign},
		"Semaphore.Release": {"/ended/sem", sem.Acquire, sem.Release},
		"RWMutex.RUnlock":   {"/ended/rw", rw.RLock, rw.RUnlock},
		"RWMutex.Unlock":    {"/ended/rw", rw.Lock, rw.Unlock},
	}
	for name, tc := range cases {
		req, reqCancel := context.WithCancel(ctx)
		require.NoError(t, tc.take(req), name)
		require.Len(t, children(t, kapi, tc.dir), 1, name)
		reqCancel() // the request the grant was taken for is over
		require.NoError(t, tc.release(req), name)
		require.Empty(t, children(t, kapi, tc.dir), "%s: the node is left to expire", name)
	}
}
