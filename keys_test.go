package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/v2fake"
)

// recClient is a Client that records the requests of a KeysAPI and
// answers them with respond (an empty 200 JSON answer when nil).
type recClient struct {
	Client
	reqs    []*request
	respond func(*request) (*response, error)
}

func (c *recClient) do(ctx context.Context, r *request) (*response, error) {
	c.reqs = append(c.reqs, r)
	if c.respond != nil {
		return c.respond(r)
	}
	return jsonResponse(200, `{"action":"get","node":{"key":"/a","value":"x","modifiedIndex":5,"createdIndex":4}}`, nil), nil
}

func (c *recClient) probe(context.Context, string) error { return nil }

func jsonResponse(status int, body string, h http.Header) *response {
	if h == nil {
		h = http.Header{}
	}
	return &response{Response: &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}, endpoint: "http://e1"}
}

func TestKeysWire(t *testing.T) {
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	ctx := context.Background()
	tests := []struct {
		name       string
		call       func(k KeysAPI) error
		method     string
		path       string
		rawPath    string
		query      url.Values
		body       url.Values // nil: no body
		kind       RequestKind
		replayable bool
	}{
		{"get", func(k KeysAPI) error { _, err := k.Get(ctx, "/a", nil); return err },
			"GET", "/v2/keys/a", "/v2/keys/a", form(), nil, KindRead, true},
		{"get options", func(k KeysAPI) error {
			_, err := k.Get(ctx, "a/b/", &GetOptions{Recursive: true, Sort: true, Quorum: true})
			return err
		}, "GET", "/v2/keys/a/b/", "/v2/keys/a/b/", form("recursive", "true", "sorted", "true", "quorum", "true"), nil, KindQuorumRead, true},
		{"get root", func(k KeysAPI) error { _, err := k.Get(ctx, "/", nil); return err },
			"GET", "/v2/keys/", "/v2/keys/", form(), nil, KindRead, true},
		{"set plain", func(k KeysAPI) error { _, err := k.Set(ctx, "/a", "v 1&x=y", nil); return err },
			"PUT", "/v2/keys/a", "/v2/keys/a", form(), form("value", "v 1&x=y"), KindWrite, true},
		{"set ttl", func(k KeysAPI) error { _, err := k.Set(ctx, "/a", "v", &SetOptions{TTL: 90 * time.Second}); return err },
			"PUT", "/v2/keys/a", "/v2/keys/a", form(), form("value", "v", "ttl", "90"), KindWrite, true},
		{"set ttl <= 0 ignored", func(k KeysAPI) error { _, err := k.Set(ctx, "/a", "v", &SetOptions{TTL: -time.Second}); return err },
			"PUT", "/v2/keys/a", "/v2/keys/a", form(), form("value", "v"), KindWrite, true},
		{"cas", func(k KeysAPI) error {
			_, err := k.Set(ctx, "/a", "v", &SetOptions{PrevValue: "old", PrevIndex: 7, NoValueOnSuccess: true})
			return err
		}, "PUT", "/v2/keys/a", "/v2/keys/a", form("prevValue", "old", "prevIndex", "7", "noValueOnSuccess", "true"), form("value", "v"), KindWrite, false},
		{"create", func(k KeysAPI) error { _, err := k.Create(ctx, "/a", "v"); return err },
			"PUT", "/v2/keys/a", "/v2/keys/a", form("prevExist", "false"), form("value", "v"), KindWrite, false},
		{"update", func(k KeysAPI) error { _, err := k.Update(ctx, "/a", "v"); return err },
			"PUT", "/v2/keys/a", "/v2/keys/a", form("prevExist", "true"), form("value", "v"), KindWrite, false},
		{"dir ignores value and prevValue", func(k KeysAPI) error {
			_, err := k.Set(ctx, "/d", "ignored", &SetOptions{Dir: true, PrevValue: "ignored", TTL: 5 * time.Second})
			return err
		}, "PUT", "/v2/keys/d", "/v2/keys/d", form("dir", "true"), form("ttl", "5"), KindWrite, false},
		{"refresh", func(k KeysAPI) error {
			_, err := k.Set(ctx, "/a", "", &SetOptions{Refresh: true, TTL: 10 * time.Second})
			return err
		}, "PUT", "/v2/keys/a", "/v2/keys/a", form("prevExist", "true"), form("ttl", "10", "refresh", "true", "value", ""), KindWrite, false},
		{"refresh with explicit prevExist", func(k KeysAPI) error {
			_, err := k.Set(ctx, "/a", "", &SetOptions{Refresh: true, TTL: 10 * time.Second, PrevExist: PrevIgnore, PrevIndex: 3})
			return err
		}, "PUT", "/v2/keys/a", "/v2/keys/a", form("prevExist", "true", "prevIndex", "3"), form("ttl", "10", "refresh", "true", "value", ""), KindWrite, false},
		{"in order", func(k KeysAPI) error {
			_, err := k.CreateInOrder(ctx, "/q", "job", &CreateInOrderOptions{TTL: 2 * time.Second})
			return err
		}, "POST", "/v2/keys/q", "/v2/keys/q", form(), form("value", "job", "ttl", "2"), KindWrite, false},
		{"delete", func(k KeysAPI) error { _, err := k.Delete(ctx, "/a", nil); return err },
			"DELETE", "/v2/keys/a", "/v2/keys/a", form(), nil, KindWrite, false},
		{"cad in query", func(k KeysAPI) error {
			_, err := k.Delete(ctx, "/a", &DeleteOptions{PrevValue: "v", PrevIndex: 9, Dir: true, Recursive: true})
			return err
		}, "DELETE", "/v2/keys/a", "/v2/keys/a", form("prevValue", "v", "prevIndex", "9", "dir", "true", "recursive", "true"), nil, KindWrite, false},
		{"escaped key", func(k KeysAPI) error { _, err := k.Get(ctx, "/a b/é?#%/x", nil); return err },
			"GET", "/v2/keys/a b/é?#%/x", "/v2/keys/a%20b/%C3%A9%3F%23%25/x", form(), nil, KindRead, true},
		{"canonical key", func(k KeysAPI) error { _, err := k.Get(ctx, "//a/./b/../c//", nil); return err },
			"GET", "/v2/keys/a/c/", "/v2/keys/a/c/", form(), nil, KindRead, true},
		{"dot dot above root", func(k KeysAPI) error { _, err := k.Get(ctx, "../../x", nil); return err },
			"GET", "/v2/keys/x", "/v2/keys/x", form(), nil, KindRead, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &recClient{}
			if err := tt.call(NewKeysAPI(c)); err != nil {
				t.Fatal(err)
			}
			if len(c.reqs) != 1 {
				t.Fatalf("%d requests sent", len(c.reqs))
			}
			r := c.reqs[0]
			if r.method != tt.method || r.path != tt.path || r.rawPath != tt.rawPath {
				t.Errorf("got %s %q (raw %q), want %s %q (raw %q)", r.method, r.path, r.rawPath, tt.method, tt.path, tt.rawPath)
			}
			q, err := url.ParseQuery(r.query)
			if err != nil || !reflect.DeepEqual(q, tt.query) {
				t.Errorf("query %q, want %v", r.query, tt.query)
			}
			if tt.body == nil {
				if len(r.body) != 0 || r.contentType != "" {
					t.Errorf("unexpected body %q (%s)", r.body, r.contentType)
				}
			} else {
				b, err := url.ParseQuery(string(r.body))
				if err != nil || !reflect.DeepEqual(b, tt.body) {
					t.Errorf("body %q, want %v", r.body, tt.body)
				}
				if r.contentType != "application/x-www-form-urlencoded" {
					t.Errorf("content type %q", r.contentType)
				}
			}
			// replayable here: always, or (an unconditional set) when
			// Config.ResendUnconditionalSets allows it.
			if r.kind != tt.kind || (r.replayable || r.overwrite) != tt.replayable || r.replayable && r.overwrite {
				t.Errorf("kind %v replayable %v overwrite %v, want %v %v", r.kind, r.replayable, r.overwrite, tt.kind, tt.replayable)
			}
		})
	}
}

func TestKeysPrefix(t *testing.T) {
	c := &recClient{}
	k := NewKeysAPIWithPrefix(c, "custom/pre fix/")
	if _, err := k.Get(context.Background(), "a", nil); err != nil {
		t.Fatal(err)
	}
	if r := c.reqs[0]; r.path != "/custom/pre fix/a" || r.rawPath != "/custom/pre%20fix/a" {
		t.Fatalf("got %q %q", r.path, r.rawPath)
	}
}

// TestKeysInvalidRequests: only what the server would silently misread is
// refused before sending.
func TestKeysInvalidRequests(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		call  func(k KeysAPI) error
		field string
	}{
		{"refresh of a new key", func(k KeysAPI) error {
			_, err := k.Set(ctx, "/a", "", &SetOptions{Refresh: true, TTL: time.Minute, PrevExist: PrevNoExist})
			return err
		}, "SetOptions.PrevExist"},
		{"sub-second ttl", func(k KeysAPI) error {
			_, err := k.Set(ctx, "/a", "v", &SetOptions{TTL: 500 * time.Millisecond})
			return err
		}, "SetOptions.TTL"},
		{"sub-second in-order ttl", func(k KeysAPI) error {
			_, err := k.CreateInOrder(ctx, "/q", "v", &CreateInOrderOptions{TTL: time.Millisecond})
			return err
		}, "CreateInOrderOptions.TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &recClient{}
			err := tt.call(NewKeysAPI(c))
			var ire *InvalidRequestError
			if !errors.Is(err, ErrInvalidRequest) || !errors.As(err, &ire) || ire.Field != tt.field {
				t.Fatalf("got %v, want an InvalidRequestError on %s", err, tt.field)
			}
			if len(c.reqs) != 0 {
				t.Fatalf("%d requests sent", len(c.reqs))
			}
		})
	}
}

func TestKeysResponseMeta(t *testing.T) {
	h := http.Header{}
	h.Set("X-Etcd-Index", "12")
	h.Set("X-Etcd-Cluster-Id", "cdf818194e3a8c32")
	h.Set("X-Raft-Index", "40")
	h.Set("X-Raft-Term", "3")
	c := &recClient{respond: func(*request) (*response, error) {
		return jsonResponse(201, `{"action":"set","node":{"key":"/a","value":"v","modifiedIndex":12,"createdIndex":12}}`, h), nil
	}}
	resp, err := NewKeysAPI(c).Set(context.Background(), "/a", "v", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Response{Action: "set", Node: &Node{Key: "/a", Value: "v", ModifiedIndex: 12, CreatedIndex: 12},
		Index: 12, ClusterID: "cdf818194e3a8c32", RaftIndex: 40, RaftTerm: 3, Endpoint: "http://e1"}
	if !reflect.DeepEqual(*resp, want) {
		t.Fatalf("got %+v, want %+v", *resp, want)
	}
}

func TestKeysErrors(t *testing.T) {
	tests := []struct {
		status int
		body   string
		check  func(t *testing.T, err error)
	}{
		{404, `{"errorCode":100,"message":"Key not found","cause":"/a","index":7}`, func(t *testing.T, err error) {
			e, ok := err.(Error) // the original client's users assert the type
			if !ok || e.Code != ErrorCodeKeyNotFound || e.Index != 7 || e.Cause != "/a" || !IsKeyNotFound(err) {
				t.Fatalf("got %#v", err)
			}
		}},
		{400, `{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [120/5]","index":1119}`, func(t *testing.T, err error) {
			if e, ok := err.(Error); !ok || e.Code != ErrorCodeEventIndexCleared || e.Index != 1119 {
				t.Fatalf("got %#v", err)
			}
		}},
		{405, "Method Not Allowed", func(t *testing.T, err error) {
			var he *HTTPError
			if !errors.As(err, &he) || he.StatusCode != 405 {
				t.Fatalf("got %#v", err)
			}
		}},
		{200, "", func(t *testing.T, err error) {
			if err != ErrEmptyBody {
				t.Fatalf("got %#v", err)
			}
		}},
		{200, "<html>", func(t *testing.T, err error) {
			if !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("got %#v", err)
			}
		}},
	}
	for _, tt := range tests {
		c := &recClient{respond: func(*request) (*response, error) { return jsonResponse(tt.status, tt.body, nil), nil }}
		_, err := NewKeysAPI(c).Get(context.Background(), "/a", nil)
		tt.check(t, err)
	}
}

// TestKeysOverHTTP round-trips odd key names through net/http and the
// in-memory server.
func TestKeysOverHTTP(t *testing.T) {
	srv := newFake(t)
	c, err := New(Config{Endpoints: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := NewKeysAPI(c)
	ctx := context.Background()
	for _, key := range []string{"/a b", "/日本/語", "/q?x=1", "/h#frag", "/p%41", "/+plus", "/semi;colon"} {
		value := "v=" + key + "&%"
		if _, err := k.Set(ctx, key, value, nil); err != nil {
			t.Fatalf("set %q: %v", key, err)
		}
		resp, err := k.Get(ctx, key, nil)
		if err != nil {
			t.Fatalf("get %q: %v", key, err)
		}
		if resp.Node.Key != key || resp.Node.Value != value {
			t.Fatalf("key %q: got %q = %q", key, resp.Node.Key, resp.Node.Value)
		}
		if resp.ClusterID == "" || resp.Index == 0 || resp.RaftTerm == 0 || resp.Endpoint != srv.URL {
			t.Fatalf("meta: %+v", resp)
		}
	}
}

// TestKeysNotReplayed checks that a write that cannot be resent fails
// with an OutcomeUnknownError when the connection breaks after the
// request was sent, and that a read moves on to the next endpoint.
func TestKeysNotReplayed(t *testing.T) {
	broken := newFake(t)
	broken.On("*", v2fake.Drop())
	good := newFake(t)
	pinFirst := SelectorFunc(func(_ RequestInfo, cands []Endpoint) int {
		for i, e := range cands {
			if e.URL == broken.URL {
				return i
			}
		}
		return 0
	})
	// A fresh client for each write: a failed write also counts against
	// the broken endpoint's health, and an ejected endpoint would not be
	// offered to the selector again.
	var k KeysAPI
	resendSets := false
	newKeys := func() {
		c, err := New(Config{Endpoints: []string{broken.URL, good.URL}, Selector: pinFirst, ResendUnconditionalSets: resendSets})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		k = NewKeysAPI(c)
	}
	ctx := context.Background()
	writes := map[string]func() error{
		"set":      func() error { _, err := k.Set(ctx, "/a", "v", nil); return err },
		"ttl set":  func() error { _, err := k.Set(ctx, "/a", "v", &SetOptions{TTL: time.Minute}); return err },
		"create":   func() error { _, err := k.Create(ctx, "/a", "v"); return err },
		"update":   func() error { _, err := k.Update(ctx, "/a", "v"); return err },
		"cas":      func() error { _, err := k.Set(ctx, "/a", "v", &SetOptions{PrevIndex: 1}); return err },
		"in order": func() error { _, err := k.CreateInOrder(ctx, "/q", "v", nil); return err },
		"delete":   func() error { _, err := k.Delete(ctx, "/a", nil); return err },
		"dir":      func() error { _, err := k.Set(ctx, "/d", "", &SetOptions{Dir: true}); return err },
		"refresh":  func() error { _, err := k.Set(ctx, "/a", "", &SetOptions{Refresh: true, TTL: time.Minute}); return err },
	}
	for name, w := range writes {
		newKeys()
		err := w()
		var oue *OutcomeUnknownError
		if !errors.As(err, &oue) || oue.Endpoint != broken.URL {
			t.Errorf("%s: got %v, want an OutcomeUnknownError", name, err)
		}
	}
	if good.Count("*") != 0 {
		t.Fatalf("a non-replayable write reached the second endpoint")
	}
	// Opted in, an unconditional Set is resent; the others are still not.
	resendSets = true
	newKeys()
	if _, err := k.Set(ctx, "/a", "v", nil); err != nil {
		t.Fatalf("plain set with ResendUnconditionalSets: %v", err)
	}
	for _, name := range []string{"create", "cas", "refresh"} {
		newKeys()
		if err := writes[name](); !errors.Is(err, ErrOutcomeUnknown) {
			t.Errorf("%s with ResendUnconditionalSets: got %v, want an unknown outcome", name, err)
		}
	}
	newKeys()
	if _, err := k.Get(ctx, "/a", nil); err != nil {
		t.Fatalf("get: %v", err)
	}
	if n := good.Count("*"); n != 2 {
		t.Fatalf("replayable requests reached the second endpoint %d times", n)
	}
}

// TestKeysServerDecides: requests the server rejects on its own are sent
// as the original client sent them, so that the caller gets the server's
// Error.
func TestKeysServerDecides(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func(k KeysAPI) error
		method string
		path   string
		query  string
		body   string
	}{
		{"set root", func(k KeysAPI) error { _, err := k.Set(ctx, "/", "v", nil); return err }, "PUT", "/v2/keys/", "", "value=v"},
		{"create root via dots", func(k KeysAPI) error { _, err := k.Create(ctx, "/a/..", "v"); return err }, "PUT", "/v2/keys", "prevExist=false", "value=v"},
		{"update empty key", func(k KeysAPI) error { _, err := k.Update(ctx, "", "v"); return err }, "PUT", "/v2/keys", "prevExist=true", "value=v"},
		{"delete root", func(k KeysAPI) error {
			_, err := k.Delete(ctx, "//", &DeleteOptions{Recursive: true})
			return err
		}, "DELETE", "/v2/keys/", "recursive=true", ""},
		{"refresh with value", func(k KeysAPI) error {
			_, err := k.Set(ctx, "/a", "v", &SetOptions{Refresh: true, TTL: time.Minute})
			return err
		}, "PUT", "/v2/keys/a", "prevExist=true", "refresh=true&ttl=60&value=v"},
		{"refresh without ttl", func(k KeysAPI) error { _, err := k.Set(ctx, "/a", "", &SetOptions{Refresh: true}); return err },
			"PUT", "/v2/keys/a", "prevExist=true", "refresh=true&value="},
		{"bad prevExist", func(k KeysAPI) error { _, err := k.Set(ctx, "/a", "v", &SetOptions{PrevExist: "yes"}); return err },
			"PUT", "/v2/keys/a", "prevExist=yes", "value=v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := Error{Code: 107, Message: "from the server", Cause: "/", Index: 3}
			c := &recClient{respond: func(*request) (*response, error) {
				return jsonResponse(400, `{"errorCode":107,"message":"from the server","cause":"/","index":3}`, http.Header{}), nil
			}}
			err := tt.call(NewKeysAPI(c))
			if e, ok := err.(Error); !ok || e != want {
				t.Fatalf("got %T %v, want the server's Error", err, err)
			}
			if len(c.reqs) != 1 {
				t.Fatalf("%d requests sent", len(c.reqs))
			}
			r := c.reqs[0]
			if r.method != tt.method || r.path != tt.path || r.query != tt.query || string(r.body) != tt.body {
				t.Fatalf("sent %s %s ?%s %q, want %s %s ?%s %q", r.method, r.path, r.query, r.body, tt.method, tt.path, tt.query, tt.body)
			}
		})
	}
}

// TestQuorumUpgradeOfGet: the monotonic-read guard's upgrade of a Get
// asks the server for a quorum read and keeps the other options.
func TestQuorumUpgradeOfGet(t *testing.T) {
	for i, q := range getQueries {
		up := quorumUpgrade(&request{query: q})
		v, err := url.ParseQuery(up.query)
		if err != nil || len(v["quorum"]) != 1 || v.Get("quorum") != "true" || up.kind != KindQuorumRead {
			t.Errorf("query %d %q upgraded to %q", i, q, up.query)
		}
		if (v.Get("recursive") == "true") != (i&2 != 0) || (v.Get("sorted") == "true") != (i&1 != 0) || len(v) != 1+b2i(i&2 != 0)+b2i(i&1 != 0) {
			t.Errorf("query %d %q upgraded to %q: other options changed", i, q, up.query)
		}
	}
}

// answerThenCancel answers every request with a canned etcd error, then
// ends the caller's context, before the client has decoded the answer.
type answerThenCancel struct {
	status int
	body   string
	cancel context.CancelFunc
}

func (t answerThenCancel) RoundTrip(*http.Request) (*http.Response, error) {
	defer t.cancel()
	return &http.Response{
		StatusCode:    t.status,
		Header:        http.Header{"Content-Type": {"application/json"}, "X-Etcd-Index": {"7"}},
		Body:          io.NopCloser(strings.NewReader(t.body)),
		ContentLength: int64(len(t.body)),
	}, nil
}

func (answerThenCancel) CancelRequest(*http.Request) {}

// TestServerErrorKeptWhenContextEndsAfterAnswer: the server's error is the
// call's answer even when the caller's context ends once it has come, as
// with the original client (the write's outcome is known: refused).
func TestServerErrorKeptWhenContextEndsAfterAnswer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kapi := newTestKeys(t, Config{Endpoints: []string{"http://127.0.0.1:2379"}, Transport: answerThenCancel{
		status: http.StatusPreconditionFailed,
		body:   `{"errorCode":105,"message":"Key already exists","cause":"/k","index":7}`,
		cancel: cancel,
	}})
	_, err := kapi.Create(ctx, "/k", "v")
	var e Error
	if !errors.As(err, &e) || e.Code != ErrorCodeNodeExist || e.Cause != "/k" || e.Index != 7 {
		t.Fatalf("got %v, want the server's 105", err)
	}
}
