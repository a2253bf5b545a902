package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/v2fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeMember is a fake v2 member of the cluster clusterID whose every
// answer, /version and scripted ones included, carries the cluster ID and
// the raft term; handler, when set, answers instead of the member.
type fakeMember struct {
	*v2fake.Server
	mu      sync.Mutex
	handler http.HandlerFunc
}

func newFakeMember(t *testing.T, clusterID string) *fakeMember {
	f := &fakeMember{Server: v2fake.Start(t, v2fake.Options{ClusterID: clusterID})}
	f.On("*", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		w.Header().Set("X-Etcd-Cluster-Id", clusterID)
		w.Header().Set("X-Raft-Term", fmt.Sprint(f.Term()))
		f.mu.Lock()
		h := f.handler
		f.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
	return f
}

func (f *fakeMember) setHandler(h http.HandlerFunc) {
	f.mu.Lock()
	f.handler = h
	f.mu.Unlock()
}

// hits counts the requests received; keyHits those below /v2/keys.
func (f *fakeMember) hits() int64    { return int64(f.Count("*")) }
func (f *fakeMember) keyHits() int64 { return int64(f.Count("/v2/keys*")) }

// refusedURL returns the URL of a loopback port nothing listens on.
func refusedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

func newTestClient(t *testing.T, cfg Config) *httpClusterClient {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c.(*httpClusterClient)
}

func get(c *httpClusterClient, ctx context.Context, path string) (string, error) {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: path, kind: KindRead, replayable: true})
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b), err
}

func TestNewValidatesEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name string
		eps  []string
		want error
	}{
		{"none", nil, ErrNoEndpoints},
		{"empty list", []string{}, ErrNoEndpoints},
		{"no scheme", []string{"127.0.0.1:2379"}, ErrInvalidEndpoint},
		{"bad scheme", []string{"ftp://127.0.0.1:2379"}, ErrInvalidEndpoint},
		{"no host", []string{"http://"}, ErrInvalidEndpoint},
		{"credentials in URL", []string{"http://u:p@127.0.0.1:2379"}, ErrInvalidEndpoint},
		{"query", []string{"http://127.0.0.1:2379?x=1"}, ErrInvalidEndpoint},
		{"unparsable", []string{"http://[::1"}, ErrInvalidEndpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{Endpoints: tc.eps})
			require.ErrorIs(t, err, tc.want)
			require.Nil(t, c)
		})
	}
	c := newTestClient(t, Config{Endpoints: []string{"http://127.0.0.1:2379/", "http://127.0.0.1:2379", "https://127.0.0.1:2380"}})
	require.ElementsMatch(t, []string{"http://127.0.0.1:2379", "https://127.0.0.1:2380"}, c.Endpoints())
	require.ErrorIs(t, c.SetEndpoints(nil), ErrNoEndpoints)
	require.Len(t, c.Endpoints(), 2, "a failed SetEndpoints keeps the endpoints")
}

func TestFailoverFromRefusedEndpoint(t *testing.T) {
	good := newFakeMember(t, "c1")
	good.Set("/a", "from the good member")
	dead := refusedURL(t)
	for i := 0; i < 20; i++ { // the shuffle puts the dead one first about half the time
		c := newTestClient(t, Config{Endpoints: []string{dead, good.URL}})
		body, err := get(c, context.Background(), "/v2/keys/a")
		require.NoError(t, err)
		require.Contains(t, body, `"key":"/a","value":"from the good member"`)
	}
}

func TestClusterErrorRecordsEveryAttempt(t *testing.T) {
	a, b := refusedURL(t), refusedURL(t)
	c := newTestClient(t, Config{Endpoints: []string{a, b}, Rounds: 1})
	_, err := get(c, context.Background(), "/v2/keys/a")
	var ce *ClusterError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, ErrClusterUnavailable)
	// Errors holds the raw transport errors, one per endpoint, as the
	// original client's: type assertions written for it keep working.
	require.Len(t, ce.Errors, 2)
	for _, e := range ce.Errors {
		_, ok := e.(*net.OpError)
		require.True(t, ok, "entry %T %v is not the dial error itself", e, e)
	}
	// Attempts tells which endpoint said what.
	require.Len(t, ce.Attempts, 2)
	var seen []string
	for _, e := range ce.Attempts {
		var ee *EndpointError
		require.ErrorAs(t, e, &ee)
		seen = append(seen, ee.Endpoint)
		var oe *net.OpError
		require.ErrorAs(t, e, &oe, "the cause is the dial error")
	}
	require.ElementsMatch(t, []string{a, b}, seen)
	var ee *EndpointError
	require.ErrorAs(t, err, &ee, "errors.As reaches the endpoint attribution")
	require.Contains(t, ce.AttemptsDetail(), a)
	require.Contains(t, ce.AttemptsDetail(), b)
	want := ErrClusterUnavailable.Error() + "; error #0: " + ce.Errors[0].Error() + "\n; error #1: " + ce.Errors[1].Error() + "\n"
	require.Equal(t, want, err.Error(), "the original client's text")
	require.Equal(t, "error #0: "+ce.Errors[0].Error()+"\nerror #1: "+ce.Errors[1].Error()+"\n", ce.Detail())
}

// TestClusterErrorOneEntryPerEndpoint: an endpoint tried in several rounds
// has one entry in Errors (its last error), and every attempt in Attempts;
// a header timeout has the original client's text and still matches
// ErrAttemptTimeout.
func TestClusterErrorOneEntryPerEndpoint(t *testing.T) {
	a := refusedURL(t)
	h := hangingMember(t)
	c := newTestClient(t, Config{Endpoints: []string{a, h.URL}, Rounds: 2, HeaderTimeoutPerRequest: 100 * time.Millisecond,
		Selector: preferOrder(a, h.URL)})
	_, err := get(c, context.Background(), "/v2/keys/a")
	var ce *ClusterError
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Errors, 2, "%v", ce.AttemptsDetail())
	require.GreaterOrEqual(t, len(ce.Attempts), 3, "%v", ce.AttemptsDetail())
	require.Equal(t, "client: endpoint "+h.URL+" exceeded header timeout", ce.Errors[1].Error())
	require.ErrorIs(t, ce.Errors[1], ErrAttemptTimeout)
	require.ErrorIs(t, err, ErrAttemptTimeout)
	_, isNetErr := ce.Errors[1].(net.Error)
	require.False(t, isNetErr, "the original client's header timeout was no net.Error")
}

// hangingMember accepts requests and never answers until the test ends.
func hangingMember(t *testing.T) *v2fake.Server {
	s := v2fake.Start(t, v2fake.Options{})
	s.On("*", v2fake.Hang())
	return s
}

func TestPerAttemptTimeoutFailsOver(t *testing.T) {
	hung := hangingMember(t)
	good := newFakeMember(t, "c1")
	c := newTestClient(t, Config{Endpoints: []string{hung.URL, good.URL}, HeaderTimeoutPerRequest: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 5; i++ {
		start := time.Now()
		_, err := get(c, ctx, "/v2/keys/a")
		require.NoError(t, err)
		require.Less(t, time.Since(start), 2*time.Second, "one attempt timeout at most, not the caller's deadline")
	}

	only := newTestClient(t, Config{Endpoints: []string{hung.URL}, HeaderTimeoutPerRequest: 100 * time.Millisecond})
	_, err := get(only, ctx, "/v2/keys/a")
	require.ErrorIs(t, err, ErrAttemptTimeout)
	require.ErrorIs(t, err, ErrClusterUnavailable)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "the caller's context did not expire")
}

func TestContextErrorsAreReturnedExactly(t *testing.T) {
	hung := hangingMember(t)
	c := newTestClient(t, Config{Endpoints: []string{hung.URL}, HeaderTimeoutPerRequest: -1})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := get(c, ctx, "/v2/keys/a")
	require.True(t, err == context.DeadlineExceeded, "got %v", err)

	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel2() }()
	start := time.Now()
	_, err = get(c, ctx2, "/v2/keys/a")
	require.True(t, err == context.Canceled, "got %v", err)
	require.Less(t, time.Since(start), time.Second)

	_, err = get(c, ctx2, "/v2/keys/a")
	require.True(t, err == context.Canceled, "an already cancelled context: got %v", err)
}

// brokenAfterRead reads the request and then drops the connection, so the
// client cannot know whether the write was applied.
func brokenAfterRead(t *testing.T) *v2fake.Server {
	s := v2fake.Start(t, v2fake.Options{})
	s.On("*", v2fake.Drop())
	return s
}

func TestWriteIsNotResentOnceItMayHaveArrived(t *testing.T) {
	broken := brokenAfterRead(t)
	good := newFakeMember(t, "c1")
	c := newTestClient(t, Config{Endpoints: []string{broken.URL}})
	// Learn nothing about the cluster first: no verification preflight.
	require.NoError(t, c.SetEndpoints([]string{broken.URL, good.URL}))
	c.selector = SelectorFunc(func(_ RequestInfo, cands []Endpoint) int {
		for i, e := range cands {
			if e.URL == broken.URL {
				return i
			}
		}
		return 0
	})
	r := &request{method: http.MethodPut, path: "/v2/keys/a", body: []byte("value=1"), contentType: "application/x-www-form-urlencoded", kind: KindWrite}
	_, err := c.do(context.Background(), r)
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	var oe *OutcomeUnknownError
	require.ErrorAs(t, err, &oe)
	require.Equal(t, broken.URL, oe.Endpoint)
	require.EqualValues(t, 1, broken.Count("*"))
	require.Zero(t, good.hits(), "the write was not resent to another member")

	// A replayable request fails over.
	r.replayable = true
	resp, err := c.do(context.Background(), r)
	require.NoError(t, err)
	resp.Body.Close()
	require.EqualValues(t, 1, good.hits())
}

func TestWriteNeverSentFailsOver(t *testing.T) {
	good := newFakeMember(t, "c1")
	c := newTestClient(t, Config{Endpoints: []string{refusedURL(t), good.URL}})
	for i := 0; i < 10; i++ {
		r := &request{method: http.MethodPost, path: "/v2/keys/q", kind: KindWrite}
		resp, err := c.do(context.Background(), r)
		require.NoError(t, err, "a refused connection means the request never left")
		resp.Body.Close()
	}
}

func TestServerErrors(t *testing.T) {
	failing := newFakeMember(t, "c1")
	failing.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request timed out","index":0}`)
	})
	good := newFakeMember(t, "c1")
	pickFailingFirst := SelectorFunc(func(_ RequestInfo, cands []Endpoint) int {
		for i, e := range cands {
			if e.URL == failing.URL {
				return i
			}
		}
		return 0
	})
	c := newTestClient(t, Config{Endpoints: []string{failing.URL, good.URL}, Selector: pickFailingFirst})

	_, err := c.do(context.Background(), &request{method: http.MethodPut, path: "/v2/keys/a", kind: KindWrite})
	require.ErrorIs(t, err, ErrOutcomeUnknown, "a raft timeout leaves a write's outcome unknown")
	var ee Error
	require.ErrorAs(t, err, &ee)
	require.Equal(t, ErrorCodeRaftInternal, ee.Code)
	require.ErrorIs(t, err, Error{Code: ErrorCodeRaftInternal})
	require.Zero(t, good.keyHits(), "the write was not resent")

	_, err = get(c, context.Background(), "/v2/keys/a")
	require.NoError(t, err, "a read fails over on a 500")
	require.EqualValues(t, 1, good.keyHits())

	only := newTestClient(t, Config{Endpoints: []string{failing.URL}})
	_, err = get(only, context.Background(), "/v2/keys/a")
	require.ErrorIs(t, err, ErrClusterUnavailable)
	require.ErrorIs(t, err, Error{Code: ErrorCodeRaftInternal})
}

func TestClusterIDMismatch(t *testing.T) {
	a := newFakeMember(t, "aaaa")
	b := newFakeMember(t, "bbbb")
	c := newTestClient(t, Config{Endpoints: []string{a.URL}})
	_, err := get(c, context.Background(), "/v2/keys/x")
	require.NoError(t, err)
	// Through a list sharing an endpoint with the old one, so that the
	// client keeps the cluster's identity (a list sharing none starts a
	// new one: TestSetEndpointsToAnotherClusterStartsANewIdentity).
	require.NoError(t, c.SetEndpoints([]string{a.URL, b.URL}))
	require.NoError(t, c.SetEndpoints([]string{b.URL}))
	_, err = get(c, context.Background(), "/v2/keys/x")
	require.ErrorIs(t, err, ErrClusterIDMismatch)
	var me *ClusterIDMismatchError
	require.ErrorAs(t, err, &me)
	require.Equal(t, "aaaa", me.Want)
	require.Equal(t, "bbbb", me.Got)
	require.Equal(t, b.URL, me.Endpoint)

	// A write that cannot be resent is checked before it is sent.
	before := b.keyHits()
	_, err = c.do(context.Background(), &request{method: http.MethodPut, path: "/v2/keys/x", kind: KindWrite})
	require.ErrorIs(t, err, ErrClusterIDMismatch)
	require.NotErrorIs(t, err, ErrOutcomeUnknown)
	require.Equal(t, before, b.keyHits(), "only the membership preflight reached the other cluster")
}

func TestRedirects(t *testing.T) {
	m := newFakeMember(t, "c1")
	m.setHandler(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/keys/a//b":
			w.Header().Set("Location", "/v2/keys/a/b") // relative, as Go's ServeMux sends
			w.WriteHeader(http.StatusTemporaryRedirect)
		case "/loop":
			w.Header().Set("Location", "loop")
			w.WriteHeader(http.StatusTemporaryRedirect)
		case "/nolocation":
			w.WriteHeader(http.StatusTemporaryRedirect)
		default:
			b, _ := io.ReadAll(r.Body)
			io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
		}
	})
	c := newTestClient(t, Config{Endpoints: []string{m.URL}})
	resp, err := c.do(context.Background(), &request{method: http.MethodPut, path: "/v2/keys/a//b", body: []byte("value=1"), kind: KindRead, replayable: true})
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "PUT /v2/keys/a/b value=1", string(b), "method and body are sent again to the resolved location")

	_, err = get(c, context.Background(), "/loop")
	require.ErrorIs(t, err, ErrTooManyRedirects)
	_, err = get(c, context.Background(), "/nolocation")
	require.Error(t, err)

	var vias []int
	c2 := newTestClient(t, Config{Endpoints: []string{m.URL}, Rounds: 1, CheckRedirect: func(via int) error {
		vias = append(vias, via)
		if via >= 3 {
			return errors.New("enough")
		}
		return nil
	}})
	_, err = get(c2, context.Background(), "/loop")
	require.ErrorContains(t, err, "enough")
	require.Equal(t, []int{1, 2, 3}, vias)
}

func TestBasicAuthOnEveryRequest(t *testing.T) {
	m := newFakeMember(t, "c1")
	var mu sync.Mutex
	var users []string
	m.setHandler(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		mu.Lock()
		users = append(users, fmt.Sprint(u, ":", p, ":", ok))
		mu.Unlock()
		io.WriteString(w, `{"etcdserver":"3.5.35","etcdcluster":"3.5.0"}`)
	})
	var logs bytes.Buffer
	c := newTestClient(t, Config{Endpoints: []string{m.URL}, Username: "alice", Password: "s3cr3t-pw",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	for i := 0; i < 3; i++ {
		_, err := c.GetVersion(context.Background())
		require.NoError(t, err)
	}
	require.Equal(t, []string{"alice:s3cr3t-pw:true", "alice:s3cr3t-pw:true", "alice:s3cr3t-pw:true"}, users)
	require.Contains(t, logs.String(), "etcd attempt")
	require.NotContains(t, logs.String(), "s3cr3t-pw")
}

// TestCurlDebugRedacts: the original client's format, without passwords.
func TestCurlDebugRedacts(t *testing.T) {
	r := &request{method: http.MethodPut, path: "/v2/auth/users/alice", body: []byte(`{"user":"alice","password":"s3cr3t-pw"}`), contentType: "application/json", sensitive: true}
	u := mustParse(t, "http://127.0.0.1:2379/v2/auth/users/alice")
	cmd := curlCommand(r, u)
	require.Equal(t, `curl -X PUT http://127.0.0.1:2379/v2/auth/users/alice -d "<redacted>"`, cmd)
	require.NotContains(t, cmd, "s3cr3t-pw")
	require.Contains(t, cmd, "<redacted>")
	r.sensitive = false
	r.body = []byte("value=it's \"x\"")
	require.Equal(t, `curl -X PUT http://127.0.0.1:2379/v2/auth/users/alice -d "value=it's \"x\""`, curlCommand(r, u), "the original client's format")
}

func TestResponseSizeCap(t *testing.T) {
	m := newFakeMember(t, "c1")
	m.setHandler(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 1000))
	})
	c := newTestClient(t, Config{Endpoints: []string{m.URL}, MaxResponseBytes: 999})
	_, err := get(c, context.Background(), "/big")
	require.ErrorIs(t, err, ErrResponseTooLarge)
	c2 := newTestClient(t, Config{Endpoints: []string{m.URL}, MaxResponseBytes: 1000})
	body, err := get(c2, context.Background(), "/big")
	require.NoError(t, err)
	require.Len(t, body, 1000)
}

func TestNotEtcd(t *testing.T) {
	plain := v2fake.Start(t, v2fake.Options{})
	plain.On("*", v2fake.Func(http.NotFound))
	plain.On("/version", v2fake.RespondHeader(200, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, "<html>hello</html>"))
	c := newTestClient(t, Config{Endpoints: []string{plain.URL}})
	_, err := c.GetVersion(context.Background())
	require.ErrorIs(t, err, ErrInvalidJSON)
	require.NoError(t, c.SetEndpoints([]string{plain.URL}))
	err = c.Sync(context.Background())
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusNotFound, he.StatusCode)
}

func TestCloseEndsEverything(t *testing.T) {
	hung := hangingMember(t)
	c, err := New(Config{Endpoints: []string{hung.URL}, HeaderTimeoutPerRequest: -1})
	require.NoError(t, err)
	cc := c.(*httpClusterClient)

	errc := make(chan error, 2)
	go func() { _, err := get(cc, context.Background(), "/v2/keys/a"); errc <- err }()
	go func() { errc <- c.AutoSync(context.Background(), time.Hour) }()
	// Wait until the request is at the server.
	require.Eventually(t, func() bool { return len(transportBusy()) > 0 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, c.Close())
	for i := 0; i < 2; i++ {
		select {
		case err := <-errc:
			if !errors.Is(err, ErrClosed) {
				require.True(t, err == context.Canceled, "AutoSync after Close returns context.Canceled: got %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not end the calls in flight")
		}
	}
	_, err = c.GetVersion(context.Background())
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, c.Close(), "Close is idempotent")
}

// transportBusy reports whether a client request is in flight, by the
// transport's goroutines.
func transportBusy() []string {
	buf := make([]byte, 1<<20)
	n := runtimeStack(buf)
	var out []string
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if strings.Contains(g, "persistConn") {
			out = append(out, g)
		}
	}
	return out
}

func TestSyncAndLeader(t *testing.T) {
	a := newFakeMember(t, "c1")
	b := newFakeMember(t, "c1")
	var leader atomic.Pointer[string]
	leader.Store(&a.URL)
	members := func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/members":
			fmt.Fprintf(w, `{"members":[{"id":"1","name":"a","clientURLs":[%q]},{"id":"2","name":"b","clientURLs":[%q]}]}`, a.URL, b.URL)
		case "/v2/members/leader":
			fmt.Fprintf(w, `{"id":"x","clientURLs":[%q]}`, *leader.Load())
		default:
			io.WriteString(w, `{}`)
		}
	}
	a.setHandler(members)
	b.setHandler(members)
	c := newTestClient(t, Config{Endpoints: []string{a.URL}, SelectionMode: EndpointSelectionPrioritizeLeader})
	require.NoError(t, c.Sync(context.Background()))
	require.ElementsMatch(t, []string{a.URL, b.URL}, c.Endpoints())
	for i := 0; i < 5; i++ {
		_, err := get(c, context.Background(), "/v2/keys/a")
		require.NoError(t, err)
	}
	require.EqualValues(t, 5, a.keyHits(), "requests go to the leader")
	require.Zero(t, b.keyHits())

	// A new term: the client looks the leader up again by itself.
	leader.Store(&b.URL)
	a.SetTerm(3)
	b.SetTerm(3)
	_, err := get(c, context.Background(), "/v2/keys/a")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return c.eps.Load().leader == b.URL }, 5*time.Second, 5*time.Millisecond)
	before := a.keyHits()
	for i := 0; i < 5; i++ {
		_, err := get(c, context.Background(), "/v2/keys/a")
		require.NoError(t, err)
	}
	require.Equal(t, before, a.keyHits(), "requests follow the new leader")
	require.EqualValues(t, 5, b.keyHits())

	// Members that advertise no client URL leave the endpoints as they were.
	empty := func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"members":[{"id":"1","clientURLs":[]}]}`)
	}
	a.setHandler(empty)
	b.setHandler(empty)
	require.ErrorIs(t, c.Sync(context.Background()), ErrNoEndpoints)
	require.Len(t, c.Endpoints(), 2)
}

func TestStickyStaysAndRotates(t *testing.T) {
	s := Sticky()
	eps := []Endpoint{{URL: "a", Index: 0}, {URL: "b", Index: 1}, {URL: "c", Index: 2}}
	ob := s.(Observer)
	require.Equal(t, 0, s.Select(RequestInfo{}, eps))
	ob.Observe(Outcome{Endpoint: eps[1]})
	for i := 0; i < 3; i++ {
		require.Equal(t, 1, s.Select(RequestInfo{}, eps), "stays on the pin")
	}
	ob.Observe(Outcome{Endpoint: eps[1], Err: errors.New("down")})
	require.Equal(t, 2, s.Select(RequestInfo{}, eps), "after a failure of the pin, the next one")
	require.Equal(t, 0, s.Select(RequestInfo{}, []Endpoint{eps[0]}), "wraps around")
	ob.Observe(Outcome{Endpoint: eps[2]})
	require.Equal(t, 2, s.Select(RequestInfo{}, eps))
	ob.Observe(Outcome{Endpoint: eps[0], Err: errors.New("not the pin")})
	require.Equal(t, 2, s.Select(RequestInfo{}, eps), "failures elsewhere do not move the pin")
}

func TestSelectorOutOfRangeIsFirstCandidate(t *testing.T) {
	m := newFakeMember(t, "c1")
	c := newTestClient(t, Config{Endpoints: []string{m.URL}, Selector: SelectorFunc(func(RequestInfo, []Endpoint) int { return 7 })})
	_, err := get(c, context.Background(), "/x")
	assert.NoError(t, err)
}

// TestDefaultTransportAsksForNoCompression: requests through
// DefaultTransport carry no Accept-Encoding (etcd never compresses), while
// a transport with net/http's defaults asks for gzip, as before.
func TestDefaultTransportAsksForNoCompression(t *testing.T) {
	m := newFake(t)
	m.Set("/k", "v")
	var mu sync.Mutex
	var seen []string
	m.On("*", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		next.ServeHTTP(w, r)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		tr   CancelableTransport
		want string
	}{
		{"DefaultTransport", nil, ""},
		{"net/http defaults", &http.Transport{}, "gzip"},
	} {
		c := newTestClient(t, Config{Endpoints: []string{m.URL}, Transport: tc.tr})
		mu.Lock()
		seen = nil
		mu.Unlock()
		if _, err := NewKeysAPI(c).Get(ctx, "/k", nil); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		mu.Lock()
		got := slices.Clone(seen)
		mu.Unlock()
		if len(got) == 0 {
			t.Fatalf("%s: no request seen", tc.name)
		}
		for _, ae := range got {
			if ae != tc.want {
				t.Errorf("%s: Accept-Encoding %q, want %q", tc.name, ae, tc.want)
			}
		}
	}
}
