package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/concurrency"
	"github.com/etcdv2/client/integration/testbed"
)

// TestSemaphore: limit 2, five holders with their own clients making ten
// acquisitions each. In index space every write made while holding falls
// where the writer's node is among the first two live nodes; in real time no
// more than two holders at once; plus TryAcquire, limit mismatch, Release.
func TestSemaphore(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	from := currentIndex(t, kapi)
	rec := startRecorder(t, kapi, "/sem", from)

	s := newSession(t, kapi, 10*time.Second)
	a, b, x := concurrency.NewSemaphore(s, "/sem/batch", 2), concurrency.NewSemaphore(s, "/sem/batch", 2), concurrency.NewSemaphore(s, "/sem/batch", 2)
	require.ErrorIs(t, a.Release(ctx), concurrency.ErrNotHeld)
	require.NoError(t, a.TryAcquire(ctx))
	require.NoError(t, b.Acquire(ctx))
	require.Less(t, a.Token(), b.Token())
	require.ErrorIs(t, x.TryAcquire(ctx), concurrency.ErrLocked)
	require.ErrorIs(t, concurrency.NewSemaphore(s, "/sem/batch", 3).TryAcquire(ctx), concurrency.ErrLimitMismatch)
	require.Len(t, children(t, kapi, "/sem/batch"), 2, "failed attempts leave no node")
	require.NoError(t, a.Release(ctx))
	require.NoError(t, b.Release(ctx))

	const holders, rounds = 5, 10
	var believers, maxBelievers atomic.Int64
	var mu sync.Mutex
	var holds []hold
	var wg sync.WaitGroup
	errs := make(chan error, holders)
	for i := 0; i < holders; i++ {
		k, _ := newClient(t, c.ClientURLs())
		sem := concurrency.NewSemaphore(newSession(t, k, 10*time.Second), "/sem/batch", 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				if err := sem.Acquire(ctx); err != nil {
					errs <- err
					return
				}
				n := believers.Add(1)
				for m := maxBelievers.Load(); n > m && !maxBelievers.CompareAndSwap(m, n); m = maxBelievers.Load() {
				}
				resp, err := k.Set(ctx, fmt.Sprintf("/sem/res/%d", i), strconv.FormatUint(sem.Token(), 10), nil)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				holds = append(holds, hold{sem.Token(), resp.Node.ModifiedIndex})
				mu.Unlock()
				believers.Add(-1)
				if err := sem.Release(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.LessOrEqual(t, maxBelievers.Load(), int64(2))
	require.Len(t, holds, holders*rounds)
	evs := rec.waitIndex(t, marker(t, kapi, "/sem"), 30*time.Second)
	for _, h := range holds {
		live := liveAt(evs, "/sem/batch", h.index)
		pos := -1
		for i, n := range live {
			if n.created == h.token {
				pos = i
			}
		}
		require.True(t, pos >= 0 && pos < 2, "write at %d by token %d at position %d", h.index, h.token, pos)
	}
	waitChildren(t, kapi, "/sem/batch", 0)
}

// TestRWMutex: readers share, a writer waits for them, a reader arriving
// after a queued writer waits for the writer; then a mixed workload checked
// in index space (a writer's write happens when its node is first; a
// reader's when no write node is before its own).
func TestRWMutex(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	from := currentIndex(t, kapi)
	rec := startRecorder(t, kapi, "/rw", from)
	s := newSession(t, kapi, 10*time.Second)

	r1, r2, r3, w := concurrency.NewRWMutex(s, "/rw/cfg"), concurrency.NewRWMutex(s, "/rw/cfg"), concurrency.NewRWMutex(s, "/rw/cfg"), concurrency.NewRWMutex(s, "/rw/cfg")
	require.NoError(t, r1.RLock(ctx))
	require.NoError(t, r2.RLock(ctx), "readers share")
	wgot := make(chan error, 1)
	go func() { wgot <- w.Lock(ctx) }()
	waitChildren(t, kapi, "/rw/cfg", 3)
	rgot := make(chan error, 1)
	go func() { rgot <- r3.RLock(ctx) }()
	waitChildren(t, kapi, "/rw/cfg", 4)
	require.NoError(t, r1.RUnlock(ctx))
	select {
	case <-wgot:
		t.Fatal("writer granted while a reader holds")
	case <-rgot:
		t.Fatal("reader granted behind a queued writer")
	default:
	}
	require.NoError(t, r2.RUnlock(ctx))
	require.NoError(t, <-wgot)
	select {
	case <-rgot:
		t.Fatal("reader granted while the writer holds")
	default:
	}
	require.NoError(t, w.Unlock(ctx))
	require.NoError(t, <-rgot)
	require.NoError(t, r3.RUnlock(ctx))
	require.ErrorIs(t, r3.RUnlock(ctx), concurrency.ErrNotHeld)

	type rwHold struct {
		index   uint64
		session string
		write   bool
	}
	var mu sync.Mutex
	var holds []rwHold
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := 0; i < 5; i++ {
		k, _ := newClient(t, c.ClientURLs())
		rs := newSession(t, k, 10*time.Second)
		rw := concurrency.NewRWMutex(rs, "/rw/cfg")
		write := i < 2
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 8; r++ {
				lock, unlock := rw.RLock, rw.RUnlock
				if write {
					lock, unlock = rw.Lock, rw.Unlock
				}
				if err := lock(ctx); err != nil {
					errs <- err
					return
				}
				resp, err := k.Set(ctx, fmt.Sprintf("/rw/res/%d", i), "x", nil)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				holds = append(holds, rwHold{resp.Node.ModifiedIndex, rs.ID(), write})
				mu.Unlock()
				if err := unlock(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	evs := rec.waitIndex(t, marker(t, kapi, "/rw"), 30*time.Second)
	// At each write: a writer's node is the first live node; a reader's
	// node is live with no write node before it.
	for _, h := range holds {
		live := liveAt(evs, "/rw/cfg", h.index)
		mine := -1
		for i, n := range live {
			if strings.Contains(n.value, h.session) {
				mine = i
			}
		}
		require.GreaterOrEqual(t, mine, 0, "write at %d by a holder without a node", h.index)
		if h.write {
			require.Equal(t, 0, mine, "a writer wrote at %d behind %d nodes", h.index, mine)
			continue
		}
		for _, n := range live[:mine] {
			require.NotContains(t, n.value, `"rwmutex-write"`, "a reader wrote at %d behind a writer", h.index)
		}
	}
	waitChildren(t, kapi, "/rw/cfg", 0)
}

// TestBarrier: Wait blocks while held, returns on Release; Hold twice is the
// server's 105; Wait honours its context.
func TestBarrier(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := concurrency.NewBarrier(kapi, "/barrier/x")
	require.NoError(t, b.Wait(ctx), "a barrier never held lets through")
	require.NoError(t, b.Hold(ctx))
	require.True(t, errCodeIs(b.Hold(ctx), client.ErrorCodeNodeExist))
	wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	require.ErrorIs(t, b.Wait(wctx), context.DeadlineExceeded)
	wcancel()
	const n = 4
	got := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { got <- concurrency.NewBarrier(kapi, "/barrier/x").Wait(ctx) }()
	}
	select {
	case <-got:
		t.Fatal("a waiter passed a held barrier")
	case <-time.After(500 * time.Millisecond): // nothing may happen: the absence of an event is what is tested
	}
	require.NoError(t, b.Release(ctx))
	for i := 0; i < n; i++ {
		require.NoError(t, <-got)
	}
	require.NoError(t, b.Release(ctx), "releasing a released barrier is a no-op")
}

// TestQueue: FIFO for one consumer; with three concurrent consumers every
// item is delivered exactly once; Dequeue blocks until an item arrives and
// honours its context.
func TestQueue(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	q := concurrency.NewQueue(kapi, "/queue/jobs")
	dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := q.Dequeue(dctx)
	dcancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	for i := 0; i < 5; i++ {
		require.NoError(t, q.Enqueue(ctx, strconv.Itoa(i)))
	}
	for i := 0; i < 5; i++ {
		v, err := q.Dequeue(ctx)
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(i), v)
	}
	got := make(chan string, 1)
	go func() {
		v, _ := q.Dequeue(ctx)
		got <- v
	}()
	waitWatchAny(t, kapi)
	require.NoError(t, q.Enqueue(ctx, "late"))
	require.Equal(t, "late", <-got)

	// An enqueue and a dequeue claim whose answers are lost (the server
	// applied them): the item is stored once and delivered once.
	// (The native client's transport loses them; the adapter has none.)
	if !onAdapter(t) {
		qk, qtr := newClient(t, c.ClientURLs())
		aq := concurrency.NewQueue(qk, "/queue/jobs")
		qtr.loseMatch.Store("POST /v2/keys/queue/jobs")
		qtr.loseNext.Store(1)
		require.NoError(t, aq.Enqueue(ctx, "ambiguous"))
		require.Zero(t, qtr.loseNext.Load())
		require.Len(t, children(t, kapi, "/queue/jobs"), 1)
		qtr.loseMatch.Store("PUT /v2/keys/queue/jobs/")
		qtr.loseNext.Store(1)
		v, err := aq.Dequeue(ctx)
		require.NoError(t, err)
		require.Equal(t, "ambiguous", v)
		require.Zero(t, qtr.loseNext.Load())
		require.Empty(t, children(t, kapi, "/queue/jobs"))
		qtr.loseMatch.Store("")
	}

	const items = 30
	for i := 0; i < items; i++ {
		require.NoError(t, q.Enqueue(ctx, strconv.Itoa(i)))
	}
	var mu sync.Mutex
	var all []string
	var wg sync.WaitGroup
	for cns := 0; cns < 3; cns++ {
		k, _ := newClient(t, c.ClientURLs())
		cq := concurrency.NewQueue(k, "/queue/jobs")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				n := len(all)
				mu.Unlock()
				if n >= items {
					return
				}
				dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
				v, err := cq.Dequeue(dctx)
				dcancel()
				if err != nil {
					return
				}
				mu.Lock()
				all = append(all, v)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(all, func(i, j int) bool { a, _ := strconv.Atoi(all[i]); b, _ := strconv.Atoi(all[j]); return a < b })
	want := make([]string, items)
	for i := range want {
		want[i] = strconv.Itoa(i)
	}
	require.Equal(t, want, all, "every item exactly once")
}

// TestQueueEnqueueOutcomeUnknown: an Enqueue whose answer is lost after the
// item was applied, and whose item a consumer took before the read-back,
// must not send the item again (it would be delivered twice): it returns an
// error matching client.ErrOutcomeUnknown, and the queue stays empty. A
// create that never left the client (every member refused the connection)
// is sent again, and the item is stored once.
func TestQueueEnqueueOutcomeUnknown(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const dir = "/queue-unknown"
	consumer := concurrency.NewQueue(kapi, dir)
	var creates atomic.Int32
	var fail func(ctx context.Context, dir, value string, opts *client.CreateInOrderOptions) error
	hk := &hookKeys{KeysAPI: kapi}
	hk.create = func(ctx context.Context, key, value string, opts *client.CreateInOrderOptions) (*client.Response, error, bool) {
		creates.Add(1)
		if f := fail; f != nil {
			fail = nil
			return nil, f(ctx, key, value, opts), true
		}
		return nil, nil, false
	}
	producer := concurrency.NewQueue(hk, dir)

	// Applied, consumed at once, and the answer lost.
	fail = func(ctx context.Context, key, value string, opts *client.CreateInOrderOptions) error {
		_, err := kapi.CreateInOrder(ctx, key, value, opts)
		require.NoError(t, err)
		v, err := consumer.Dequeue(ctx)
		require.NoError(t, err)
		require.Equal(t, "job-1", v)
		return &client.OutcomeUnknownError{Endpoint: c.ClientURLs()[0], Err: errors.New("test: connection reset after the request was written")}
	}
	err := producer.Enqueue(ctx, "job-1")
	require.ErrorIs(t, err, client.ErrOutcomeUnknown)
	require.Equal(t, int32(1), creates.Load(), "the item was sent again")
	require.Empty(t, children(t, kapi, dir), "a second copy of the item is in the queue")

	// Never sent: every member refused the connection.
	fail = func(context.Context, string, string, *client.CreateInOrderOptions) error {
		return &client.ClusterError{Errors: []error{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}}
	}
	require.NoError(t, producer.Enqueue(ctx, "job-2"))
	require.Equal(t, int32(3), creates.Load())
	require.Len(t, children(t, kapi, dir), 1)
	v, err := consumer.Dequeue(ctx)
	require.NoError(t, err)
	require.Equal(t, "job-2", v)
}

// waitWatchAny gives a blocked Dequeue time to list and watch; the item is
// delivered whether it arrives before or after the watch, so this only
// makes the blocking path the likely one.
func waitWatchAny(t testing.TB, _ client.KeysAPI) {
	time.Sleep(200 * time.Millisecond) // not a synchronisation: both orders must work
}

// TestBlockingCallsHonourContext: every blocking call returns ctx.Err()
// when its context ends while it waits, and leaves no node behind.
func TestBlockingCallsHonourContext(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	holder := newSession(t, kapi, 10*time.Second)
	waiter := newSession(t, kapi, 10*time.Second)

	m := concurrency.NewMutex(holder, "/ctx/mutex")
	require.NoError(t, m.Lock(ctx))
	e := concurrency.NewElection(holder, "/ctx/election")
	require.NoError(t, e.Campaign(ctx, "x"))
	sem := concurrency.NewSemaphore(holder, "/ctx/sem", 1)
	require.NoError(t, sem.Acquire(ctx))
	rw := concurrency.NewRWMutex(holder, "/ctx/rw")
	require.NoError(t, rw.Lock(ctx))
	b := concurrency.NewBarrier(kapi, "/ctx/barrier")
	require.NoError(t, b.Hold(ctx))

	calls := map[string]func(context.Context) error{
		"Mutex.Lock": concurrency.NewMutex(waiter, "/ctx/mutex").Lock,
		"Election.Campaign": func(ctx context.Context) error {
			return concurrency.NewElection(waiter, "/ctx/election").Campaign(ctx, "y")
		},
		"Semaphore.Acquire": concurrency.NewSemaphore(waiter, "/ctx/sem", 1).Acquire,
		"RWMutex.RLock":     concurrency.NewRWMutex(waiter, "/ctx/rw").RLock,
		"RWMutex.Lock":      concurrency.NewRWMutex(waiter, "/ctx/rw").Lock,
		"Barrier.Wait":      b.Wait,
		"Queue.Dequeue": func(ctx context.Context) error {
			_, err := concurrency.NewQueue(kapi, "/ctx/queue").Dequeue(ctx)
			return err
		},
	}
	for name, call := range calls {
		cctx, ccancel := context.WithTimeout(ctx, 700*time.Millisecond)
		err := call(cctx)
		ccancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, name)
	}
	for _, dir := range []string{"/ctx/mutex", "/ctx/election", "/ctx/sem", "/ctx/rw"} {
		require.Len(t, children(t, kapi, dir), 1, "%s: a waiter's node was left behind", dir)
	}
	require.Empty(t, children(t, kapi, "/ctx/queue"))
}

// TestSemaphoreHolderKilled: two holder processes hold both permits of a
// limit-2 semaphore; one is killed with -9; the waiter gets its permit
// within TTL + 1s while the other holder still holds.
func TestSemaphoreHolderKilled(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ttl = 3
	env := holderEnv(c, "/semkill/batch", "/semkill-res", ttl)
	env[recipeEnv] = "semaphore"
	p1 := startProc(t, "holder", env)
	p1.expect(t, "GRANTED", 30*time.Second)
	p2 := startProc(t, "holder", env)
	g2 := p2.expect(t, "GRANTED", 30*time.Second)
	sem := concurrency.NewSemaphore(newSession(t, kapi, 5*time.Second), "/semkill/batch", 2)
	errc := make(chan error, 1)
	go func() { errc <- sem.Acquire(ctx) }()
	waitChildren(t, kapi, "/semkill/batch", 3)
	at := time.Now()
	require.NoError(t, p1.cmd.Process.Kill())
	require.NoError(t, <-errc)
	took := time.Since(at)
	t.Logf("permit granted %v after a holder was killed (TTL %ds)", took, ttl)
	require.LessOrEqual(t, took, ttl*time.Second+time.Second)
	require.Greater(t, sem.Token(), atou(t, g2[1]))
	live := children(t, kapi, "/semkill/batch")
	require.Len(t, live, 2, "the other holder still holds")
	require.NoError(t, sem.Release(ctx))
}
