package testbed_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client/integration/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

// client returns a plain HTTP client with the given timeout and no
// connection reuse (so nothing lingers for the leak check).
func client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil, TLSClientConfig: testbed.EnvTLSConfig()},
	}
}

type node struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type keysResp struct {
	Action    string `json:"action"`
	Node      node   `json:"node"`
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
}

// put sets key via base and returns the HTTP status.
func put(t *testing.T, base, key, value string) (int, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, base+"/v2/keys/"+key, strings.NewReader(url.Values{"value": {value}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client(10 * time.Second).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// mustPut retries put for up to 20s until it returns 200 or 201.
func mustPut(t *testing.T, base, key, value string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := put(t, base, key, value)
		if err == nil && (st == http.StatusOK || st == http.StatusCreated) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PUT %s/v2/keys/%s: status %d, err %v", base, key, st, err)
		}
		time.Sleep(100 * time.Millisecond) // retry pacing
	}
}

// get reads key via base (a plain, non-quorum read).
func get(base, key string, timeout time.Duration) (string, int, error) {
	resp, err := client(timeout).Get(base + "/v2/keys/" + key)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var kr keysResp
	if err := json.NewDecoder(resp.Body).Decode(&kr); err != nil {
		return "", resp.StatusCode, err
	}
	return kr.Node.Value, resp.StatusCode, nil
}

// eventually polls f every 50 ms until it returns nil or d passes.
func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", d, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

func valueIs(base, key, want string) func() error {
	return func() error {
		v, st, err := get(base, key, 2*time.Second)
		if err != nil {
			return err
		}
		if st != http.StatusOK || v != want {
			return fmt.Errorf("GET %s: status %d value %q, want %q", key, st, v, want)
		}
		return nil
	}
}

func healthStatus(base string) (int, error) {
	resp, err := client(3 * time.Second).Get(base + "/health")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func membersCount(t *testing.T, base string) int {
	t.Helper()
	resp, err := client(5 * time.Second).Get(base + "/v2/members")
	require.NoError(t, err)
	defer resp.Body.Close()
	var ml struct {
		Members []struct {
			ID         string   `json:"id"`
			ClientURLs []string `json:"clientURLs"`
		} `json:"members"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ml))
	return len(ml.Members)
}

func TestSingleMember(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{})
	require.Len(t, c.Members(), 1)
	m := c.Members()[0]
	require.NotZero(t, m.PID())
	require.NotEmpty(t, m.ID())
	require.Equal(t, m.ClientURL(), m.URL())
	require.Nil(t, m.Proxy())

	resp, err := client(5 * time.Second).Get(m.ClientURL() + "/version")
	require.NoError(t, err)
	var v struct {
		Server string `json:"etcdserver"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	resp.Body.Close()
	t.Logf("etcd server version %s", v.Server)
	if os.Getenv(testbed.EnvEtcdBin) == "" {
		require.Equal(t, "3.5.35", v.Server)
	}

	mustPut(t, m.URL(), "hello", "world")
	require.NoError(t, valueIs(m.URL(), "hello", "world")())
	l, err := c.Leader(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Same(t, m, l)
}

func TestThreeMembersHealthyLeader(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := testbed.NewCluster(t, testbed.Options{Size: 3})
	t.Logf("3 members healthy after %s", time.Since(start))
	require.Len(t, c.Members(), 3)
	require.Len(t, c.ClientURLs(), 3)
	require.NoError(t, c.WaitHealthy(ctxT(t, 10*time.Second)))
	l, err := c.Leader(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	t.Logf("leader %s (%s)", l.Name(), l.ID())
	ids := map[string]bool{}
	for _, m := range c.Members() {
		require.NotEmpty(t, m.ID())
		ids[m.ID()] = true
	}
	require.Len(t, ids, 3)
	require.Equal(t, 3, membersCount(t, l.ClientURL()))

	ms := c.Members()
	mustPut(t, ms[0].URL(), "k", "v")
	for _, m := range ms {
		eventually(t, 5*time.Second, valueIs(m.URL(), "k", "v"))
	}
}

func TestKillRestart(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Size: 3})
	l, err := c.Leader(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	mustPut(t, l.URL(), "k", "v1")

	// Kill -9 the leader; the other two elect a new one and accept writes.
	oldPID, url := l.PID(), l.ClientURL()
	l.Kill(t)
	require.False(t, l.Running())
	require.Error(t, syscall.Kill(oldPID, 0), "process should be gone")
	_, err = healthStatus(url)
	require.Error(t, err, "killed member should refuse connections")
	require.NoError(t, c.WaitHealthy(ctxT(t, 15*time.Second)))
	nl, err := c.Leader(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.NotSame(t, l, nl)
	mustPut(t, nl.URL(), "k", "v2")

	// Restart: same ports and data, new process; it catches up.
	l.Restart(t)
	require.True(t, l.Running())
	require.NotEqual(t, oldPID, l.PID())
	require.Equal(t, url, l.ClientURL())
	require.NoError(t, c.WaitHealthy(ctxT(t, 15*time.Second)))
	eventually(t, 10*time.Second, valueIs(l.URL(), "k", "v2"))
}

func TestStopContinue(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{})
	m := c.Members()[0]
	mustPut(t, m.URL(), "k", "v")

	m.Stop(t)
	start := time.Now()
	_, _, err := get(m.URL(), "k", 500*time.Millisecond)
	require.Error(t, err)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "want a timeout, got %v", err)
	require.Less(t, time.Since(start), 3*time.Second)

	m.Continue(t)
	eventually(t, 5*time.Second, valueIs(m.URL(), "k", "v"))
	require.NoError(t, c.WaitHealthy(ctxT(t, 10*time.Second)))
}

func TestAddRemoveMember(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Size: 3})
	mustPut(t, c.Members()[0].URL(), "k", "v")

	added := c.AddMember(t)
	require.Len(t, c.Members(), 4)
	require.NotEmpty(t, added.ID())
	require.Equal(t, "m3", added.Name())
	require.NoError(t, c.WaitHealthy(ctxT(t, 15*time.Second)))
	require.Equal(t, 4, membersCount(t, added.URL()))
	eventually(t, 10*time.Second, valueIs(added.URL(), "k", "v"))
	mustPut(t, added.URL(), "k", "v2")

	victim := c.Members()[0]
	c.RemoveMember(t, victim)
	require.Len(t, c.Members(), 3)
	require.False(t, victim.Running())
	for _, m := range c.Members() {
		require.NotSame(t, victim, m)
	}
	require.NoError(t, c.WaitHealthy(ctxT(t, 15*time.Second)))
	require.Equal(t, 3, membersCount(t, added.URL()))
	mustPut(t, c.Members()[0].URL(), "k", "v3")
	eventually(t, 10*time.Second, valueIs(added.URL(), "k", "v3"))
}

func TestFiveMembers(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := testbed.NewCluster(t, testbed.Options{Size: 5})
	t.Logf("5 members healthy after %s", time.Since(start))
	require.Len(t, c.Members(), 5)
	l, err := c.Leader(ctxT(t, 5*time.Second))
	require.NoError(t, err)

	// Two followers down: the remaining three still have a quorum.
	var down []*testbed.Member
	for _, m := range c.Members() {
		if m != l && len(down) < 2 {
			down = append(down, m)
		}
	}
	down[0].Kill(t)
	down[1].Stop(t)
	require.NoError(t, c.WaitHealthy(ctxT(t, 15*time.Second)))
	mustPut(t, l.URL(), "k", "five")
	down[1].Continue(t)
	down[0].Restart(t)
	require.NoError(t, c.WaitHealthy(ctxT(t, 15*time.Second)))
	for _, m := range c.Members() {
		eventually(t, 10*time.Second, valueIs(m.URL(), "k", "five"))
	}

	// Membership changes on a 5-member cluster too.
	c.RemoveMember(t, down[0])
	added := c.AddMember(t)
	require.Len(t, c.Members(), 5)
	require.NoError(t, c.WaitHealthy(ctxT(t, 15*time.Second)))
	eventually(t, 10*time.Second, valueIs(added.URL(), "k", "five"))
}

// slowServer is an HTTP target for proxy tests: /fast answers at once,
// /slow blocks until release is called or the request is cancelled.
type slowServer struct {
	*httptest.Server
	inSlow atomic.Int32 // requests that reached the /slow handler
	ch     chan struct{}
	once   sync.Once
}

func (s *slowServer) release() { s.once.Do(func() { close(s.ch) }) }

func newSlowServer(t *testing.T) *slowServer {
	s := &slowServer{ch: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			s.inSlow.Add(1)
			select {
			case <-s.ch:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(func() { s.release(); s.Close() })
	return s
}

func fetch(c *http.Client, u string) error {
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || string(b) != "ok" {
		return fmt.Errorf("status %d body %q", resp.StatusCode, b)
	}
	return nil
}

func TestProxyDelay(t *testing.T) {
	t.Parallel()
	srv := newSlowServer(t)
	p := testbed.NewProxy(t, srv.Listener.Addr().String())
	require.Equal(t, "http://"+p.Addr(), p.URL())
	require.NoError(t, fetch(client(5*time.Second), p.URL()+"/fast"))

	p.SetDelay(200 * time.Millisecond)
	start := time.Now()
	require.NoError(t, fetch(client(5*time.Second), p.URL()+"/fast"))
	took := time.Since(start)
	require.GreaterOrEqual(t, took, 400*time.Millisecond, "request and response each delayed")
	require.Less(t, took, 3*time.Second)

	// A client timeout shorter than the delay fires.
	err := fetch(client(150*time.Millisecond), p.URL()+"/fast")
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "got %v", err)

	p.SetDelay(0)
	start = time.Now()
	require.NoError(t, fetch(client(5*time.Second), p.URL()+"/fast"))
	require.Less(t, time.Since(start), 300*time.Millisecond)
}

func TestProxyBlackHole(t *testing.T) {
	t.Parallel()
	srv := newSlowServer(t)
	p := testbed.NewProxy(t, srv.Listener.Addr().String())

	// An in-flight request goes silent when the hole opens.
	errc := make(chan error, 1)
	go func() { errc <- fetch(client(time.Second), p.URL()+"/slow") }()
	eventually(t, 5*time.Second, func() error {
		if srv.inSlow.Load() == 0 {
			return errors.New("request not at server yet")
		}
		return nil
	})
	p.BlackHole(true)
	srv.release()
	select {
	case err := <-errc:
		var ne net.Error
		require.True(t, errors.As(err, &ne) && ne.Timeout(), "in-flight request should time out, got %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("client did not give up")
	}

	// New connections are accepted but never answered.
	err := fetch(client(300*time.Millisecond), p.URL()+"/fast")
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "got %v", err)
	conn, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	require.NoError(t, err, "black hole still accepts")
	conn.Close()

	p.BlackHole(false)
	require.NoError(t, fetch(client(5*time.Second), p.URL()+"/fast"))
}

func TestProxyResetAll(t *testing.T) {
	t.Parallel()
	srv := newSlowServer(t)
	p := testbed.NewProxy(t, srv.Listener.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- fetch(client(10*time.Second), p.URL()+"/slow") }()
	// Wait until the slow request is in flight through the proxy: a
	// connection the proxy has not accepted yet is not reset.
	eventually(t, 5*time.Second, func() error {
		if srv.inSlow.Load() == 0 {
			return errors.New("slow request not at the server yet")
		}
		return nil
	})
	// A second connection, idle after its response has started.
	conn, err := net.DialTimeout("tcp", p.Addr(), time.Second) // a second, idle conn
	require.NoError(t, err)
	defer conn.Close()
	eventually(t, 5*time.Second, func() error {
		// The idle conn is established through the proxy once a write
		// succeeds; that also proves the accept loop processed it.
		_, err := conn.Write([]byte("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"))
		return err
	})
	buf := make([]byte, 2)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadFull(conn, buf) // response started: the conn is proxied
	require.NoError(t, err)

	p.ResetAll()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadAll(conn)
	require.ErrorIs(t, err, syscall.ECONNRESET)
	select {
	case err := <-errc:
		require.Error(t, err)
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("want connection reset, got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight request not reset")
	}
	require.NoError(t, fetch(client(5*time.Second), p.URL()+"/fast"))
}

func TestProxyRefuse(t *testing.T) {
	t.Parallel()
	srv := newSlowServer(t)
	p := testbed.NewProxy(t, srv.Listener.Addr().String())
	require.NoError(t, fetch(client(5*time.Second), p.URL()+"/fast"))

	p.Refuse(true)
	err := fetch(client(5*time.Second), p.URL()+"/fast")
	require.ErrorIs(t, err, syscall.ECONNREFUSED)

	p.Refuse(false)
	require.NoError(t, fetch(client(5*time.Second), p.URL()+"/fast"))
	p.Close()
	p.Close() // idempotent
	require.ErrorIs(t, fetch(client(5*time.Second), p.URL()+"/fast"), syscall.ECONNREFUSED)
}

// TestProxyConcurrent flips every fault from several goroutines while
// requests flow, for the race detector; it asserts only that nothing hangs.
func TestProxyConcurrent(t *testing.T) {
	t.Parallel()
	srv := newSlowServer(t)
	p := testbed.NewProxy(t, srv.Listener.Addr().String())
	stop := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				_ = fetch(client(200*time.Millisecond), p.URL()+"/fast")
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := 0; time.Now().Before(stop); j++ {
			p.SetDelay(time.Duration(j%3) * time.Millisecond)
			p.BlackHole(j%5 == 0)
			if j%7 == 0 {
				p.ResetAll()
			}
			p.Refuse(j%11 == 0)
			time.Sleep(5 * time.Millisecond) // pacing
		}
		p.Refuse(false)
		p.BlackHole(false)
	}()
	wg.Wait()
	p.ResetAll()
	require.NoError(t, fetch(client(5*time.Second), p.URL()+"/fast"))
	p.Close()
}

func TestClientProxyCluster(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{ProxyClients: true})
	m := c.Members()[0]
	p := m.Proxy()
	require.NotNil(t, p)
	require.Equal(t, p.URL(), m.URL())
	require.NotEqual(t, m.ClientURL(), m.URL())
	require.Equal(t, []string{p.URL()}, c.ClientURLs())

	resp, err := client(5 * time.Second).Get(m.URL() + "/v2/members")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), p.URL(), "advertised client URL is the proxy")

	mustPut(t, m.URL(), "k", "v")
	p.BlackHole(true)
	_, _, err = get(m.URL(), "k", 300*time.Millisecond)
	require.Error(t, err)
	require.NoError(t, valueIs(m.ClientURL(), "k", "v")(), "direct URL unaffected")
	p.BlackHole(false)
	p.ResetAll()
	require.NoError(t, valueIs(m.URL(), "k", "v")())

	p.Refuse(true)
	_, _, err = get(m.URL(), "k", 2*time.Second)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	p.Refuse(false)
	require.NoError(t, valueIs(m.URL(), "k", "v")())
}

func TestIsolateStaleRead(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Size: 3, ProxyPeers: true})
	for _, m := range c.Members() {
		require.NotNil(t, m.PeerProxy())
		require.Equal(t, m.PeerProxy().URL(), m.PeerURL())
	}
	l, err := c.Leader(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	var x, other *testbed.Member
	for _, m := range c.Members() {
		if m == l {
			continue
		}
		if x == nil {
			x = m
		} else {
			other = m
		}
	}
	mustPut(t, l.URL(), "k", "old")
	eventually(t, 5*time.Second, valueIs(x.URL(), "k", "old"))

	x.Isolate(t)
	mustPut(t, other.URL(), "k", "new")
	eventually(t, 5*time.Second, valueIs(l.URL(), "k", "new"))
	require.NoError(t, valueIs(x.URL(), "k", "old")(), "isolated member serves a stale read")
	eventually(t, 5*time.Second, func() error {
		st, err := healthStatus(x.ClientURL())
		if err == nil && st == http.StatusOK {
			return errors.New("isolated member still healthy")
		}
		return nil
	})
	// The majority stays healthy.
	require.NoError(t, valueIs(x.URL(), "k", "old")(), "still stale")
	for _, m := range []*testbed.Member{l, other} {
		st, err := healthStatus(m.ClientURL())
		if err != nil || st != http.StatusOK {
			// A leader change is possible right after isolation; wait.
			eventually(t, 10*time.Second, func() error {
				st, err := healthStatus(m.ClientURL())
				if err != nil || st != http.StatusOK {
					return fmt.Errorf("%s health %d %v", m.Name(), st, err)
				}
				return nil
			})
		}
	}

	x.Rejoin(t)
	require.NoError(t, c.WaitHealthy(ctxT(t, 20*time.Second)))
	eventually(t, 10*time.Second, valueIs(x.URL(), "k", "new"))
}

func TestIsolateLeader(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Size: 3, ProxyPeers: true})
	old, err := c.Leader(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	mustPut(t, old.URL(), "k", "old")
	eventually(t, 5*time.Second, func() error {
		for _, m := range c.Members() {
			if err := valueIs(m.URL(), "k", "old")(); err != nil {
				return err
			}
		}
		return nil
	})

	old.Isolate(t)
	// The majority elects a new leader; the old one steps down (check
	// quorum) and reports itself unhealthy.
	eventually(t, 10*time.Second, func() error {
		l, err := c.Leader(ctxT(t, time.Second))
		if err != nil {
			return err
		}
		if l == old {
			return errors.New("old leader still leads")
		}
		return nil
	})
	var other *testbed.Member
	for _, m := range c.Members() {
		if m != old {
			other = m
		}
	}
	mustPut(t, other.URL(), "k", "new")
	eventually(t, 5*time.Second, func() error {
		st, err := healthStatus(old.ClientURL())
		if err == nil && st == http.StatusOK {
			return errors.New("isolated old leader still healthy")
		}
		return nil
	})
	require.NoError(t, valueIs(old.URL(), "k", "old")(), "stale read on the isolated old leader")

	old.Rejoin(t)
	require.NoError(t, c.WaitHealthy(ctxT(t, 20*time.Second)))
	eventually(t, 10*time.Second, valueIs(old.URL(), "k", "new"))
}

func TestReapLeftovers(t *testing.T) {
	t.Parallel()
	// A dead owner: a process that has exited.
	owner := exec.Command("true")
	require.NoError(t, owner.Run())
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err)
	child := exec.Command(sleep, "60")
	require.NoError(t, child.Start())
	done := make(chan error, 1)
	go func() { done <- child.Wait() }()
	t.Cleanup(func() { _ = child.Process.Kill() })

	cache, err := os.UserCacheDir()
	if err != nil || cache == "" {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "etcdv2-client-testbed", "pids")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	f := filepath.Join(dir, fmt.Sprintf("%d.%d", owner.Process.Pid, child.Process.Pid))
	require.NoError(t, os.WriteFile(f, []byte(sleep+"\n"), 0o644))

	killed := testbed.ReapLeftovers()
	require.Contains(t, killed, child.Process.Pid)
	select {
	case err := <-done:
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee))
		require.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal())
	case <-time.After(5 * time.Second):
		t.Fatal("leftover not killed")
	}
	_, err = os.Stat(f)
	require.True(t, os.IsNotExist(err))
}
