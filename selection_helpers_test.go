package client

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/clock"
	"github.com/etcdv2/client/internal/v2fake"
)

// waitTimer waits until the clock has made a timer since the last call.
func waitTimer(t *testing.T, clk *clock.Fake) {
	t.Helper()
	select {
	case <-clk.Added():
	case <-time.After(10 * time.Second):
		t.Fatal("no timer was created")
	}
}

// detRand returns a deterministic, concurrency-safe rnd for newClient.
func detRand(seed uint64) func(int64) int64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(n int64) int64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Int64N(n)
	}
}

// detIntN returns a deterministic intn for selectors.
func detIntN(seed uint64) func(int) int {
	f := detRand(seed)
	return func(n int) int { return int(f(int64(n))) }
}

// refused is the error a dial to a closed port gives.
func refused(host string) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{}, Err: &net.DNSError{Err: syscall.ECONNREFUSED.Error(), Name: host}}
}

// fakeRT is a scriptable RoundTripper: one handler per host.
type fakeRT struct {
	mu    sync.Mutex
	hosts map[string]func(*http.Request) (*http.Response, error)
	calls map[string]int // by host and path: "host path"
}

func newFakeRT() *fakeRT {
	return &fakeRT{hosts: map[string]func(*http.Request) (*http.Response, error){}, calls: map[string]int{}}
}

func (f *fakeRT) set(host string, h func(*http.Request) (*http.Response, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts[host] = h
}

func (f *fakeRT) count(host, path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[host+" "+path]
}

func (f *fakeRT) total(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k, v := range f.calls {
		if strings.HasSuffix(k, " "+path) {
			n += v
		}
	}
	return n
}

func (f *fakeRT) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.calls[req.URL.Host+" "+req.URL.Path]++
	h := f.hosts[req.URL.Host]
	f.mu.Unlock()
	if h == nil {
		return nil, refused(req.URL.Host)
	}
	return h(req)
}

func (f *fakeRT) CancelRequest(*http.Request) {}

// answer builds a response with a JSON body and etcd headers.
func answer(req *http.Request, status int, index uint64, body string) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Etcd-Cluster-Id", "cafe")
	if index > 0 {
		h.Set("X-Etcd-Index", fmt.Sprint(index))
	}
	return &http.Response{
		StatusCode: status, Header: h, Request: req,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
	}
}

func okHandler(index uint64) func(*http.Request) (*http.Response, error) {
	return func(req *http.Request) (*http.Response, error) {
		return answer(req, 200, index, `{"etcdserver":"2.3.8","etcdcluster":"2.3.0"}`), nil
	}
}

func unavailableHandler(req *http.Request) (*http.Response, error) {
	return answer(req, 500, 0, `{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: no leader"}`), nil
}

// newClockedClient makes a client with a fake clock and deterministic
// randomness and closes it at cleanup.
func newClockedClient(t *testing.T, cfg Config, clk clock.Clock) *httpClusterClient {
	t.Helper()
	if clk == nil {
		clk = clock.NewFake()
	}
	cl, err := newClient(cfg, clk, detRand(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl.(*httpClusterClient)
}

// read makes a plain read through the request loop and closes the answer.
func read(ctx context.Context, c *httpClusterClient) (string, error) {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/v2/keys/k", kind: KindRead, replayable: true})
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.endpoint, nil
}

// stateOf returns the health state of the endpoint url.
func stateOf(c *httpClusterClient, url string) EndpointStats {
	for _, e := range c.Stats().Endpoints {
		if e.URL == url {
			return e
		}
	}
	return EndpointStats{}
}

// member is one fake v2 member on loopback; mode and delay script its
// faults.
type member struct {
	srv   *v2fake.Server
	url   string
	mode  atomic.Int32 // modeOK, modeHung, modeNoLeader
	delay atomic.Int64 // nanoseconds added to key requests
}

const (
	modeOK = iota
	modeHung
	modeNoLeader
)

// startMembers starts n fake members of the cluster "cafe" whose key /k is
// "v". Hung members block until the test ends.
func startMembers(t *testing.T, n int) []*member {
	t.Helper()
	ms := make([]*member, n)
	for i := range ms {
		m := &member{srv: v2fake.Start(t, v2fake.Options{ClusterID: "cafe", Index: 10, Version: `{"etcdserver":"2.3.8","etcdcluster":"2.3.0"}`})}
		m.srv.Set("/k", "v")
		m.url = m.srv.URL
		m.srv.On("*", m.fault)
		ms[i] = m
	}
	return ms
}

func (m *member) fault(w http.ResponseWriter, r *http.Request, next http.Handler) {
	switch m.mode.Load() {
	case modeHung:
		v2fake.Hang()(w, r, next)
		return
	case modeNoLeader:
		w.Header().Set("X-Etcd-Cluster-Id", "cafe")
		v2fake.NoLeader()(w, r, next)
		return
	}
	if d := time.Duration(m.delay.Load()); d > 0 && r.URL.Path != "/version" {
		v2fake.Delay(d)(w, r, next) // simulated service time
		return
	}
	next.ServeHTTP(w, r)
}

// keys counts the requests received other than /version; version those
// to /version.
func (m *member) keys() int64 {
	return int64(m.srv.CountFunc(func(r v2fake.Request) bool { return r.Path != "/version" }))
}
func (m *member) version() int64 { return int64(m.srv.Count("/version")) }

// kill makes the member refuse new connections and drops the open ones,
// as a killed process would.
func (m *member) kill() { m.srv.Kill() }

func urlsOf(ms []*member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.url
	}
	return out
}

func memberAt(ms []*member, url string) *member {
	for _, m := range ms {
		if m.url == url {
			return m
		}
	}
	return nil
}
