package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeV2 is an in-memory etcd v2 keys server, enough for examples and
// behaviour tests: get (recursive, sorted), set, create, update, CAS,
// in-order create, delete, long-poll watches with a history. Keys are
// stored flat; directories are the keys marked dir or implied by children.
type fakeV2 struct {
	mu      sync.Mutex
	index   uint64
	keys    map[string]*fnode
	history []fevent
	changed chan struct{} // closed and replaced on every event
}

type fnode struct {
	value             string
	dir               bool
	created, modified uint64
	ttl               int64
}

type fevent struct {
	action   string
	key      string
	node     *Node
	prevNode *Node
	index    uint64
}

func newFakeV2() *fakeV2 {
	return &fakeV2{index: 3, keys: map[string]*fnode{}, changed: make(chan struct{})}
}

// start serves f on a loopback httptest server, closed at the end of the test.
func (f *fakeV2) start(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(f)
	tb.Cleanup(srv.Close)
	return srv
}

func cleanKey(p string) string {
	p = strings.TrimPrefix(p, "/v2/keys")
	p = "/" + strings.Trim(p, "/")
	return p
}

func (f *fakeV2) writeErr(w http.ResponseWriter, status, code int, msg, cause string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Etcd-Index", strconv.FormatUint(f.index, 10))
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Error{Code: code, Message: msg, Cause: cause, Index: f.index})
}

func (f *fakeV2) writeHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Etcd-Cluster-Id", "cdf818194e3a8c32")
	h.Set("X-Etcd-Index", strconv.FormatUint(f.index, 10))
	h.Set("X-Raft-Index", strconv.FormatUint(f.index+100, 10))
	h.Set("X-Raft-Term", "2")
}

func (f *fakeV2) view(key string, n *fnode) *Node {
	v := &Node{Key: key, Dir: n.dir, CreatedIndex: n.created, ModifiedIndex: n.modified, TTL: n.ttl}
	if !n.dir {
		v.Value = n.value
	}
	return v
}

// children lists the keys directly below dir, sorted, recursing if asked.
func (f *fakeV2) children(dir string, recursive bool) Nodes {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	var out Nodes
	for k, n := range f.keys {
		if strings.HasPrefix(k, prefix) && !strings.Contains(k[len(prefix):], "/") {
			v := f.view(k, n)
			if n.dir && recursive {
				v.Nodes = f.children(k, true)
			}
			out = append(out, v)
		}
	}
	sort.Sort(out)
	return out
}

func (f *fakeV2) record(w http.ResponseWriter, status int, ev fevent) {
	f.index = ev.index
	f.history = append(f.history, ev)
	close(f.changed)
	f.changed = make(chan struct{})
	f.writeHeaders(w)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Response{Action: ev.action, Node: ev.node, PrevNode: ev.prevNode})
}

func (f *fakeV2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/version" {
		fmt.Fprint(w, `{"etcdserver":"3.5.35","etcdcluster":"3.5.0"}`)
		return
	}
	if err := r.ParseForm(); err != nil {
		f.writeErr(w, 400, ErrorCodeInvalidForm, "Invalid POST form", err.Error())
		return
	}
	key := cleanKey(r.URL.Path)
	f.mu.Lock()
	if r.Method == http.MethodGet && r.Form.Get("wait") == "true" {
		f.watch(w, r, key) // unlocks
		return
	}
	defer f.mu.Unlock()
	n := f.keys[key]
	switch r.Method {
	case http.MethodGet:
		if key == "/" {
			f.writeHeaders(w)
			json.NewEncoder(w).Encode(Response{Action: "get", Node: &Node{Dir: true, Nodes: f.children("/", r.Form.Get("recursive") == "true")}})
			return
		}
		if n == nil {
			f.writeErr(w, 404, ErrorCodeKeyNotFound, "Key not found", key)
			return
		}
		v := f.view(key, n)
		if n.dir {
			v.Nodes = f.children(key, r.Form.Get("recursive") == "true")
		}
		f.writeHeaders(w)
		json.NewEncoder(w).Encode(Response{Action: "get", Node: v})
	case http.MethodPut, http.MethodPost:
		if r.Method == http.MethodPost {
			if n != nil && !n.dir {
				f.writeErr(w, 400, ErrorCodeNotDir, "Not a directory", key)
				return
			}
			key = fmt.Sprintf("%s/%020d", strings.TrimSuffix(key, "/"), f.index+1)
			n = nil
		}
		prevExist := r.Form.Get("prevExist")
		prevValue := r.Form.Get("prevValue")
		if prevExist == "false" && n != nil {
			f.writeErr(w, 412, ErrorCodeNodeExist, "Key already exists", key)
			return
		}
		if (prevExist == "true" || prevValue != "") && n == nil {
			f.writeErr(w, 404, ErrorCodeKeyNotFound, "Key not found", key)
			return
		}
		if prevValue != "" && n.value != prevValue {
			f.writeErr(w, 412, ErrorCodeTestFailed, "Compare failed", fmt.Sprintf("[%s != %s]", prevValue, n.value))
			return
		}
		ev := fevent{index: f.index + 1, key: key}
		nn := &fnode{value: r.Form.Get("value"), dir: r.Form.Get("dir") == "true", created: ev.index, modified: ev.index}
		if ttl := r.Form.Get("ttl"); ttl != "" {
			nn.ttl, _ = strconv.ParseInt(ttl, 10, 64)
		}
		status := http.StatusCreated
		switch {
		case r.Method == http.MethodPost || prevExist == "false":
			ev.action = "create"
		case prevValue != "":
			ev.action = "compareAndSwap"
		case prevExist == "true":
			ev.action = "update"
		default:
			ev.action = "set"
		}
		if n != nil {
			ev.prevNode = f.view(key, n)
			if ev.action != "set" {
				nn.created = n.created
			}
			status = http.StatusOK
		}
		f.keys[key] = nn
		// Parents are directories.
		for p := key; ; {
			i := strings.LastIndexByte(p, '/')
			if i <= 0 {
				break
			}
			p = p[:i]
			if f.keys[p] == nil {
				f.keys[p] = &fnode{dir: true, created: ev.index, modified: ev.index}
			}
		}
		ev.node = f.view(key, nn)
		f.record(w, status, ev)
	case http.MethodDelete:
		if n == nil {
			f.writeErr(w, 404, ErrorCodeKeyNotFound, "Key not found", key)
			return
		}
		if n.dir && r.Form.Get("recursive") != "true" && r.Form.Get("dir") != "true" {
			f.writeErr(w, 403, ErrorCodeNotFile, "Not a file", key)
			return
		}
		ev := fevent{index: f.index + 1, key: key, action: "delete", prevNode: f.view(key, n)}
		ev.node = &Node{Key: key, Dir: n.dir, CreatedIndex: n.created, ModifiedIndex: ev.index}
		for k := range f.keys {
			if k == key || strings.HasPrefix(k, key+"/") {
				delete(f.keys, k)
			}
		}
		f.record(w, 200, ev)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// watch answers a long poll; f.mu is held on entry and released.
func (f *fakeV2) watch(w http.ResponseWriter, r *http.Request, key string) {
	recursive := r.Form.Get("recursive") == "true"
	from, _ := strconv.ParseUint(r.Form.Get("waitIndex"), 10, 64)
	if from == 0 {
		from = f.index + 1
	}
	matches := func(ev fevent) bool {
		return ev.index >= from && (ev.key == key || (recursive && strings.HasPrefix(ev.key, strings.TrimSuffix(key, "/")+"/")))
	}
	f.writeHeaders(w)
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		for _, ev := range f.history {
			if matches(ev) {
				f.mu.Unlock()
				json.NewEncoder(w).Encode(Response{Action: ev.action, Node: ev.node, PrevNode: ev.prevNode})
				return
			}
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
	}
}
