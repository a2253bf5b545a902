package recipes_test

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/concurrency"
	"github.com/etcdv2/client/integration/testbed"
)

func holderEnv(c *testbed.Cluster, dir, res string, ttl int) map[string]string {
	return map[string]string{
		endpointsEnv: strings.Join(c.ClientURLs(), ","),
		keyEnv:       dir, resEnv: res, ttlEnv: strconv.Itoa(ttl),
	}
}

// TestMutexHolderKilled: a holder process killed with SIGKILL; the waiter is
// granted within TTL + 1s, with a higher token.
func TestMutexHolderKilled(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ttl = 3
	p := startProc(t, "holder", holderEnv(c, "/killed/lock", "/killed/res", ttl))
	g := p.expect(t, "GRANTED", 30*time.Second)
	holderTok := atou(t, g[1])

	s := newSession(t, kapi, 5*time.Second)
	m := concurrency.NewMutex(s, "/killed/lock")
	got := make(chan time.Time, 1)
	errc := make(chan error, 1)
	go func() {
		err := m.Lock(ctx)
		got <- time.Now()
		errc <- err
	}()
	waitChildren(t, kapi, "/killed/lock", 2)
	killed := time.Now()
	require.NoError(t, p.cmd.Process.Kill())
	granted := <-got
	require.NoError(t, <-errc)
	took := granted.Sub(killed)
	t.Logf("granted %v after the holder was killed (TTL %ds)", took, ttl)
	require.LessOrEqual(t, took, ttl*time.Second+time.Second)
	require.Greater(t, m.Token(), holderTok)
	require.NoError(t, m.Unlock(ctx))
}

// TestMutexHolderStopped: a holder process stopped (SIGSTOP) for longer than
// its TTL. The waiter is granted; every write the holder made believing it
// held the lock came before that grant; after SIGCONT the holder's first
// look at Done finds it closed, its fenced write is refused (ErrStaleToken)
// and its Unlock reports the session expired.
func TestMutexHolderStopped(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3})
	kapi, _ := newClient(t, c.ClientURLs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ttl = 3
	p := startProc(t, "holder", holderEnv(c, "/stopped/lock", "/stopped/res", ttl))
	g := p.expect(t, "GRANTED", 30*time.Second)
	holderTok := atou(t, g[1])
	p.expect(t, "WROTE", 10*time.Second)

	s := newSession(t, kapi, 5*time.Second)
	m := concurrency.NewMutex(s, "/stopped/lock")
	errc := make(chan error, 1)
	go func() { errc <- m.Lock(ctx) }()
	waitChildren(t, kapi, "/stopped/lock", 2)
	holderNode := children(t, kapi, "/stopped/lock")[0]

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGSTOP))
	stopped := time.Now()
	require.NoError(t, <-errc)
	granted := time.Now()
	t.Logf("waiter granted %v after SIGSTOP", granted.Sub(stopped))
	// The index at which the holder's node went (its session expired):
	// the grant came after it.
	gone, err := kapi.Watcher(holderNode.Key, &client.WatcherOptions{AfterIndex: holderNode.ModifiedIndex}).Next(ctx)
	require.NoError(t, err)
	require.Contains(t, []string{"expire", "delete", "compareAndDelete"}, gone.Action)
	require.Greater(t, m.Token(), holderTok)
	w, err := concurrency.FencedSet(ctx, kapi, "/stopped/res", "new holder", m.Token())
	require.NoError(t, err)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGCONT))

	// Everything the holder printed before LOST: the checks at which it
	// believed it held the lock, and the writes it made then.
	var lost []string
	tm := time.After(30 * time.Second)
	for lost == nil {
		select {
		case l := <-p.lines:
			f := strings.Fields(l)
			switch f[0] {
			case "HELD":
				at := time.Unix(0, int64(atou(t, f[1])))
				require.True(t, at.Before(granted), "the holder believed it held the lock at %v, after the waiter's grant at %v", at, granted)
			case "WROTE":
				// A write the holder sent before SIGSTOP may return
				// after SIGCONT: its HELD line (before the call) was
				// checked above, and it took effect before the holder's
				// node went.
				require.Less(t, atou(t, f[2]), gone.Node.ModifiedIndex, "the holder wrote after its lock node was gone")
				require.Less(t, atou(t, f[2]), w.Node.ModifiedIndex)
			case "LOST":
				lost = f
			}
		case <-tm:
			t.Fatal("the holder never reported its session lost")
		}
	}
	fence := p.expect(t, "FENCE", 10*time.Second)
	require.Contains(t, strings.Join(fence, " "), concurrency.ErrStaleToken.Error())
	unlock := p.expect(t, "UNLOCK", 10*time.Second)
	require.Contains(t, strings.Join(unlock, " "), concurrency.ErrSessionExpired.Error())
	require.NoError(t, m.Unlock(ctx))
}

// TestMutexWaiterOnIsolatedMember: a waiter whose only endpoint is a member
// cut off from its peers (it still answers plain reads, from old data). The
// holder releases through the other members; the waiter's decisions are
// quorum reads, which the isolated member cannot serve, so it is never
// granted: its session ends at its local deadline and Lock returns
// ErrSessionExpired; a later contender on the majority side is granted once
// the waiter's node expires.
func TestMutexWaiterOnIsolatedMember(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3, ProxyPeers: true})
	ms := c.Members()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := c.Leader(ctx)
	require.NoError(t, err)
	iso := ms[0]
	if iso == l {
		iso = ms[1]
	}
	var majority []string
	for _, m := range ms {
		if m != iso {
			majority = append(majority, m.URL())
		}
	}
	hk, _ := newClient(t, majority)
	wk, _ := newClient(t, []string{iso.URL()})

	h := concurrency.NewMutex(newSession(t, hk, 5*time.Second), "/iso/lock")
	require.NoError(t, h.Lock(ctx))
	ws := newSession(t, wk, 4*time.Second)
	w := concurrency.NewMutex(ws, "/iso/lock")
	errc := make(chan error, 1)
	go func() { errc <- w.Lock(ctx) }()
	waitChildren(t, hk, "/iso/lock", 2)

	iso.Isolate(t)
	defer iso.Rejoin(t)
	require.NoError(t, h.Unlock(ctx))
	x := concurrency.NewMutex(newSession(t, hk, 5*time.Second), "/iso/lock")
	xc := make(chan error, 1)
	go func() { xc <- x.Lock(ctx) }()

	select {
	case err := <-errc:
		require.ErrorIs(t, err, concurrency.ErrSessionExpired, "the cut-off waiter must not be granted")
	case <-time.After(30 * time.Second):
		t.Fatal("the cut-off waiter neither lost its session nor returned")
	}
	select {
	case err := <-xc:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the majority-side contender was not granted")
	}
	require.Zero(t, w.Token())
	require.NoError(t, x.Unlock(ctx))
}
