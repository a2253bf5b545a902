package recipes_test

import (
	"context"
	"fmt"
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

// leaderChanges derives the sequence of leaders (first live node and its
// value) from the recorded events of dir.
func leaderChanges(t testing.TB, evs []event, dir string) []concurrency.Leader {
	var out []concurrency.Leader
	var last concurrency.Leader
	for _, e := range evs {
		live := liveAt(evs, dir, e.index)
		if len(live) == 0 {
			continue
		}
		l := concurrency.Leader{Key: live[0].key, Value: envValue(t, live[0].value), Token: live[0].created}
		if l != last {
			out = append(out, l)
			last = l
		}
	}
	return out
}

// envValue extracts the campaign value from a node value.
func envValue(t testing.TB, v string) string {
	var env struct {
		Value string `json:"value"`
	}
	require.NoError(t, jsonUnmarshal(v, &env))
	return env.Value
}

// observer collects what Observe delivers.
type observer struct {
	mu   sync.Mutex
	seen []concurrency.Leader
	err  error
	done chan struct{}
}

func startObserver(t testing.TB, e *concurrency.Election) *observer {
	ctx, cancel := context.WithCancel(context.Background())
	o := &observer{done: make(chan struct{})}
	go func() {
		defer close(o.done)
		for l, err := range e.Observe(ctx) {
			o.mu.Lock()
			if err != nil {
				o.err = err
			} else {
				o.seen = append(o.seen, l)
			}
			o.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-o.done
	})
	return o
}

func (o *observer) waitFor(t testing.TB, want concurrency.Leader, timeout time.Duration) []concurrency.Leader {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		o.mu.Lock()
		seen := append([]concurrency.Leader(nil), o.seen...)
		err := o.err
		o.mu.Unlock()
		require.NoError(t, err)
		if len(seen) > 0 && seen[len(seen)-1] == want {
			return seen
		}
		require.True(t, time.Now().Before(deadline), "observer never saw %+v; saw %d, last %+v", want, len(seen), last(seen))
		time.Sleep(20 * time.Millisecond) // polled, bounded by deadline
	}
}

func last(ls []concurrency.Leader) any {
	if len(ls) == 0 {
		return nil
	}
	return ls[len(ls)-1]
}

// TestElection: three candidates campaign, proclaim and resign in turns
// while the etcd leader is killed and restarted. In index space there is one
// leader at a time and every Proclaim happened while its author led;
// Observe delivered exactly the sequence of leaders (and values) the
// recorder saw, in order, with tokens never going down; Leader agrees.
func TestElection(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	from := currentIndex(t, kapi)
	rec := startRecorder(t, kapi, "/elect", from)

	obsK, _ := newClient(t, c.ClientURLs())
	obs := startObserver(t, concurrency.NewElection(newSession(t, obsK, 10*time.Second), "/elect/svc"))

	e0 := concurrency.NewElection(newSession(t, kapi, 10*time.Second), "/elect/svc")
	_, err := e0.Leader(ctx)
	require.ErrorIs(t, err, concurrency.ErrNoLeader)
	require.ErrorIs(t, e0.Proclaim(ctx, "x"), concurrency.ErrNotLeader)
	require.NoError(t, e0.Resign(ctx), "resign without leading is a no-op")

	const rounds = 8
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		k, _ := newClient(t, c.ClientURLs())
		e := concurrency.NewElection(newSession(t, k, 10*time.Second), "/elect/svc")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				v := fmt.Sprintf("c%d-r%d", i, r)
				if err := e.Campaign(ctx, v); err != nil {
					errs <- err
					return
				}
				l, err := e.Leader(ctx)
				if err != nil || l.Value != v {
					errs <- fmt.Errorf("leader after campaign: %+v %v", l, err)
					return
				}
				if err := e.Proclaim(ctx, v+"-proclaimed"); err != nil {
					errs <- err
					return
				}
				if err := e.Resign(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// One member failover in the middle.
	time.Sleep(300 * time.Millisecond) // lets some terms pass before the fault; not a synchronisation
	l, err := c.Leader(ctx)
	require.NoError(t, err)
	l.Kill(t)
	l.Restart(t)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	// A final, stable leader to converge on.
	require.NoError(t, e0.Campaign(ctx, "final"))
	cur, err := e0.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "final", cur.Value)
	seen := obs.waitFor(t, cur, 30*time.Second)

	evs := rec.waitIndex(t, cur.Token, 30*time.Second)
	want := leaderChanges(t, evs, "/elect/svc")
	require.Equal(t, want, seen, "Observe must deliver every change in order")
	require.Len(t, want, 3*rounds*2+1, "each term: campaign value and proclaimed value")
	for i := 1; i < len(seen); i++ {
		require.GreaterOrEqual(t, seen[i].Token, seen[i-1].Token)
	}
	// Every Proclaim (a compareAndSwap) happened while its node was first.
	for _, e := range evs {
		if e.action == "compareAndSwap" {
			live := liveAt(evs, "/elect/svc", e.index)
			require.Equal(t, e.key, live[0].key, "proclaim at %d by a non-leader", e.index)
		}
	}
	require.NoError(t, e0.Resign(ctx))
	_, err = e0.Leader(ctx)
	require.ErrorIs(t, err, concurrency.ErrNoLeader)
}

var _ client.KeysAPI

// TestElectionLeaderKilledAndStopped: a leader process killed with -9 is
// succeeded within TTL + 1s; a leader process stopped past its TTL is
// succeeded, and after SIGCONT its session is over: Proclaim fails and
// Resign reports the session expired.
func TestElectionLeaderKilledAndStopped(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ttl = 3
	for _, stop := range []bool{false, true} {
		env := holderEnv(c, "/elect-fault/svc", "/elect-fault-res", ttl)
		env[recipeEnv] = "election"
		p := startProc(t, "holder", env)
		g := p.expect(t, "GRANTED", 30*time.Second)
		p.expect(t, "WROTE", 10*time.Second)
		e := concurrency.NewElection(newSession(t, kapi, 5*time.Second), "/elect-fault/svc")
		errc := make(chan error, 1)
		go func() { errc <- e.Campaign(ctx, "successor") }()
		waitChildren(t, kapi, "/elect-fault/svc", 2)
		at := time.Now()
		if stop {
			require.NoError(t, p.cmd.Process.Signal(syscall.SIGSTOP))
		} else {
			require.NoError(t, p.cmd.Process.Kill())
		}
		require.NoError(t, <-errc)
		took := time.Since(at)
		l, err := e.Leader(ctx)
		require.NoError(t, err)
		require.Equal(t, "successor", l.Value)
		require.Greater(t, l.Token, atou(t, g[1]))
		t.Logf("stop=%v: new leader after %v", stop, took)
		if !stop {
			require.LessOrEqual(t, took, ttl*time.Second+time.Second)
		} else {
			_, err := concurrency.FencedSet(ctx, kapi, "/elect-fault-res", "successor", l.Token)
			require.NoError(t, err)
			require.NoError(t, p.cmd.Process.Signal(syscall.SIGCONT))
			p.expect(t, "LOST", 30*time.Second)
			fence := p.expect(t, "FENCE", 10*time.Second)
			require.Contains(t, strings.Join(fence, " "), concurrency.ErrStaleToken.Error())
			unlock := p.expect(t, "UNLOCK", 10*time.Second)
			require.Contains(t, strings.Join(unlock, " "), concurrency.ErrSessionExpired.Error())
		}
		require.NoError(t, e.Resign(ctx))
	}
}

// TestReleaseAfterLateProclaim: a Proclaim whose write was applied but whose
// context ended before its answer leaves the handle with a stale copy of
// the node's value. Resign, and in another session Close, must still
// delete the leader's node: the node is ours (same createdIndex, our owner
// id), only its value changed. Nothing may be left for a TTL.
func TestReleaseAfterLateProclaim(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, via := range []string{"Resign", "Close"} {
		t.Run(via, func(t *testing.T) {
			dir := "/late-proclaim/" + via
			var armed atomic.Bool
			var proclaimCancel context.CancelFunc
			hk := &hookKeys{KeysAPI: kapi}
			hk.set = func(sctx context.Context, key, value string, opts *client.SetOptions) (*client.Response, error, bool) {
				if opts == nil || opts.Refresh || opts.PrevValue == "" || !strings.HasPrefix(key, dir+"/") || !armed.CompareAndSwap(true, false) {
					return nil, nil, false
				}
				_, err := kapi.Set(ctx, key, value, opts) // applied...
				require.NoError(t, err)
				proclaimCancel() // ...but the caller gave up before the answer
				return nil, sctx.Err(), true
			}
			// A TTL long enough that no renewal (which would read the
			// new value back) runs during the test.
			s, err := concurrency.NewSession(hk, concurrency.WithTTL(30*time.Second))
			require.NoError(t, err)
			defer s.Close()
			e := concurrency.NewElection(s, dir)
			require.NoError(t, e.Campaign(ctx, "a"))

			pctx, pcancel := context.WithCancel(ctx)
			proclaimCancel = pcancel
			armed.Store(true)
			require.ErrorIs(t, e.Proclaim(pctx, "b"), context.Canceled)
			require.False(t, armed.Load())
			l, err := e.Leader(ctx)
			require.NoError(t, err)
			require.Equal(t, "b", l.Value, "the proclaim was applied")

			if via == "Resign" {
				require.NoError(t, e.Resign(ctx))
			} else {
				require.NoError(t, s.Close())
			}
			require.Empty(t, children(t, kapi, dir), "the leader's node is left behind")
		})
	}
}
