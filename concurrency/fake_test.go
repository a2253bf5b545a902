package concurrency

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/etcdv2/client"
)

// memKeys is an in-memory stand-in for the v2 keys API, for the error paths
// a real server cannot produce (an answer lost after the write was applied,
// a write applied late): flat keys, directories implied by their children,
// in-order creates, conditional sets, refreshes and deletes. It has no TTLs
// and no watchers (tests using it never wait on a watch).
//
// onSet, when set, runs (without the store's lock) before a Set is applied:
// a non-nil error is returned instead and nothing is applied. onGet does
// the same for a Get. afterCreate, when set, runs after an in-order create
// was applied, before its answer is returned; a non-nil error is returned
// instead of the answer.
type memKeys struct {
	client.KeysAPI // nil: the methods not written here are not used

	onSet       func(ctx context.Context, key, value string, o *client.SetOptions) error
	onGet       func(ctx context.Context, key string) error
	afterCreate func(ctx context.Context, n *client.Node) error

	mu    sync.Mutex
	index uint64
	nodes map[string]*client.Node
}

func newMemKeys() *memKeys { return &memKeys{nodes: map[string]*client.Node{}} }

func (m *memKeys) fail(code int, key string) error {
	return client.Error{Code: code, Message: fmt.Sprintf("error %d", code), Cause: key, Index: m.index}
}

// put applies a write of key at the next index. m.mu is held.
func (m *memKeys) put(key, value string) *client.Node {
	m.index++
	n, ok := m.nodes[key]
	if !ok {
		n = &client.Node{Key: key, CreatedIndex: m.index}
		m.nodes[key] = n
	}
	n.Value, n.ModifiedIndex = value, m.index
	c := *n
	return &c
}

func (m *memKeys) Set(ctx context.Context, key, value string, o *client.SetOptions) (*client.Response, error) {
	if o == nil {
		o = &client.SetOptions{}
	}
	if m.onSet != nil {
		if err := m.onSet(ctx, key, value, o); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[key]
	switch {
	case o.PrevExist == client.PrevNoExist && ok:
		return nil, m.fail(client.ErrorCodeNodeExist, key)
	case (o.PrevExist == client.PrevExist || o.Refresh || o.PrevValue != "" || o.PrevIndex != 0) && !ok:
		return nil, m.fail(client.ErrorCodeKeyNotFound, key)
	case o.PrevValue != "" && n.Value != o.PrevValue, o.PrevIndex != 0 && n.ModifiedIndex != o.PrevIndex:
		return nil, m.fail(client.ErrorCodeTestFailed, key)
	}
	if o.Refresh {
		value = n.Value
	}
	c := m.put(key, value)
	return &client.Response{Action: "set", Node: c, Index: m.index}, nil
}

func (m *memKeys) CreateInOrder(ctx context.Context, dir, value string, _ *client.CreateInOrderOptions) (*client.Response, error) {
	m.mu.Lock()
	c := m.put(fmt.Sprintf("%s/%020d", dir, m.index+1), value)
	index := m.index
	m.mu.Unlock()
	if m.afterCreate != nil {
		if err := m.afterCreate(ctx, c); err != nil {
			return nil, err
		}
	}
	return &client.Response{Action: "create", Node: c, Index: index}, nil
}

func (m *memKeys) Get(ctx context.Context, key string, _ *client.GetOptions) (*client.Response, error) {
	if m.onGet != nil {
		if err := m.onGet(ctx, key); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.nodes[key]; ok {
		c := *n
		return &client.Response{Action: "get", Node: &c, Index: m.index}, nil
	}
	var kids client.Nodes
	for k, n := range m.nodes {
		if strings.HasPrefix(k, key+"/") && !strings.Contains(k[len(key)+1:], "/") {
			c := *n
			kids = append(kids, &c)
		}
	}
	if len(kids) == 0 {
		return nil, m.fail(client.ErrorCodeKeyNotFound, key)
	}
	sort.Slice(kids, func(i, j int) bool { return kids[i].Key < kids[j].Key })
	return &client.Response{Action: "get", Node: &client.Node{Key: key, Dir: true, Nodes: kids}, Index: m.index}, nil
}

func (m *memKeys) Delete(ctx context.Context, key string, o *client.DeleteOptions) (*client.Response, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[key]
	switch {
	case !ok:
		return nil, m.fail(client.ErrorCodeKeyNotFound, key)
	case o != nil && o.PrevValue != "" && n.Value != o.PrevValue:
		return nil, m.fail(client.ErrorCodeTestFailed, key)
	}
	delete(m.nodes, key)
	m.index++
	return &client.Response{Action: "delete", Node: &client.Node{Key: key, ModifiedIndex: m.index, CreatedIndex: n.CreatedIndex}, Index: m.index}, nil
}

// store writes key as a write applied behind the caller's back.
func (m *memKeys) store(key, value string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.put(key, value)
}

// keys returns the keys stored under prefix.
func (m *memKeys) keys(prefix string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.nodes {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
