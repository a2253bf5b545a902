package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	client "github.com/etcdv2/client"
	official "go.etcd.io/etcd/client/v2"
)

// Contender names, as they appear in benchmark names and the report.
const (
	nameOurs          = "ours"
	nameOfficial      = "official"
	nameOfficialTuned = "official-tuned"
	nameRaw           = "raw"
	nameRawTuned      = "raw-tuned"
	nameRawJSON       = "raw-json"
	nameJSONMem       = "json-mem"
)

type getOpts struct {
	recursive bool
	quorum    bool
}

// contender is one way of talking to etcd. Every function is safe for
// concurrent use.
type contender struct {
	name string
	get  func(ctx context.Context, key string, o getOpts) error
	set  func(ctx context.Context, key, value string) error
	// watch returns the Next function of a watcher of key that starts after
	// index after; Next returns the event's modified index.
	watch func(key string, after uint64) func(ctx context.Context) (uint64, error)
	// close releases the contender's connections.
	close func()
	// counter counts new connections when the transport was wrapped.
	counter *dialCounter
}

// dials returns the connections counted so far (0 if not counted).
func (c *contender) dials() int64 {
	if c.counter == nil {
		return 0
	}
	return c.counter.n.Load()
}

// dialCounter counts the TCP connections a transport dials (on https,
// each is one TLS handshake). Given an *http.Transport it counts in a clone
// of it whose DialContext counts, with the same settings (pool sizes,
// timeouts), and the contenders hand that clone itself to the client under
// test: nothing is added to the request path, so a client that treats
// net/http's own transport specially (ours shares its request headers)
// and one that adds httptrace hooks of its own (ours, on a new connection)
// are measured as their users run them. Any other RoundTripper is wrapped
// and its new connections counted through httptrace's GotConn.
type dialCounter struct {
	base http.RoundTripper
	n    atomic.Int64
}

func newDialCounter(base http.RoundTripper) *dialCounter {
	d := &dialCounter{base: base}
	if t, ok := base.(*http.Transport); ok {
		t = t.Clone()
		dial := t.DialContext
		if dial == nil {
			dial = (&net.Dialer{}).DialContext
		}
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			d.n.Add(1)
			return dial(ctx, network, addr)
		}
		d.base = t
	}
	return d
}

// transport is what a contender hands its client: the counting clone
// itself when there is one, else the counter as a wrapper.
func (d *dialCounter) transport() http.RoundTripper {
	if t, ok := d.base.(*http.Transport); ok {
		return t
	}
	return d
}

// RoundTrip counts through a trace made per request: httptrace.WithClientTrace
// composes the trace it is given with one already in the context by changing
// it, so a trace shared between requests would collect their hooks.
func (d *dialCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, ok := d.base.(*http.Transport); ok {
		return d.base.RoundTrip(r) // counted by the dialer
	}
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if !info.Reused {
			d.n.Add(1)
		}
	}}
	return d.base.RoundTrip(r.WithContext(httptrace.WithClientTrace(r.Context(), trace)))
}

// CancelRequest makes dialCounter a CancelableTransport for both clients;
// both cancel through the request context, so it only forwards.
func (d *dialCounter) CancelRequest(r *http.Request) {
	if c, ok := d.base.(interface{ CancelRequest(*http.Request) }); ok {
		c.CancelRequest(r) //nolint:staticcheck // forwarding the deprecated API the interfaces require
	}
}

// rawTransport returns a transport with net/http's default settings, but
// its own connection pool; maxIdlePerHost > 0 sizes the idle pool ("tuned").
func rawTransport(maxIdlePerHost int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if maxIdlePerHost > 0 {
		t.MaxIdleConns = 4 * maxIdlePerHost
		t.MaxIdleConnsPerHost = maxIdlePerHost
	}
	return t
}

// officialTuned returns a copy of the official client's DefaultTransport
// whose idle pool holds maxIdlePerHost connections per member.
func officialTuned(maxIdlePerHost int) *http.Transport {
	t := official.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * maxIdlePerHost
	t.MaxIdleConnsPerHost = maxIdlePerHost
	return t
}

// ---- raw net/http ----

// rawNode and rawResponse mirror the v2 keys API's JSON for encoding/json.
type rawNode struct {
	Key           string     `json:"key"`
	Value         string     `json:"value"`
	Dir           bool       `json:"dir"`
	Expiration    *time.Time `json:"expiration"`
	TTL           int64      `json:"ttl"`
	Nodes         []*rawNode `json:"nodes"`
	ModifiedIndex uint64     `json:"modifiedIndex"`
	CreatedIndex  uint64     `json:"createdIndex"`
}

type rawResponse struct {
	Action   string   `json:"action"`
	Node     *rawNode `json:"node"`
	PrevNode *rawNode `json:"prevNode"`
}

// newRaw talks to the member at base with plain net/http requests: GET
// reads the body (decode selects whether it also runs encoding/json on
// it), PUT sends a form. tr nil means a fresh transport with net/http's
// defaults.
func newRaw(name, base string, tr http.RoundTripper, decode bool) *contender {
	if tr == nil {
		tr = rawTransport(0)
	}
	c := &contender{name: name}
	if d, ok := tr.(*dialCounter); ok {
		c.counter = d
		tr = d.transport()
	}
	hc := &http.Client{Transport: tr}
	keysURL := base + "/v2/keys"
	c.get = func(ctx context.Context, key string, o getOpts) error {
		u := keysURL + key
		switch {
		case o.recursive && o.quorum:
			u += "?quorum=true&recursive=true"
		case o.recursive:
			u += "?recursive=true"
		case o.quorum:
			u += "?quorum=true"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %s", key, resp.Status, body)
		}
		if decode {
			var r rawResponse
			if err := json.Unmarshal(body, &r); err != nil {
				return err
			}
			if r.Node == nil {
				return errors.New("no node in response")
			}
		}
		return nil
	}
	c.set = func(ctx context.Context, key, value string) error {
		_, err := rawPut(ctx, hc, keysURL+key, value)
		return err
	}
	c.watch = func(key string, after uint64) func(ctx context.Context) (uint64, error) {
		return func(ctx context.Context) (uint64, error) {
			u := keysURL + key + "?wait=true&waitIndex=" + strconv.FormatUint(after+1, 10)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return 0, err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return 0, fmt.Errorf("watch %s: %s", key, resp.Status)
			}
			var r rawResponse
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
				return 0, err
			}
			if r.Node == nil {
				return 0, errors.New("watch: no node")
			}
			after = r.Node.ModifiedIndex
			return after, nil
		}
	}
	c.close = hc.CloseIdleConnections
	return c
}

// rawPut sets key to value and returns the node's modified index.
func rawPut(ctx context.Context, hc *http.Client, u, value string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, strings.NewReader(url.Values{"value": {value}}.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("PUT %s: %s: %s", u, resp.Status, body)
	}
	var r rawResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, err
	}
	if r.Node == nil {
		return 0, errors.New("PUT: no node in response")
	}
	return r.Node.ModifiedIndex, nil
}

// ---- the official client ----

// newOfficial uses go.etcd.io/etcd/client/v2 with endpoints; tr nil keeps
// its Config.Transport unset (its DefaultTransport).
func newOfficial(name string, endpoints []string, tr official.CancelableTransport) (*contender, error) {
	cfg := official.Config{Endpoints: endpoints}
	c := &contender{name: name}
	if tr != nil {
		cfg.Transport = tr
		if d, ok := tr.(*dialCounter); ok {
			c.counter = d
			cfg.Transport = d.transport().(official.CancelableTransport)
		}
	}
	oc, err := official.New(cfg)
	if err != nil {
		return nil, err
	}
	kapi := official.NewKeysAPI(oc)
	c.get = func(ctx context.Context, key string, o getOpts) error {
		r, err := kapi.Get(ctx, key, &official.GetOptions{Recursive: o.recursive, Quorum: o.quorum})
		if err != nil {
			return err
		}
		if r.Node == nil {
			return errors.New("no node")
		}
		return nil
	}
	c.set = func(ctx context.Context, key, value string) error {
		_, err := kapi.Set(ctx, key, value, nil)
		return err
	}
	c.watch = func(key string, after uint64) func(ctx context.Context) (uint64, error) {
		w := kapi.Watcher(key, &official.WatcherOptions{AfterIndex: after})
		return func(ctx context.Context) (uint64, error) {
			r, err := w.Next(ctx)
			if err != nil {
				return 0, err
			}
			return r.Node.ModifiedIndex, nil
		}
	}
	c.close = func() {
		// The official Client has no Close; drop the idle connections of
		// a transport that is this contender's own.
		if t, ok := tr.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
	}
	return c, nil
}

// ---- this client ----

// newOurs uses github.com/etcdv2/client with endpoints; tr nil keeps its
// Config.Transport unset (its DefaultTransport).
func newOurs(name string, endpoints []string, tr client.CancelableTransport) (*contender, error) {
	cfg := client.Config{Endpoints: endpoints}
	c := &contender{name: name}
	if tr != nil {
		cfg.Transport = tr
		if d, ok := tr.(*dialCounter); ok {
			c.counter = d
			cfg.Transport = d.transport().(client.CancelableTransport)
		}
	}
	cc, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	kapi := client.NewKeysAPI(cc)
	c.get = func(ctx context.Context, key string, o getOpts) error {
		r, err := kapi.Get(ctx, key, &client.GetOptions{Recursive: o.recursive, Quorum: o.quorum})
		if err != nil {
			return err
		}
		if r.Node == nil {
			return errors.New("no node")
		}
		return nil
	}
	c.set = func(ctx context.Context, key, value string) error {
		_, err := kapi.Set(ctx, key, value, nil)
		return err
	}
	c.watch = func(key string, after uint64) func(ctx context.Context) (uint64, error) {
		w := kapi.Watcher(key, &client.WatcherOptions{AfterIndex: after})
		return func(ctx context.Context) (uint64, error) {
			r, err := w.Next(ctx)
			if err != nil {
				return 0, err
			}
			return r.Node.ModifiedIndex, nil
		}
	}
	c.close = func() { _ = cc.Close() }
	return c, nil
}

// ---- the cache of contenders ----

var (
	clientsMu sync.Mutex
	clients   = map[string]*contender{}
)

// cached returns the contender stored under key, making it with mk on first
// use, so that a benchmark's repeated runs (b.N = 1, 100, ...) and -count
// repetitions reuse one client and its warm connections.
func cached(key string, mk func() (*contender, error)) (*contender, error) {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c, ok := clients[key]; ok {
		return c, nil
	}
	c, err := mk()
	if err != nil {
		return nil, err
	}
	clients[key] = c
	return c, nil
}

func closeClients() {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	for k, c := range clients {
		c.close()
		delete(clients, k)
	}
}
