package integration_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// recorder wraps a selector and records the endpoint of every attempt that
// got an answer, and of every failed one.
type recorder struct {
	client.Selector
	mu    sync.Mutex
	ok    map[string]int
	fail  map[string]int
	last  string
	total int
}

func newRecorder(s client.Selector) *recorder {
	return &recorder{Selector: s, ok: map[string]int{}, fail: map[string]int{}}
}

func (r *recorder) Observe(o client.Outcome) {
	if ob, ok := r.Selector.(client.Observer); ok {
		ob.Observe(o)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if o.Err == nil {
		r.ok[o.Endpoint.URL]++
		r.last = o.Endpoint.URL
	} else {
		r.fail[o.Endpoint.URL]++
	}
}

func (r *recorder) lastOK() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *recorder) okAt(url string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok[url]
}

func memberByURL(t *testing.T, c *testbed.Cluster, url string) *testbed.Member {
	t.Helper()
	for _, m := range c.Members() {
		if m.URL() == url {
			return m
		}
	}
	t.Fatalf("no member serves %s", url)
	return nil
}

func newClient(t *testing.T, cfg client.Config) client.Client {
	t.Helper()
	c, err := client.New(withEnvTLS(t, cfg))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// read is a plain read that goes through the request loop.
func read(ctx context.Context, c client.Client) error {
	_, err := c.GetVersion(ctx)
	return err
}

func TestKillPinnedMemberReadsKeepWorking(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3})
	rec := newRecorder(client.Sticky())
	c := newClient(t, client.Config{Endpoints: cl.ClientURLs(), Selector: rec})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, read(ctx, c))
	pinned := rec.lastOK()
	memberByURL(t, cl, pinned).Kill(t)

	for i := 0; i < 1000; i++ {
		require.NoError(t, read(ctx, c), "read %d after kill -9 of the pinned member", i)
	}
	require.NotEqual(t, pinned, rec.lastOK())
}

func TestStoppedMemberCostsOneAttemptTimeout(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3})
	// Round robin over the members, so that the stopped member keeps being
	// chosen first for some requests and each of them must fail over.
	var next atomic.Uint64
	rr := client.SelectorFunc(func(_ client.RequestInfo, cands []client.Endpoint) int {
		return int(next.Add(1) % uint64(len(cands)))
	})
	rec := newRecorder(rr)
	c := newClient(t, client.Config{Endpoints: cl.ClientURLs(), Selector: rec, HeaderTimeoutPerRequest: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	require.NoError(t, read(ctx, c))
	stopped := cl.Members()[0]
	stopped.Stop(t)
	stoppedAt := time.Now()
	before := rec.okAt(stopped.URL())

	for i := 0; i < 12; i++ {
		start := time.Now()
		// The caller's deadline is far away: only the per-attempt timeout
		// can get the request off the stopped member.
		require.NoError(t, read(ctx, c))
		require.Less(t, time.Since(start), 1500*time.Millisecond, "request %d took the attempt timeout at most", i)
	}
	require.Equal(t, before, rec.okAt(stopped.URL()), "the stopped member answered nothing")
	t.Logf("12 reads with a stopped member took %v", time.Since(stoppedAt))

	stopped.Continue(t)
	// Keep a steady trickle of reads going until the member, readmitted
	// by the client's probe after its ejection, answers one of them.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < 6000 && rec.okAt(stopped.URL()) == before && time.Now().Before(deadline); i++ {
		<-tick.C
		require.NoError(t, read(ctx, c))
	}
	require.Greater(t, rec.okAt(stopped.URL()), before, "the member is used again after SIGCONT")
}

func TestSyncFollowsMembership(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3})
	first := cl.Members()[0].URL()
	c := newClient(t, client.Config{Endpoints: []string{first}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, c.Sync(ctx))
	require.ElementsMatch(t, cl.ClientURLs(), c.Endpoints())

	added := cl.AddMember(t)
	require.NoError(t, c.Sync(ctx))
	require.ElementsMatch(t, cl.ClientURLs(), c.Endpoints())
	require.Contains(t, c.Endpoints(), added.URL())

	// AutoSync in the background notices a removal by itself.
	syncCtx, stopSync := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.AutoSync(syncCtx, 50*time.Millisecond) }()
	cl.RemoveMember(t, added)
	require.Eventually(t, func() bool {
		eps := c.Endpoints()
		for _, e := range eps {
			if e == added.URL() {
				return false
			}
		}
		return len(eps) == 3
	}, 20*time.Second, 20*time.Millisecond)
	require.ElementsMatch(t, cl.ClientURLs(), c.Endpoints())
	stopSync()
	require.True(t, errors.Is(<-done, context.Canceled))
}

// attemptLog records the endpoint of every attempt from the client's debug log.
type attemptLog struct {
	mu  sync.Mutex
	eps []string
}

func (a *attemptLog) Enabled(context.Context, slog.Level) bool { return true }
func (a *attemptLog) WithAttrs([]slog.Attr) slog.Handler       { return a }
func (a *attemptLog) WithGroup(string) slog.Handler            { return a }
func (a *attemptLog) Handle(_ context.Context, r slog.Record) error {
	var ep, path string
	var status int64
	r.Attrs(func(at slog.Attr) bool {
		switch at.Key {
		case "endpoint":
			ep = at.Value.String()
		case "path":
			path = at.Value.String()
		case "status":
			status = at.Value.Int64()
		}
		return true
	})
	if path == "/version" && status == 200 {
		a.mu.Lock()
		a.eps = append(a.eps, ep)
		a.mu.Unlock()
	}
	return nil
}

func (a *attemptLog) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.eps) == 0 {
		return ""
	}
	return a.eps[len(a.eps)-1]
}

func TestPrioritizeLeaderFollowsNewLeader(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3})
	log := &attemptLog{}
	c := newClient(t, client.Config{Endpoints: cl.ClientURLs(), SelectionMode: client.EndpointSelectionPrioritizeLeader, Logger: slog.New(log)})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, c.Sync(ctx))
	leader, err := cl.Leader(ctx)
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		require.NoError(t, read(ctx, c))
		require.Equal(t, leader.URL(), log.last(), "requests go to the leader")
	}

	leader.Kill(t)
	var newLeader *testbed.Member
	require.Eventually(t, func() bool {
		m, err := cl.Leader(ctx)
		if err != nil || m == leader {
			return false
		}
		newLeader = m
		return true
	}, 30*time.Second, 50*time.Millisecond)
	// No Sync: reads that show the new raft term make the client look the
	// leader up by itself.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 2000 && log.last() != newLeader.URL() && time.Now().Before(deadline); i++ {
		require.NoError(t, read(ctx, c))
	}
	require.Equal(t, newLeader.URL(), log.last())
	for i := 0; i < 5; i++ {
		require.NoError(t, read(ctx, c))
		require.Equal(t, newLeader.URL(), log.last(), "requests stay on the new leader")
	}
}

func TestDocumentedErrorsOfBadEndpoints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		url := "http://" + l.Addr().String()
		require.NoError(t, l.Close())
		c := newClient(t, client.Config{Endpoints: []string{url}})
		err = read(ctx, c)
		require.ErrorIs(t, err, client.ErrClusterUnavailable)
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		var ee *client.EndpointError
		require.ErrorAs(t, err, &ee)
		require.Equal(t, url, ee.Endpoint)
	})

	t.Run("black hole", func(t *testing.T) {
		cl := testbed.NewCluster(t, testbed.Options{Size: 1, ProxyClients: true})
		m := cl.Members()[0]
		m.Proxy().BlackHole(true)
		c := newClient(t, client.Config{Endpoints: []string{m.URL()}, HeaderTimeoutPerRequest: 300 * time.Millisecond})
		start := time.Now()
		err := read(ctx, c)
		require.ErrorIs(t, err, client.ErrClusterUnavailable)
		require.ErrorIs(t, err, client.ErrAttemptTimeout)
		require.Less(t, time.Since(start), 3*time.Second)
		m.Proxy().BlackHole(false)
		require.NoError(t, read(ctx, c))
	})

	t.Run("not etcd", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body>It works!</body></html>")
		}))
		defer srv.Close()
		c := newClient(t, client.Config{Endpoints: []string{srv.URL}})
		_, err := c.GetVersion(ctx)
		require.ErrorIs(t, err, client.ErrInvalidJSON)
	})

	t.Run("cancel returns at once", func(t *testing.T) {
		arrived := make(chan struct{}, 1)
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		c := newClient(t, client.Config{Endpoints: []string{srv.URL}, HeaderTimeoutPerRequest: -1})
		cctx, ccancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- read(cctx, c) }()
		select {
		case <-arrived:
		case err := <-errc:
			t.Fatalf("the request ended before reaching the server: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("the request never reached the server")
		}
		start := time.Now()
		ccancel()
		select {
		case err := <-errc:
			require.True(t, err == context.Canceled, "got %v", err)
			require.Less(t, time.Since(start), 500*time.Millisecond)
		case <-time.After(5 * time.Second):
			t.Fatal("cancel did not return")
		}
	})
}

func TestStoppedPinnedMemberFailsOverOnce(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3})
	rec := newRecorder(client.Sticky())
	c := newClient(t, client.Config{Endpoints: cl.ClientURLs(), Selector: rec, HeaderTimeoutPerRequest: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, read(ctx, c))
	pinned := memberByURL(t, cl, rec.lastOK())
	pinned.Stop(t)

	start := time.Now()
	require.NoError(t, read(ctx, c))
	first := time.Since(start)
	require.Less(t, first, 1500*time.Millisecond, "the first request costs one attempt timeout")
	require.GreaterOrEqual(t, first, 900*time.Millisecond, "the first request did go to the stopped member")
	require.NotEqual(t, pinned.URL(), rec.lastOK())
	start = time.Now()
	for i := 0; i < 100; i++ {
		require.NoError(t, read(ctx, c))
	}
	require.Less(t, time.Since(start), time.Second, "later requests stay on the new pin")
	pinned.Continue(t)
}
