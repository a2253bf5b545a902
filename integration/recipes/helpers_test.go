package recipes_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/backend"
	"github.com/etcdv2/client/integration/testbed"
)

// countingTransport counts requests by kind and can lose the answer of
// chosen requests after the server processed them.
type countingTransport struct {
	base *http.Transport

	watches  atomic.Int64 // GET ...wait=true
	listings atomic.Int64 // quorum recursive GETs
	cleared  atomic.Int64 // answers with etcd error 401 (event index cleared)
	woken    atomic.Int64 // watch answers that carried an event

	posts atomic.Int64 // POST requests sent
	// postFailed receives (without blocking) when a POST got no answer.
	postFailed chan struct{}

	pathsMu    sync.Mutex
	watchPaths map[string]int // watched paths
	loseNext   atomic.Int64   // how many matching writes to answer with an error
	duplicate  atomic.Bool    // send a matching write twice before losing it
	loseMatch  atomic.Value   // string: method + " " + path prefix
}

func newCountingTransport() *countingTransport {
	t := &countingTransport{base: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}, postFailed: make(chan struct{}, 1)}
	t.loseMatch.Store("")
	return t
}

func (t *countingTransport) CancelRequest(*http.Request) {}

type lostAnswer struct{}

func (lostAnswer) Error() string { return "test: answer lost after the server processed the request" }

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	q := r.URL.RawQuery
	if r.Method == http.MethodGet && strings.Contains(q, "wait=true") {
		t.watches.Add(1)
	}
	if r.Method == http.MethodGet && strings.Contains(q, "quorum=true") && strings.Contains(q, "recursive=true") {
		t.listings.Add(1)
	}
	m := t.loseMatch.Load().(string)
	if m != "" && strings.HasPrefix(r.Method+" "+r.URL.Path, m) && t.loseNext.Load() > 0 {
		if t.loseNext.Add(-1) >= 0 {
			var body []byte
			if r.GetBody != nil {
				rc, _ := r.GetBody()
				if rc != nil {
					buf := new(strings.Builder)
					b := make([]byte, 4096)
					for {
						n, err := rc.Read(b)
						buf.Write(b[:n])
						if err != nil {
							break
						}
					}
					body = []byte(buf.String())
					rc.Close()
				}
			}
			resp, err := t.base.RoundTrip(r)
			if err == nil {
				drain(resp)
			}
			if t.duplicate.Load() && body != nil {
				r2 := r.Clone(r.Context())
				r2.Body = http.NoBody
				r2.Body = newBody(body)
				if resp2, err := t.base.RoundTrip(r2); err == nil {
					drain(resp2)
				}
			}
			return nil, lostAnswer{}
		}
	}
	if strings.Contains(q, "wait=true") {
		t.pathsMu.Lock()
		if t.watchPaths == nil {
			t.watchPaths = map[string]int{}
		}
		t.watchPaths[r.URL.Path]++
		t.pathsMu.Unlock()
	}
	if r.Method == http.MethodPost {
		t.posts.Add(1)
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil && r.Method == http.MethodPost {
		select {
		case t.postFailed <- struct{}{}:
		default:
		}
	}
	if err == nil && strings.Contains(q, "wait=true") {
		if resp.StatusCode == http.StatusBadRequest {
			t.cleared.Add(1)
		}
		if resp.StatusCode == http.StatusOK {
			resp.Body = &wokenBody{ReadCloser: resp.Body, n: &t.woken}
		}
	}
	return resp, err
}

func (t *countingTransport) paths() map[string]int {
	t.pathsMu.Lock()
	defer t.pathsMu.Unlock()
	out := map[string]int{}
	for k, v := range t.watchPaths {
		out[k] = v
	}
	return out
}

// wokenBody counts a watch answer once its first byte arrives: a poll that
// ends empty is not an event.
type wokenBody struct {
	io.ReadCloser
	n    *atomic.Int64
	seen bool
}

func (b *wokenBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && !b.seen {
		b.seen = true
		b.n.Add(1)
	}
	return n, err
}

// newCluster starts a cluster for the backend chosen by ETCDV2_BACKEND
// (etcd 3.5 for the native client, 3.7 for the v3 adapter).
func newCluster(t testing.TB, o testbed.Options) *testbed.Cluster {
	t.Helper()
	return testbed.NewCluster(t, backend.FromEnv(t).Options(o))
}

// newClient returns a KeysAPI on endpoints with its own counting transport.
// On the v3 adapter the KeysAPI does not use the transport: tests that
// count or lose HTTP requests skip there (skipOnAdapter).
func newClient(t testing.TB, endpoints []string) (client.KeysAPI, *countingTransport) {
	t.Helper()
	tr := newCountingTransport()
	if b := backend.FromEnv(t); b.Adapter() {
		return countingKeys{KeysAPI: b.KeysAPI(t, endpoints, client.Config{}), tr: tr}, tr
	}
	c, err := client.New(client.Config{Endpoints: endpoints, Transport: tr})
	require.NoError(t, err)
	t.Cleanup(func() {
		c.Close()
		tr.base.CloseIdleConnections()
	})
	return client.NewKeysAPI(c), tr
}

// event is one recorded change of the watched prefix.
type event struct {
	action  string
	key     string
	created uint64
	index   uint64 // modifiedIndex of the event
	value   string
}

// recorder watches a prefix from a given index, keeping every event; it
// fails the test if it ever falls out of the history (401).
type recorder struct {
	t      testing.TB
	mu     sync.Mutex
	events []event
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

// startRecorder records every event under prefix after index from.
func startRecorder(t testing.TB, kapi client.KeysAPI, prefix string, from uint64) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{t: t, cancel: cancel, done: make(chan struct{})}
	w := kapi.Watcher(prefix, &client.WatcherOptions{AfterIndex: from, Recursive: true})
	go func() {
		defer close(rec.done)
		for {
			r, err := w.Next(ctx)
			if err != nil {
				if ctx.Err() == nil {
					if errCodeIs(err, client.ErrorCodeEventIndexCleared) {
						rec.mu.Lock()
						rec.err = err
						rec.mu.Unlock()
						return
					}
					time.Sleep(20 * time.Millisecond) // no member answered: bounded by ctx
					continue
				}
				return
			}
			ev := event{action: r.Action, index: r.Node.ModifiedIndex, key: r.Node.Key, created: r.Node.CreatedIndex, value: r.Node.Value}
			rec.mu.Lock()
			rec.events = append(rec.events, ev)
			rec.mu.Unlock()
		}
	}()
	t.Cleanup(rec.stop)
	return rec
}

func (rec *recorder) stop() {
	rec.cancel()
	<-rec.done
}

// waitIndex waits until the recorder has seen an event at or after index.
func (rec *recorder) waitIndex(t testing.TB, index uint64, timeout time.Duration) []event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rec.mu.Lock()
		err := rec.err
		evs := append([]event(nil), rec.events...)
		rec.mu.Unlock()
		require.NoError(t, err, "the recorder fell out of the watch history")
		if len(evs) > 0 && evs[len(evs)-1].index >= index {
			return evs
		}
		require.True(t, time.Now().Before(deadline), "recorder did not reach index %d", index)
		time.Sleep(20 * time.Millisecond) // the recorder's progress is polled, bounded by deadline
	}
}

func errCodeIs(err error, code int) bool {
	return errors.Is(err, client.Error{Code: code})
}

// liveAt returns the live nodes directly under dir at index i (after the
// event at i was applied), sorted by creation, from the recorded events.
// Nodes that existed before the recording started are passed in initial.
func liveAt(evs []event, dir string, i uint64) []event {
	live := map[string]event{}
	for _, e := range evs {
		if e.index > i {
			break
		}
		if !strings.HasPrefix(e.key, dir+"/") || strings.Contains(e.key[len(dir)+1:], "/") {
			if e.key == dir && (e.action == "delete" || e.action == "expire") {
				clear(live)
			}
			continue
		}
		switch e.action {
		case "delete", "expire", "compareAndDelete":
			delete(live, e.key)
		default:
			live[e.key] = e
		}
	}
	out := make([]event, 0, len(live))
	for _, e := range live {
		out = append(out, e)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].created < out[b].created })
	return out
}

// marker writes prefix/marker and returns its index: once a recorder of
// prefix has seen it, it has seen every earlier event.
func marker(t testing.TB, kapi client.KeysAPI, prefix string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := kapi.Set(ctx, prefix+"/marker", "x", nil)
	require.NoError(t, err)
	return r.Node.ModifiedIndex
}

// currentIndex returns the index of a fresh write: every later event is
// after it.
func currentIndex(t testing.TB, kapi client.KeysAPI) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := kapi.Set(ctx, "/probe-index", "x", nil) // a write: its index is after every event so far
	require.NoError(t, err)
	return r.Node.ModifiedIndex
}

func drain(resp *http.Response) {
	buf := make([]byte, 4096)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			break
		}
	}
	resp.Body.Close()
}

type body struct {
	*strings.Reader
}

func (body) Close() error { return nil }

func newBody(b []byte) body { return body{strings.NewReader(string(b))} }

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

var quorumGet = &client.GetOptions{Quorum: true}

// countingKeys counts the watches of a KeysAPI that does not speak HTTP
// (the v3 adapter) in its countingTransport, as the transport counts the
// native client's: a Next call is a watch of "/v2/keys"+key, a Next that
// returns an event woke, a 401 is cleared.
type countingKeys struct {
	client.KeysAPI
	tr *countingTransport
}

func (k countingKeys) Watcher(key string, opts *client.WatcherOptions) client.Watcher {
	return countingWatcher{w: k.KeysAPI.Watcher(key, opts), path: "/v2/keys" + key, tr: k.tr}
}

type countingWatcher struct {
	w    client.Watcher
	path string
	tr   *countingTransport
}

func (w countingWatcher) Next(ctx context.Context) (*client.Response, error) {
	w.tr.watches.Add(1)
	w.tr.pathsMu.Lock()
	if w.tr.watchPaths == nil {
		w.tr.watchPaths = map[string]int{}
	}
	w.tr.watchPaths[w.path]++
	w.tr.pathsMu.Unlock()
	r, err := w.w.Next(ctx)
	switch {
	case err == nil:
		w.tr.woken.Add(1)
	case errCodeIs(err, client.ErrorCodeEventIndexCleared):
		w.tr.cleared.Add(1)
	}
	return r, err
}

// clearHistory makes watches from before now fail with 401 on the adapter
// (compaction through endpoints), as the writes before it did on v2.
func clearHistory(t testing.TB, endpoints []string) {
	t.Helper()
	backend.FromEnv(t).ClearHistory(t, endpoints, 0)
}

// skipOnAdapter skips t when the suite runs on the v3 adapter.
func skipOnAdapter(t testing.TB, why string) {
	t.Helper()
	backend.FromEnv(t).SkipOnAdapter(t, why)
}

// onAdapter reports whether the suite runs on the v3 adapter.
func onAdapter(t testing.TB) bool { return backend.FromEnv(t).Adapter() }

// hookKeys is a KeysAPI that lets a test act around chosen calls: set and
// create may answer a call themselves (handled true) instead of passing it
// on; get sees every answer of Get and returns what the caller gets.
type hookKeys struct {
	client.KeysAPI
	set    func(ctx context.Context, key, value string, opts *client.SetOptions) (r *client.Response, err error, handled bool)
	create func(ctx context.Context, dir, value string, opts *client.CreateInOrderOptions) (r *client.Response, err error, handled bool)
	get    func(ctx context.Context, key string, opts *client.GetOptions, r *client.Response, err error) (*client.Response, error)
}

func (h *hookKeys) Set(ctx context.Context, key, value string, opts *client.SetOptions) (*client.Response, error) {
	if h.set != nil {
		if r, err, ok := h.set(ctx, key, value, opts); ok {
			return r, err
		}
	}
	return h.KeysAPI.Set(ctx, key, value, opts)
}

func (h *hookKeys) CreateInOrder(ctx context.Context, dir, value string, opts *client.CreateInOrderOptions) (*client.Response, error) {
	if h.create != nil {
		if r, err, ok := h.create(ctx, dir, value, opts); ok {
			return r, err
		}
	}
	return h.KeysAPI.CreateInOrder(ctx, dir, value, opts)
}

func (h *hookKeys) Get(ctx context.Context, key string, opts *client.GetOptions) (*client.Response, error) {
	r, err := h.KeysAPI.Get(ctx, key, opts)
	if h.get != nil {
		return h.get(ctx, key, opts, r, err)
	}
	return r, err
}
