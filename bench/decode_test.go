package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	client "github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/internal/v2fake"
	official "go.etcd.io/etcd/client/v2"
)

// canned holds v2 keys API response bodies in etcd's own format, made once.
var canned = sync.OnceValue(func() map[string][]byte {
	one := rawResponse{Action: "get", Node: &rawNode{Key: "/one", Value: keyValue, ModifiedIndex: 42, CreatedIndex: 42}}
	list := rawResponse{Action: "get", Node: &rawNode{Key: "/list", Dir: true, ModifiedIndex: 7, CreatedIndex: 7}}
	for i := 0; i < listSize; i++ {
		ix := uint64(8 + i)
		list.Node.Nodes = append(list.Node.Nodes, &rawNode{Key: fmt.Sprintf("/list/k%05d", i), Value: keyValue, ModifiedIndex: ix, CreatedIndex: ix})
	}
	return map[string][]byte{"/v2/keys/one": etcdJSON(one), "/v2/keys/list": etcdJSON(list)}
})

// etcdBody encodes an answer as etcd does: its node types are the test
// fake's, which have the fields, order and omitempty options of etcd's own
// (NodeExtern and Event in etcd's v2 store), and json.Encoder ends it with
// a newline.
func etcdBody(ev v2fake.Event) []byte {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(ev); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// etcdJSON encodes r the way etcd does.
func etcdJSON(r rawResponse) []byte {
	var node func(n *rawNode) *v2fake.Node
	node = func(n *rawNode) *v2fake.Node {
		e := &v2fake.Node{Key: n.Key, Dir: n.Dir, ModifiedIndex: n.ModifiedIndex, CreatedIndex: n.CreatedIndex}
		if !n.Dir {
			e.Value = &n.Value
		}
		for _, k := range n.Nodes {
			e.Nodes = append(e.Nodes, node(k))
		}
		return e
	}
	return etcdBody(v2fake.Event{Action: r.Action, Node: node(r.Node)})
}

// newCannedServer serves the canned bodies with the headers etcd sends.
func newCannedServer() *httptest.Server {
	bodies := canned()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodies[r.URL.Path]
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-Etcd-Cluster-Id", "cdf818194e3a8c32")
		h.Set("X-Etcd-Index", "10007")
		h.Set("X-Raft-Index", "20010")
		h.Set("X-Raft-Term", "2")
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"errorCode":100,"message":"Key not found","cause":%q,"index":10007}`+"\n", r.URL.Path)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}))
}

// decodeContenders talk to the canned server; json-mem skips HTTP and
// decodes the canned bytes of the key with encoding/json from memory.
func decodeContenders(tb testing.TB, url string) []*contender {
	tb.Helper()
	ours, err := newOurs(nameOurs, []string{url}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	off, err := newOfficial(nameOfficial, []string{url}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	mem := &contender{name: nameJSONMem, close: func() {}}
	mem.get = func(_ context.Context, key string, _ getOpts) error {
		var r rawResponse
		return json.Unmarshal(canned()["/v2/keys"+key], &r)
	}
	return []*contender{ours, off, newRaw(nameRaw, url, nil, false), newRaw(nameRawJSON, url, nil, true), mem}
}

// BenchmarkDecode measures the client side alone: the responses come from
// an in-process server with canned bytes, so the figures are HTTP on
// loopback plus decoding, without etcd. "one" is a single 32-byte key,
// "list" the 10,000-key listing.
func BenchmarkDecode(b *testing.B) {
	srv := newCannedServer()
	defer srv.Close()
	cs := decodeContenders(b, srv.URL)
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	for _, key := range []string{"/one", "/list"} {
		b.Run(strings.TrimPrefix(key, "/"), func(b *testing.B) {
			for _, c := range cs {
				b.Run(c.name, func(b *testing.B) {
					sequential(b, func(ctx context.Context) error { return c.get(ctx, key, getOpts{recursive: key == "/list"}) })
				})
			}
		})
	}
}

// TestCanned checks, without etcd, that every contender reads the canned
// responses and that both clients decode the listing completely.
func TestCanned(t *testing.T) {
	srv := newCannedServer()
	defer srv.Close()
	ctx := context.Background()
	for _, c := range decodeContenders(t, srv.URL) {
		for _, key := range []string{"/one", "/list"} {
			if err := c.get(ctx, key, getOpts{recursive: true}); err != nil {
				t.Errorf("%s %s: %v", c.name, key, err)
			}
		}
		c.close()
	}

	oc, err := client.New(client.Config{Endpoints: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	r, err := client.NewKeysAPI(oc).Get(ctx, "/list", &client.GetOptions{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Node.Nodes) != listSize || r.Node.Nodes[listSize-1].Value != keyValue || r.Index != 10007 {
		t.Errorf("ours: %d nodes, index %d", len(r.Node.Nodes), r.Index)
	}

	fc, err := official.New(official.Config{Endpoints: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	fr, err := official.NewKeysAPI(fc).Get(ctx, "/list", &official.GetOptions{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(fr.Node.Nodes) != listSize || fr.Node.Nodes[listSize-1].Value != keyValue || fr.Index != 10007 {
		t.Errorf("official: %d nodes, index %d", len(fr.Node.Nodes), fr.Index)
	}
}

// TestPercentile pins the nearest-rank percentile used for watch latency.
func TestPercentile(t *testing.T) {
	var d []int64
	for i := int64(1); i <= 100; i++ {
		d = append(d, i)
	}
	got := func(p int) int64 {
		ds := make([]time.Duration, len(d))
		for i, v := range d {
			ds[i] = time.Duration(v)
		}
		return int64(percentile(ds, p))
	}
	if got(50) != 50 || got(99) != 99 || got(100) != 100 {
		t.Errorf("p50=%d p99=%d p100=%d", got(50), got(99), got(100))
	}
}

// TestCannedIsEtcds keeps the canned bodies honest: answers of a real
// etcd (a key, a key with a TTL, a recursive listing with a directory in
// it), decoded into v2fake.Event and encoded again by etcdBody, are the
// same bytes. A field out of etcd's order, or written where etcd omits it,
// fails it.
func TestCannedIsEtcds(t *testing.T) {
	c := testbed.NewCluster(t, testbed.Options{Size: 1})
	base := c.ClientURLs()[0] + "/v2/keys"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	do := func(method, path string, form url.Values) []byte {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %q %v", method, path, resp.StatusCode, b, err)
		}
		return b
	}
	do(http.MethodPut, "/list/k00000", url.Values{"value": {keyValue}})
	do(http.MethodPut, "/list/k00001", url.Values{"value": {`{"host":"10.0.0.1","tags":["a"]}`}, "ttl": {"600"}})
	do(http.MethodPut, "/list/d/k", url.Values{"value": {keyValue}})
	var key v2fake.Event // etcd's answer for /list/k00000
	for _, path := range []string{"/list/k00000", "/list/k00001", "/list?recursive=true&sorted=true"} {
		got := do(http.MethodGet, path, nil)
		var ev v2fake.Event
		if err := json.Unmarshal(got, &ev); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if want := etcdBody(ev); !bytes.Equal(got, want) {
			t.Errorf("%s: etcd wrote\n%s\netcdBody writes\n%s", path, got, want)
		}
		if path == "/list/k00000" {
			key = ev
		}
	}
	// And the canned one-key answer is what etcd writes for such a key.
	ev := key
	ev.Node.Key, ev.Node.ModifiedIndex, ev.Node.CreatedIndex = "/one", 42, 42
	if want := canned()["/v2/keys/one"]; !bytes.Equal(etcdBody(ev), want) {
		t.Errorf("canned /one is %s, etcd's form %s", want, etcdBody(ev))
	}
}
