package recipes_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/concurrency"
	"github.com/etcdv2/client/integration/testbed"
)

// TestSessionDoneBeforeServerExpiry: a session whose only endpoint goes
// silent (black hole): its Done closes on the local deadline, before the
// server expires its key (seen by a watcher on another member), and within
// the TTL of the black hole.
func TestSessionDoneBeforeServerExpiry(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3, ProxyClients: true})
	ms := c.Members()
	obsK, _ := newClient(t, []string{ms[1].URL(), ms[2].URL()})
	k, _ := newClient(t, []string{ms[0].URL()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	s, err := concurrency.NewSession(k, concurrency.WithTTL(3*time.Second), concurrency.WithPrefix("/sess"))
	require.NoError(t, err)
	defer s.Close()
	r, err := obsK.Get(ctx, "/sess/"+s.ID(), &client.GetOptions{Quorum: true})
	require.NoError(t, err)
	require.Equal(t, int64(3), r.Node.TTL)

	expired := make(chan time.Time, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := obsK.Watcher("/sess/"+s.ID(), &client.WatcherOptions{AfterIndex: r.Index})
		for {
			ev, err := w.Next(ctx)
			if err != nil {
				return
			}
			if ev.Action == "expire" {
				expired <- time.Now()
				return
			}
		}
	}()
	defer wg.Wait()
	defer cancel()

	holed := time.Now()
	ms[0].Proxy().BlackHole(true)
	var done time.Time
	select {
	case <-s.Done():
		done = time.Now()
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed while no member answered")
	}
	var exp time.Time
	select {
	case exp = <-expired:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never expired the session key")
	}
	t.Logf("black hole at 0, Done at %v, server expiry seen at %v", done.Sub(holed), exp.Sub(holed))
	require.True(t, done.Before(exp), "Done closed after the server expired the key")
	require.Less(t, done.Sub(holed), 3*time.Second)
}

// TestSessionSurvivesFailover: renewals go on through a leader kill and
// restart; the session stays alive for several TTLs.
func TestSessionSurvivesFailover(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	k, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := newSession(t, k, 5*time.Second)
	m := concurrency.NewMutex(s, "/failover/lock")
	require.NoError(t, m.Lock(ctx))
	l, err := c.Leader(ctx)
	require.NoError(t, err)
	l.Kill(t)
	require.NoError(t, c.WaitHealthy(ctx))
	l.Restart(t)
	select {
	case <-s.Done():
		t.Fatal("session lost across a leader failover")
	case <-time.After(12 * time.Second): // more than two TTLs must pass without loss: the absence of an event is tested
	}
	require.NoError(t, m.Unlock(ctx))
}

// TestSessionContextAndClose: when the session's context ends Done closes
// and the keys are left to expire; Close deletes them at once.
func TestSessionContextAndClose(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	k, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, err := concurrency.NewSession(k, concurrency.WithTTL(500*time.Millisecond))
	require.Error(t, err)

	sctx, scancel := context.WithCancel(ctx)
	s, err := concurrency.NewSession(k, concurrency.WithContext(sctx), concurrency.WithTTL(3*time.Second), concurrency.WithPrefix("/sc"))
	require.NoError(t, err)
	scancel()
	<-s.Done()
	r, err := k.Get(ctx, "/sc/"+s.ID(), &client.GetOptions{Quorum: true})
	require.NoError(t, err, "the key is left to expire")
	require.NotZero(t, r.Node.TTL)
	require.NoError(t, s.Close())

	s2, err := concurrency.NewSession(k, concurrency.WithTTL(3*time.Second), concurrency.WithPrefix("/sc"))
	require.NoError(t, err)
	require.NoError(t, concurrency.NewMutex(s2, "/sc-lock").Lock(ctx))
	require.NoError(t, s2.Close())
	require.NoError(t, s2.Close(), "Close is idempotent")
	_, err = k.Get(ctx, "/sc/"+s2.ID(), &client.GetOptions{Quorum: true})
	require.True(t, errCodeIs(err, client.ErrorCodeKeyNotFound))
	require.Empty(t, children(t, k, "/sc-lock"))
}

// TestNoGrantAfterSessionEnded: a session that ends (here: Close) while the
// quorum listing that grants is in flight gets no grant: Lock, Campaign,
// Acquire and RLock return ErrSessionExpired and leave no node behind.
func TestNoGrantAfterSessionEnded(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	calls := []struct {
		name string
		call func(ctx context.Context, s *concurrency.Session, dir string) error
	}{
		{"Mutex.Lock", func(ctx context.Context, s *concurrency.Session, dir string) error {
			return concurrency.NewMutex(s, dir).Lock(ctx)
		}},
		{"Election.Campaign", func(ctx context.Context, s *concurrency.Session, dir string) error {
			return concurrency.NewElection(s, dir).Campaign(ctx, "v")
		}},
		{"Semaphore.Acquire", func(ctx context.Context, s *concurrency.Session, dir string) error {
			return concurrency.NewSemaphore(s, dir, 2).Acquire(ctx)
		}},
		{"RWMutex.RLock", func(ctx context.Context, s *concurrency.Session, dir string) error {
			return concurrency.NewRWMutex(s, dir).RLock(ctx)
		}},
	}
	for i, tc := range calls {
		dir := "/nogrant/" + strconv.Itoa(i)
		var s *concurrency.Session
		var armed atomic.Bool
		hk := &hookKeys{KeysAPI: kapi}
		hk.get = func(_ context.Context, key string, opts *client.GetOptions, r *client.Response, err error) (*client.Response, error) {
			if key == dir && opts != nil && opts.Recursive && armed.CompareAndSwap(true, false) {
				// The listing was answered; the session ends before the
				// answer reaches the recipe.
				require.NoError(t, s.Close())
			}
			return r, err
		}
		var err error
		s, err = concurrency.NewSession(hk, concurrency.WithTTL(10*time.Second))
		require.NoError(t, err)
		armed.Store(true)
		err = tc.call(ctx, s, dir)
		require.False(t, armed.Load(), "%s: no listing", tc.name)
		require.ErrorIs(t, err, concurrency.ErrSessionExpired, tc.name)
		require.Empty(t, children(t, kapi, dir), "%s: node left behind", tc.name)
	}
}
