package integration_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	official "go.etcd.io/etcd/client/v2"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// diffNode is a node in a form both clients can be compared in: indexes
// relative to the store index before the first operation.
type diffNode struct {
	Key      string
	Value    string
	Dir      bool
	HasTTL   bool
	Created  int64
	Modified int64
	Nodes    []diffNode
}

// diffResult is the outcome of one operation.
type diffResult struct {
	Action   string
	Node     *diffNode
	PrevNode *diffNode
	ErrCode  int
	// The rest of an etcd error: message, cause, index relative to the
	// start, and Error()'s text with the absolute index cut off.
	ErrMessage, ErrCause string
	ErrIndex             int64
	ErrText              string
}

// keyErr is diffResult of an etcd error.
func keyErr(base uint64, code int, message, cause string, index uint64, text string) diffResult {
	if i := strings.LastIndex(text, " ["); i >= 0 {
		text = text[:i]
	}
	return diffResult{ErrCode: code, ErrMessage: message, ErrCause: cause, ErrIndex: int64(index) - int64(base), ErrText: text}
}

// diffSet and diffDelete are the options both clients share.
type diffSet struct {
	PrevValue        string
	PrevIndex        uint64 // relative; 0 for none
	PrevExist        string
	TTL              time.Duration
	Refresh, Dir     bool
	NoValueOnSuccess bool
}

type diffDelete struct {
	PrevValue      string
	PrevIndex      uint64 // relative
	Recursive, Dir bool
}

// diffKV runs operations through one of the clients.
type diffKV interface {
	get(ctx context.Context, key string, recursive, sorted bool) diffResult
	set(ctx context.Context, key, value string, o diffSet) diffResult
	del(ctx context.Context, key string, o diffDelete) diffResult
	create(ctx context.Context, key, value string) diffResult
	update(ctx context.Context, key, value string) diffResult
	inOrder(ctx context.Context, dir, value string) diffResult
}

var inOrderName = regexp.MustCompile(`/(\d{20})$`)

func relNode(base uint64, key, value string, dir bool, ttl int64, created, modified uint64, children []diffNode) *diffNode {
	if m := inOrderName.FindStringSubmatch(key); m != nil {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		key = strings.TrimSuffix(key, m[1]) + "+" + strconv.FormatUint(n-base, 10)
	}
	return &diffNode{Key: key, Value: value, Dir: dir, HasTTL: ttl > 0, Created: int64(created) - int64(base), Modified: int64(modified) - int64(base), Nodes: children}
}

// ours adapts this module's client.
type ours struct {
	k    client.KeysAPI
	base uint64
	eps  []string // replaced by "<ep>" in error texts
}

func (o *ours) node(n *client.Node) *diffNode {
	if n == nil {
		return nil
	}
	var ch []diffNode
	for _, c := range n.Nodes {
		ch = append(ch, *o.node(c))
	}
	return relNode(o.base, n.Key, n.Value, n.Dir, n.TTL, n.CreatedIndex, n.ModifiedIndex, ch)
}

func (o *ours) result(r *client.Response, err error) diffResult {
	if err != nil {
		// As a program written for the official client sees it.
		if e, ok := err.(client.Error); ok {
			return keyErr(o.base, e.Code, e.Message, e.Cause, e.Index, err.Error())
		}
		return diffResult{ErrCode: -1, Action: anonymize(err.Error(), o.eps)}
	}
	return diffResult{Action: r.Action, Node: o.node(r.Node), PrevNode: o.node(r.PrevNode)}
}

func (o *ours) abs(i uint64) uint64 {
	if i == 0 {
		return 0
	}
	return i + o.base
}

func (o *ours) get(ctx context.Context, key string, recursive, sorted bool) diffResult {
	return o.result(o.k.Get(ctx, key, &client.GetOptions{Recursive: recursive, Sort: sorted}))
}
func (o *ours) set(ctx context.Context, key, value string, s diffSet) diffResult {
	return o.result(o.k.Set(ctx, key, value, &client.SetOptions{PrevValue: s.PrevValue, PrevIndex: o.abs(s.PrevIndex),
		PrevExist: client.PrevExistType(s.PrevExist), TTL: s.TTL, Refresh: s.Refresh, Dir: s.Dir, NoValueOnSuccess: s.NoValueOnSuccess}))
}
func (o *ours) del(ctx context.Context, key string, d diffDelete) diffResult {
	return o.result(o.k.Delete(ctx, key, &client.DeleteOptions{PrevValue: d.PrevValue, PrevIndex: o.abs(d.PrevIndex), Recursive: d.Recursive, Dir: d.Dir}))
}
func (o *ours) create(ctx context.Context, key, value string) diffResult {
	return o.result(o.k.Create(ctx, key, value))
}
func (o *ours) update(ctx context.Context, key, value string) diffResult {
	return o.result(o.k.Update(ctx, key, value))
}
func (o *ours) inOrder(ctx context.Context, dir, value string) diffResult {
	return o.result(o.k.CreateInOrder(ctx, dir, value, nil))
}

// theirs adapts the official client.
type theirs struct {
	k    official.KeysAPI
	base uint64
	eps  []string // replaced by "<ep>" in error texts
}

func (o *theirs) node(n *official.Node) *diffNode {
	if n == nil {
		return nil
	}
	var ch []diffNode
	for _, c := range n.Nodes {
		ch = append(ch, *o.node(c))
	}
	return relNode(o.base, n.Key, n.Value, n.Dir, n.TTL, n.CreatedIndex, n.ModifiedIndex, ch)
}

func (o *theirs) result(r *official.Response, err error) diffResult {
	if err != nil {
		// As a program written for the official client sees it.
		if e, ok := err.(official.Error); ok {
			return keyErr(o.base, e.Code, e.Message, e.Cause, e.Index, err.Error())
		}
		return diffResult{ErrCode: -1, Action: anonymize(err.Error(), o.eps)}
	}
	return diffResult{Action: r.Action, Node: o.node(r.Node), PrevNode: o.node(r.PrevNode)}
}

// anonymize replaces the endpoints of a cluster in an error text.
func anonymize(s string, eps []string) string {
	for _, ep := range eps {
		s = strings.ReplaceAll(s, ep, "<ep>")
	}
	return s
}

func (o *theirs) abs(i uint64) uint64 {
	if i == 0 {
		return 0
	}
	return i + o.base
}

func (o *theirs) get(ctx context.Context, key string, recursive, sorted bool) diffResult {
	return o.result(o.k.Get(ctx, key, &official.GetOptions{Recursive: recursive, Sort: sorted}))
}
func (o *theirs) set(ctx context.Context, key, value string, s diffSet) diffResult {
	return o.result(o.k.Set(ctx, key, value, &official.SetOptions{PrevValue: s.PrevValue, PrevIndex: o.abs(s.PrevIndex),
		PrevExist: official.PrevExistType(s.PrevExist), TTL: s.TTL, Refresh: s.Refresh, Dir: s.Dir, NoValueOnSuccess: s.NoValueOnSuccess}))
}
func (o *theirs) del(ctx context.Context, key string, d diffDelete) diffResult {
	return o.result(o.k.Delete(ctx, key, &official.DeleteOptions{PrevValue: d.PrevValue, PrevIndex: o.abs(d.PrevIndex), Recursive: d.Recursive, Dir: d.Dir}))
}
func (o *theirs) create(ctx context.Context, key, value string) diffResult {
	return o.result(o.k.Create(ctx, key, value))
}
func (o *theirs) update(ctx context.Context, key, value string) diffResult {
	return o.result(o.k.Update(ctx, key, value))
}
func (o *theirs) inOrder(ctx context.Context, dir, value string) diffResult {
	return o.result(o.k.CreateInOrder(ctx, dir, value, nil))
}

// diffSteps is the sequence run through both clients. Indexes in options
// are relative to the store index before the first step.
var diffSteps = []struct {
	name string
	run  func(ctx context.Context, kv diffKV) diffResult
}{
	{"set", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "/a", "1", diffSet{}) }},
	{"set again", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "/a", "2", diffSet{}) }},
	{"get", func(ctx context.Context, kv diffKV) diffResult { return kv.get(ctx, "/a", false, false) }},
	{"get missing", func(ctx context.Context, kv diffKV) diffResult { return kv.get(ctx, "/nope", false, false) }},
	{"create", func(ctx context.Context, kv diffKV) diffResult { return kv.create(ctx, "/b", "x") }},
	{"create exists", func(ctx context.Context, kv diffKV) diffResult { return kv.create(ctx, "/b", "y") }},
	{"update", func(ctx context.Context, kv diffKV) diffResult { return kv.update(ctx, "/b", "z") }},
	{"update missing", func(ctx context.Context, kv diffKV) diffResult { return kv.update(ctx, "/c", "z") }},
	{"cas value", func(ctx context.Context, kv diffKV) diffResult {
		return kv.set(ctx, "/b", "w", diffSet{PrevValue: "z"})
	}},
	{"cas value fails", func(ctx context.Context, kv diffKV) diffResult {
		return kv.set(ctx, "/b", "v", diffSet{PrevValue: "z"})
	}},
	{"cas index", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "/b", "u", diffSet{PrevIndex: 5}) }},
	{"cas index fails", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "/b", "t", diffSet{PrevIndex: 1}) }},
	{"no value on success", func(ctx context.Context, kv diffKV) diffResult {
		return kv.set(ctx, "/b", "s", diffSet{NoValueOnSuccess: true})
	}},
	{"ttl", func(ctx context.Context, kv diffKV) diffResult {
		return kv.set(ctx, "/t", "v", diffSet{TTL: time.Minute})
	}},
	{"refresh", func(ctx context.Context, kv diffKV) diffResult {
		return kv.set(ctx, "/t", "", diffSet{Refresh: true, TTL: 2 * time.Minute, PrevExist: "true"})
	}},
	{"dir", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "/d", "", diffSet{Dir: true}) }},
	{"dir again", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "/d", "", diffSet{Dir: true}) }},
	{"in dir", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "/d/x/y", "1", diffSet{}) }},
	{"in dir 2", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "/d/a", "2", diffSet{}) }},
	{"below a file", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "/a/b", "1", diffSet{}) }},
	{"list", func(ctx context.Context, kv diffKV) diffResult { return kv.get(ctx, "/d", false, true) }},
	{"list recursive", func(ctx context.Context, kv diffKV) diffResult { return kv.get(ctx, "/d", true, true) }},
	{"in order 1", func(ctx context.Context, kv diffKV) diffResult { return kv.inOrder(ctx, "/q", "j1") }},
	{"in order 2", func(ctx context.Context, kv diffKV) diffResult { return kv.inOrder(ctx, "/q", "j2") }},
	{"in order list", func(ctx context.Context, kv diffKV) diffResult { return kv.get(ctx, "/q", true, true) }},
	{"delete dir plain", func(ctx context.Context, kv diffKV) diffResult { return kv.del(ctx, "/d", diffDelete{}) }},
	{"delete dir not empty", func(ctx context.Context, kv diffKV) diffResult { return kv.del(ctx, "/d", diffDelete{Dir: true}) }},
	{"cad fails", func(ctx context.Context, kv diffKV) diffResult { return kv.del(ctx, "/a", diffDelete{PrevValue: "9"}) }},
	{"cad", func(ctx context.Context, kv diffKV) diffResult { return kv.del(ctx, "/a", diffDelete{PrevValue: "2"}) }},
	{"cad index fails", func(ctx context.Context, kv diffKV) diffResult { return kv.del(ctx, "/b", diffDelete{PrevIndex: 1}) }},
	{"delete recursive", func(ctx context.Context, kv diffKV) diffResult { return kv.del(ctx, "/d", diffDelete{Recursive: true}) }},
	{"delete missing", func(ctx context.Context, kv diffKV) diffResult { return kv.del(ctx, "/d", diffDelete{}) }},
	{"odd key", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "/o/a b/é", "v&w=1", diffSet{}) }},
	{"odd key get", func(ctx context.Context, kv diffKV) diffResult { return kv.get(ctx, "/o/a b/é", false, false) }},
	{"trailing slash", func(ctx context.Context, kv diffKV) diffResult { return kv.get(ctx, "/o/", true, true) }},
	{"root", func(ctx context.Context, kv diffKV) diffResult { return kv.get(ctx, "/", false, true) }},
	{"set root", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "/", "v", diffSet{}) }},
	{"set empty key", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "", "v", diffSet{}) }},
	{"create root via dots", func(ctx context.Context, kv diffKV) diffResult { return kv.create(ctx, "/a/..", "v") }},
	{"update root", func(ctx context.Context, kv diffKV) diffResult { return kv.update(ctx, "/", "v") }},
	{"dir at root", func(ctx context.Context, kv diffKV) diffResult { return kv.set(ctx, "/", "", diffSet{Dir: true}) }},
	{"delete root", func(ctx context.Context, kv diffKV) diffResult { return kv.del(ctx, "/", diffDelete{Recursive: true}) }},
	{"delete empty key", func(ctx context.Context, kv diffKV) diffResult { return kv.del(ctx, "", diffDelete{Dir: true}) }},
	{"refresh without ttl", func(ctx context.Context, kv diffKV) diffResult {
		return kv.set(ctx, "/t", "", diffSet{Refresh: true, PrevExist: "true"})
	}},
	{"refresh with value", func(ctx context.Context, kv diffKV) diffResult {
		return kv.set(ctx, "/t", "v", diffSet{Refresh: true, TTL: time.Minute, PrevExist: "true"})
	}},
	{"invalid prevExist", func(ctx context.Context, kv diffKV) diffResult {
		return kv.set(ctx, "/t", "v", diffSet{PrevExist: "maybe"})
	}},
	{"get after", func(ctx context.Context, kv diffKV) diffResult { return kv.get(ctx, "/t", false, false) }},
	{"refresh of a dir", func(ctx context.Context, kv diffKV) diffResult {
		return kv.set(ctx, "/o", "", diffSet{Refresh: true, TTL: time.Minute, Dir: true, PrevExist: "true"})
	}},
}

// TestDifferentialOfficialClient runs the same operations through this
// client and the official one (go.etcd.io/etcd/client/v2), each against a
// fresh cluster, and compares actions, values, error codes, listings and
// indexes relative to the start.
func TestDifferentialOfficialClient(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c1 := testbed.NewCluster(t, testbed.Options{Size: 1})
	ok, _ := newKeys(t, client.Config{Endpoints: c1.ClientURLs()})
	r1, err := ok.Get(ctx, "/", nil)
	require.NoError(t, err)
	our := &ours{k: ok, base: r1.Index, eps: c1.ClientURLs()}

	c2 := testbed.NewCluster(t, testbed.Options{Size: 1})
	otr := official.DefaultTransport
	if testbed.TLSFromEnv() {
		otr = envHTTPTransport(official.DefaultTransport.(*http.Transport).Clone())
	}
	oc, err := official.New(official.Config{Endpoints: c2.ClientURLs(), Transport: otr})
	require.NoError(t, err)
	tk := official.NewKeysAPI(oc)
	r2, err := tk.Get(ctx, "/", nil)
	require.NoError(t, err)
	their := &theirs{k: tk, base: r2.Index, eps: c2.ClientURLs()}

	differ := 0
	for _, s := range diffSteps {
		want := s.run(ctx, their)
		got := s.run(ctx, our)
		if !assert.Equal(t, want, got, "step %q", s.name) {
			differ++
		}
		t.Logf("%-20s action=%q err=%d %q node=%+v", s.name, got.Action, got.ErrCode, got.ErrText, got.Node)
	}
	t.Logf("%d steps, %d differ", len(diffSteps), differ)
}
