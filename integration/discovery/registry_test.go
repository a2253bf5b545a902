package discovery_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/registry"
)

// watchRecorder ranges over a registry Watch in a goroutine and keeps the
// snapshots with the time each arrived.
type watchRecorder struct {
	mu    sync.Mutex
	snaps [][]registry.Instance
	at    []time.Time
	err   error
	wg    sync.WaitGroup
	cond  chan struct{}
}

func startWatch(t *testing.T, r *registry.Registry, service string, filters ...registry.Filter) *watchRecorder {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watchRecorder{cond: make(chan struct{}, 1)}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for insts, err := range r.Watch(ctx, service, filters...) {
			w.mu.Lock()
			if err != nil {
				w.err = err
			} else {
				w.snaps = append(w.snaps, insts)
				w.at = append(w.at, time.Now())
			}
			w.mu.Unlock()
			select {
			case w.cond <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		w.wg.Wait()
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.err != nil && !errors.Is(w.err, context.Canceled) {
			t.Errorf("watch ended with %v", w.err)
		}
	})
	return w
}

// waitFor waits until the latest snapshot satisfies ok; it returns the
// time that snapshot arrived.
func (w *watchRecorder) waitFor(t *testing.T, d time.Duration, what string, ok func([]registry.Instance) bool) time.Time {
	t.Helper()
	deadline := time.After(d)
	for {
		w.mu.Lock()
		if n := len(w.snaps); n > 0 && ok(w.snaps[n-1]) {
			at := w.at[n-1]
			w.mu.Unlock()
			return at
		}
		w.mu.Unlock()
		select {
		case <-w.cond:
		case <-deadline:
			t.Fatalf("watch: no snapshot where %s within %v", what, d)
		}
	}
}

func (w *watchRecorder) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.snaps)
}

func hasID(id string) func([]registry.Instance) bool {
	return func(ins []registry.Instance) bool {
		for _, in := range ins {
			if in.ID == id {
				return true
			}
		}
		return false
	}
}

func not(f func([]registry.Instance) bool) func([]registry.Instance) bool {
	return func(ins []registry.Instance) bool { return !f(ins) }
}

// waitGone polls Instances (quorum reads) until id is absent and returns
// when that was first seen.
func waitGone(t *testing.T, r *registry.Registry, service, id string, d time.Duration) time.Time {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ins, _, err := r.Instances(ctx, service)
		cancel()
		if err == nil && !hasID(id)(ins) {
			return time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/%s still listed after %v", service, id, d)
	return time.Time{}
}

func TestRegistry(t *testing.T) {
	c := newCluster(t, testbed.Options{Size: 3, ProxyClients: true})
	direct := make([]string, 0, 3)
	for _, m := range c.Members() {
		direct = append(direct, m.ClientURL())
	}
	kapi := newKAPI(t, direct)
	r := registry.New(kapi, "/services")
	const ttl = 2 * time.Second

	t.Run("Kill9", func(t *testing.T) {
		w := startWatch(t, r, "kill")
		ch := startChild(t, direct, "/services", "kill", "k-1", ttl)
		w.waitFor(t, 5*time.Second, "k-1 is listed", hasID("k-1"))
		killed := time.Now()
		ch.signal(t, syscall.SIGKILL)
		gone := waitGone(t, r, "kill", "k-1", 10*time.Second)
		require.LessOrEqual(t, gone.Sub(killed), ttl+time.Second, "Instances still listed the killed instance")
		wgone := w.waitFor(t, 10*time.Second, "k-1 is gone", not(hasID("k-1")))
		require.LessOrEqual(t, wgone.Sub(killed), ttl+time.Second, "Watch still listed the killed instance")
	})

	t.Run("SIGSTOP", func(t *testing.T) {
		w := startWatch(t, r, "stop")
		ch := startChild(t, direct, "/services", "stop", "s-1", ttl)
		w.waitFor(t, 5*time.Second, "s-1 is listed", hasID("s-1"))
		stopped := time.Now()
		ch.signal(t, syscall.SIGSTOP)
		gone := waitGone(t, r, "stop", "s-1", 10*time.Second)
		require.LessOrEqual(t, gone.Sub(stopped), ttl+time.Second)
		wgone := w.waitFor(t, 10*time.Second, "s-1 is gone", not(hasID("s-1")))
		require.LessOrEqual(t, wgone.Sub(stopped), ttl+time.Second)
		resumed := time.Now()
		ch.signal(t, syscall.SIGCONT)
		line := ch.next(t, 3*time.Second)
		f := strings.Fields(line)
		require.GreaterOrEqual(t, len(f), 3, line)
		require.Equal(t, "done", f[0], line)
		closedNS, _ := strconv.ParseInt(f[1], 10, 64)
		deadlineNS, _ := strconv.ParseInt(f[2], 10, 64)
		closed, deadline := time.Unix(0, closedNS), time.Unix(0, deadlineNS)
		// Its own clock gave up before the server removed it, and Done
		// closed as soon as it could run again.
		require.True(t, deadline.Before(gone), "local deadline %v not before removal %v", deadline, gone)
		require.True(t, deadline.After(stopped.Add(-ttl)), "deadline %v implausibly early", deadline)
		require.Less(t, closed.Sub(resumed), time.Second, "Done closed %v after SIGCONT", closed.Sub(resumed))
		require.Contains(t, line, "local deadline")
		// It wrote nothing after resuming: still gone.
		time.Sleep(ttl / 2)
		ins, _, err := r.Instances(context.Background(), "stop")
		require.NoError(t, err)
		require.False(t, hasID("s-1")(ins), "the paused instance came back")
	})

	t.Run("Partitioned", func(t *testing.T) {
		// The instance reaches etcd only through the proxies; black-holing
		// them cuts it off while it keeps running: Done must close on its
		// own clock before the server removes the instance.
		ch := startChild(t, c.ClientURLs(), "/services", "part", "p-1", ttl)
		cut := time.Now()
		for _, m := range c.Members() {
			m.Proxy().BlackHole(true)
		}
		t.Cleanup(func() {
			for _, m := range c.Members() {
				m.Proxy().BlackHole(false)
			}
		})
		gone := waitGone(t, r, "part", "p-1", 10*time.Second)
		require.LessOrEqual(t, gone.Sub(cut), ttl+time.Second)
		line := ch.next(t, 3*time.Second)
		f := strings.Fields(line)
		require.Equal(t, "done", f[0], line)
		closedNS, _ := strconv.ParseInt(f[1], 10, 64)
		closed := time.Unix(0, closedNS)
		require.True(t, closed.Before(gone), "Done closed at %v, after the removal at %v", closed, gone)
	})

	t.Run("HeartbeatsWakeNoWatcher", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		reg, err := r.Register(ctx, registry.Instance{Service: "hb", ID: "h-1", Addr: "a:1"}, registry.WithTTL(ttl))
		require.NoError(t, err)
		defer reg.Deregister(context.Background())
		first, err := kapi.Get(ctx, reg.Key(), &client.GetOptions{Quorum: true})
		require.NoError(t, err)
		w := startWatch(t, r, "hb")
		w.waitFor(t, 5*time.Second, "h-1 is listed", hasID("h-1"))
		// A raw watcher from the listing's index: a refresh must not wake it.
		raw := kapi.Watcher("/services/hb", &client.WatcherOptions{AfterIndex: first.Index, Recursive: true})
		wctx, wcancel := context.WithTimeout(ctx, 3*ttl)
		ev, err := raw.Next(wctx)
		wcancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, "a watcher woke: %+v", ev)
		last, err := kapi.Get(ctx, reg.Key(), &client.GetOptions{Quorum: true})
		require.NoError(t, err)
		require.Greater(t, last.Node.ModifiedIndex, first.Node.ModifiedIndex, "no refresh happened")
		require.Equal(t, first.Node.Value, last.Node.Value)
		require.Equal(t, 1, w.count(), "Watch yielded a snapshot for a heartbeat")
		// A status change does wake it.
		require.NoError(t, reg.SetStatus(ctx, registry.Critical, "disk full"))
		w.waitFor(t, 5*time.Second, "h-1 is critical", func(ins []registry.Instance) bool {
			return len(ins) == 1 && ins[0].Status == registry.Critical && ins[0].Output == "disk full"
		})
		require.NoError(t, reg.SetStatus(ctx, registry.Critical, "disk full")) // unchanged: refresh only
		require.NoError(t, reg.SetStatus(ctx, registry.Passing, ""))
		w.waitFor(t, 5*time.Second, "h-1 is passing", func(ins []registry.Instance) bool {
			return len(ins) == 1 && ins[0].Status == registry.Passing
		})
		require.Equal(t, 3, w.count(), "snapshots: initial, critical, passing")
	})

	t.Run("NoSilentOverwrite", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a, err := r.Register(ctx, registry.Instance{Service: "dup", ID: "d-1", Addr: "a:1"}, registry.WithTTL(ttl))
		require.NoError(t, err)
		_, err = r.Register(ctx, registry.Instance{Service: "dup", ID: "d-1", Addr: "b:2"}, registry.WithTTL(ttl))
		require.ErrorIs(t, err, registry.ErrExists)
		var ee *registry.ExistsError
		require.ErrorAs(t, err, &ee)
		require.Equal(t, "a:1", ee.Existing.Addr)
		ins, _, err := r.Instances(ctx, "dup")
		require.NoError(t, err)
		require.Len(t, ins, 1)
		require.Equal(t, "a:1", ins[0].Addr)
		// Said explicitly, it replaces; the first registration learns it
		// at its next refresh and never deletes the newcomer.
		b, err := r.Register(ctx, registry.Instance{Service: "dup", ID: "d-1", Addr: "b:2"}, registry.WithTTL(ttl), registry.WithReplace())
		require.NoError(t, err)
		select {
		case <-a.Done():
		case <-time.After(ttl):
			t.Fatal("the replaced registration did not notice within its TTL")
		}
		require.ErrorIs(t, a.Err(), registry.ErrLost)
		require.NoError(t, a.Deregister(ctx))
		ins, _, err = r.Instances(ctx, "dup")
		require.NoError(t, err)
		require.Len(t, ins, 1)
		require.Equal(t, "b:2", ins[0].Addr)
		require.NoError(t, b.Deregister(ctx))
		<-b.Done()
		ins, _, err = r.Instances(ctx, "dup")
		require.NoError(t, err)
		require.Empty(t, ins)
	})

	t.Run("FiltersAndServices", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		regs := []*registry.Registration{}
		defer func() {
			for _, g := range regs {
				require.NoError(t, g.Deregister(context.Background()))
			}
		}()
		for i, tags := range [][]string{{"v1"}, {"v2"}, {"v2", "canary"}} {
			g, err := r.Register(ctx, registry.Instance{Service: "api", ID: "api-" + strconv.Itoa(i), Addr: "x:" + strconv.Itoa(i),
				Tags: tags, Meta: map[string]string{"zone": "a"}}, registry.WithTTL(10*time.Second))
			require.NoError(t, err)
			regs = append(regs, g)
		}
		w := startWatch(t, r, "api", registry.Tag("v2"), registry.PassingOnly())
		w.waitFor(t, 5*time.Second, "two v2 instances", func(ins []registry.Instance) bool { return len(ins) == 2 })
		ins, idx, err := r.Instances(ctx, "api", registry.Tag("v2"), registry.PassingOnly())
		require.NoError(t, err)
		require.Len(t, ins, 2)
		require.Equal(t, "api-1", ins[0].ID)
		require.Equal(t, map[string]string{"zone": "a"}, ins[0].Meta)
		require.NotZero(t, idx)
		require.NoError(t, regs[2].SetStatus(ctx, registry.Warning, "slow"))
		w.waitFor(t, 5*time.Second, "api-2 filtered out", func(ins []registry.Instance) bool { return len(ins) == 1 && ins[0].ID == "api-1" })
		ins, idx2, err := r.Instances(ctx, "api", registry.PassingOnly())
		require.NoError(t, err)
		require.Len(t, ins, 2)
		require.Greater(t, idx2, idx)
		names, err := r.Services(ctx)
		require.NoError(t, err)
		require.Contains(t, names, "api")
		require.NotContains(t, names, "kill", "a service whose last instance expired is listed")
	})

	t.Run("CheckTTL", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		g, err := r.Register(ctx, registry.Instance{Service: "chk", ID: "c-1"}, registry.WithTTL(10*time.Second), registry.WithCheckTTL(time.Second))
		require.NoError(t, err)
		defer g.Deregister(context.Background())
		ins, _, err := r.Instances(ctx, "chk")
		require.NoError(t, err)
		require.Equal(t, registry.Critical, ins[0].Status, "a TTL check starts critical")
		w := startWatch(t, r, "chk", registry.PassingOnly())
		set := time.Now()
		require.NoError(t, g.SetStatus(ctx, registry.Passing, "ok"))
		w.waitFor(t, 5*time.Second, "c-1 passing", hasID("c-1"))
		at := w.waitFor(t, 5*time.Second, "c-1 went critical", not(hasID("c-1")))
		require.Less(t, at.Sub(set), 2*time.Second, "the check's TTL is 1s")
		ins, _, err = r.Instances(ctx, "chk")
		require.NoError(t, err)
		require.Equal(t, "TTL expired", ins[0].Output)
	})

	t.Run("ContextEnds", func(t *testing.T) {
		live, err := r.Register(context.Background(), registry.Instance{Service: "ctx", ID: "c-1"}, registry.WithTTL(ttl))
		require.NoError(t, err)
		cctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = r.Register(cctx, registry.Instance{Service: "ctx", ID: "c-2"})
		require.ErrorIs(t, err, context.Canceled)
		_, _, err = r.Instances(cctx, "ctx")
		require.ErrorIs(t, err, context.Canceled)
		_, err = r.Services(cctx)
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, live.SetStatus(cctx, registry.Warning, "x"), context.Canceled)
		n := 0
		for _, err := range r.Watch(cctx, "ctx") {
			require.ErrorIs(t, err, context.Canceled)
			n++
		}
		require.Equal(t, 1, n)
		// A Watch whose context ends while it waits for a change.
		wctx, wcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer wcancel()
		var last error
		for _, err := range r.Watch(wctx, "ctx") {
			last = err
		}
		require.ErrorIs(t, last, context.DeadlineExceeded)
		require.ErrorIs(t, live.Deregister(cctx), context.Canceled)
		require.ErrorIs(t, live.Err(), registry.ErrLost)
		waitGone(t, r, "ctx", "c-1", ttl+2*time.Second)
	})

	t.Run("Invalid", func(t *testing.T) {
		ctx := context.Background()
		_, err := r.Register(ctx, registry.Instance{Service: "a/b", ID: "x"})
		require.ErrorIs(t, err, registry.ErrInvalid)
		_, err = r.Register(ctx, registry.Instance{Service: "a", ID: "x"}, registry.WithTTL(500*time.Millisecond))
		require.ErrorIs(t, err, registry.ErrInvalid)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, _, err = r.Instances(cctx, "a")
		require.ErrorIs(t, err, context.Canceled)
	})
}
