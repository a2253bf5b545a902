// Package cache keeps a local copy of an etcd v2 subtree in sync with the
// server, for programs that read a prefix often and react to its changes
// (the job every confd-like program does by hand).
//
// A Cache lists the prefix with one quorum read, then watches it from the
// index of that read plus one, applying each event once, in index order.
// When the watch falls out of the server's 1000-event history (error 401,
// or 400 after a server recovery) or the cluster ID changes, it lists the
// prefix again, applies the difference and reports it as events, and
// resumes watching from the new listing. Other errors are retried with
// backoff, except those no retry can fix (unauthorized, the prefix below a
// file, an endpoint of another cluster, a closed client: see Run), which
// end Run with that error; WaitSynced and Events then report it. It is
// built on client.KeysAPI alone.
//
//	c := cache.New(kapi, "/config")
//	go c.Run(ctx)
//	if err := c.WaitSynced(ctx); err != nil {
//		return err
//	}
//	n, ok := c.Get("/config/db/url")
//
// # What the cache holds
//
// Every node strictly below the prefix (files and directories, without
// their children in Node.Nodes), keyed by its full key, as of store index
// Index(). Nodes with a hidden path segment (starting with "_") are left
// out, as the server leaves them out of listings. Nodes the Depth or Filter
// options exclude are left out too.
//
// A TTL refresh (SetOptions.Refresh) is invisible to watchers: the cache
// keeps a refreshed node's ModifiedIndex, TTL and Expiration as of its last
// visible change until the next listing. TTL and Expiration are those of
// the write or listing that brought the node in; do not read them as
// current.
//
// # Events
//
// Events (and the WithEventHandler option) report every change the cache
// applies, in the order applied:
//
//   - a server event (set, create, update, compareAndSwap, delete, expire,
//     compareAndDelete) is reported once, as one Event with the event's
//     index. A Delete of a directory removes everything below it; it is one
//     Event, as it is one write on the server. A write that created the
//     missing directories on its path (as a set of /a/b/c creates /a and
//     /a/b) is preceded by a Put of each, with the same index.
//   - after a listing (the first one, and every resync) the difference to
//     the previous content is reported as Events with Resync set and the
//     listing's index: a Put for each node that is new or differs (in
//     value, type or indexes), in ModifiedIndex order, then a Delete for
//     each topmost node that is gone. Applying them to the previous
//     content gives the listing's content. A node whose TTL was refreshed
//     (invisible to watchers) differs by its ModifiedIndex, so it gets a
//     Put too.
//
// So a program that subscribed before Run and applies the events it
// receives, in order, to an empty map (removing a directory's subtree on
// its Delete) holds what the cache holds.
package cache

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/internal/progress"
)

// ErrStopped is matched by the error WaitSynced returns and Events yields
// after Run has returned. When Run ended on an error no retry can fix
// (see Run), that error wraps Run's error too (errors.Is and errors.As
// find both).
var ErrStopped = errors.New("cache: stopped")

// ErrRunning is returned by Run when the Cache is already running or has
// run before.
var ErrRunning = errors.New("cache: Run called more than once")

// EventType says whether an Event put or removed a node.
type EventType int

const (
	// Put means the node was created or changed.
	Put EventType = iota + 1
	// Delete means the node, and everything below it if it is a
	// directory, was removed.
	Delete
)

// String returns "put" or "delete".
func (t EventType) String() string {
	switch t {
	case Put:
		return "put"
	case Delete:
		return "delete"
	}
	return "unknown"
}

// Event is one change applied to the cache.
type Event struct {
	// Type is Put or Delete.
	Type EventType
	// Node is the node after the change. For a Delete it carries the key,
	// Dir and the index of the removal (as the server's event does); for
	// a Resync Delete, ModifiedIndex is the listing's index.
	Node *client.Node
	// PrevNode is the cached node before the change, nil if there was
	// none.
	PrevNode *client.Node
	// Index is the store index of the change: the server event's index,
	// or for a Resync Event the listing's index (a Resync Put's node
	// keeps its own ModifiedIndex). Events come in non-decreasing Index
	// order, except after a cluster change, whose indexes start anew.
	Index uint64
	// Action is the server's action name ("set", "expire", ...), or
	// "resync" for an Event computed from a listing.
	Action string
	// Resync is true for an Event computed from a listing rather than
	// received from a watch.
	Resync bool
}

// Option configures a Cache.
type Option func(*options)

type options struct {
	depth    int
	filter   func(*client.Node) bool
	handler  func(Event)
	backoff  time.Duration
	maxPoll  time.Duration
	progress time.Duration
}

// WithDepth keeps only nodes at most depth levels below the prefix (1:
// its direct children). Zero or less, the default, means no limit.
func WithDepth(depth int) Option { return func(o *options) { o.depth = depth } }

// WithFilter keeps only the nodes for which keep returns true. It is
// called with each listed or changed node (files and directories) from the
// cache's goroutine; a node that stops passing is removed (a Delete). The
// default keeps every node.
func WithFilter(keep func(*client.Node) bool) Option {
	return func(o *options) { o.filter = keep }
}

// WithEventHandler calls h with every Event, in order, from the cache's
// goroutine, after the change is visible to Get and List and before the
// next change is applied. h must not block for long: while it runs the
// cache does not watch. The default is no handler.
func WithEventHandler(h func(Event)) Option { return func(o *options) { o.handler = h } }

// DefaultProgressInterval is the interval of the progress check when
// WithProgressInterval is not given.
const DefaultProgressInterval = 10 * time.Second

// WithProgressInterval sets how often, while the cache watches, it checks
// that the member its reads reach keeps up with the cluster: a quorum read
// and a plain read, each of a key that does not exist. A member that has
// not reached the cluster's index of the check before is taken for cut
// off from its peers (such a member keeps a watch open and reports
// nothing), and the cache lists the prefix again with a quorum read. So a
// stuck watch leaves the cache stale for about two intervals plus the time
// a quorum read takes to move off that member (measured: 7 s with a 2 s
// interval), when the plain read reaches the member the watch is on, as
// with the client's default Sticky selection. Zero or less disables the
// check; the default is DefaultProgressInterval.
func WithProgressInterval(d time.Duration) Option { return func(o *options) { o.progress = d } }

// WithMaxPollDuration bounds each watch poll (client.WatcherOptions
// MaxPollDuration). Zero, the default, uses the client's default.
func WithMaxPollDuration(d time.Duration) Option { return func(o *options) { o.maxPoll = d } }

// Cache is a local copy of a subtree; see the package documentation. Its
// methods are safe for concurrent use.
type Cache struct {
	kapi   client.KeysAPI
	prefix string
	opts   options

	started atomic.Bool
	synced  chan struct{} // closed after the first listing is applied
	stopped chan struct{} // closed when Run returns
	// failed is the error no retry can fix that ended Run, or nil; set
	// before stopped is closed.
	failed error

	mu    sync.RWMutex
	nodes map[string]*client.Node
	index uint64

	subMu sync.Mutex
	subs  map[*subscriber]struct{}
}

// New returns a Cache of the subtree at prefix (a directory key such as
// "/config"). It does nothing until Run is called.
func New(kapi client.KeysAPI, prefix string, opts ...Option) *Cache {
	c := &Cache{
		kapi:    kapi,
		prefix:  cleanKey(prefix),
		synced:  make(chan struct{}),
		stopped: make(chan struct{}),
		nodes:   make(map[string]*client.Node),
		subs:    make(map[*subscriber]struct{}),
	}
	c.opts.backoff = 100 * time.Millisecond
	c.opts.progress = DefaultProgressInterval
	for _, o := range opts {
		o(&c.opts)
	}
	return c
}

// cleanKey returns key with one leading slash and no trailing one ("" for
// the root).
func cleanKey(key string) string {
	segs := strings.FieldsFunc(key, func(r rune) bool { return r == '/' })
	if len(segs) == 0 {
		return ""
	}
	return "/" + strings.Join(segs, "/")
}

// Prefix returns the key of the cached subtree.
func (c *Cache) Prefix() string { return c.prefix }

// Run lists the prefix and keeps the cache in sync until ctx ends, then
// returns ctx.Err(). Errors talking to the cluster are retried with
// backoff, except those no retry can fix, which end Run: it returns the
// error as the client gave it, and WaitSynced and Events then report it
// with ErrStopped. These are an etcd error below 300 other than 100 (the
// prefix below a file, 104; unauthorized, 110; a request the server
// refuses, 2xx), the client's cluster-ID mismatch
// (client.ErrClusterIDMismatch: an endpoint of another cluster) and a
// closed client (client.ErrClosed). A missing prefix (100 on the listing)
// is an empty one. Run may be called once; a second call returns
// ErrRunning.
func (c *Cache) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(c.stopped)
	backoff := time.Duration(0)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := c.syncOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			backoff = 0
			continue
		}
		if errors.Is(err, errResync) {
			continue
		}
		if unrecoverable(err) {
			c.failed = err
			return err
		}
		backoff = nextBackoff(backoff, c.opts.backoff)
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
	}
}

// errResync ends a watch round: list again at once.
var errResync = errors.New("cache: resync")

// unrecoverable reports whether err, of a listing or a watch, is one that
// no retry can fix (see Run).
func unrecoverable(err error) bool {
	var e client.Error
	if errors.As(err, &e) {
		return e.Code < 300 && e.Code != client.ErrorCodeKeyNotFound
	}
	return errors.Is(err, client.ErrClusterIDMismatch) || errors.Is(err, client.ErrClosed)
}

// stoppedErr is the error of WaitSynced and Events after Run returned.
func (c *Cache) stoppedErr() error {
	if c.failed != nil {
		return fmt.Errorf("%w: %w", ErrStopped, c.failed)
	}
	return ErrStopped
}

func nextBackoff(cur, min time.Duration) time.Duration {
	const max = 5 * time.Second
	if cur == 0 {
		cur = min
	} else if cur *= 2; cur > max {
		cur = max
	}
	return cur/2 + rand.N(cur/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// syncOnce lists the prefix, applies the listing and watches from it
// until the watch must be restarted from a new listing (errResync) or
// fails.
func (c *Cache) syncOnce(ctx context.Context) error {
	resp, err := c.kapi.Get(ctx, c.keyOrRoot(), &client.GetOptions{Recursive: true, Quorum: true})
	var listed map[string]*client.Node
	var index uint64
	var clusterID string
	switch {
	case err == nil:
		listed = make(map[string]*client.Node, countNodes(resp.Node))
		c.flatten(resp.Node, listed)
		index, clusterID = resp.Index, resp.ClusterID
	case client.IsKeyNotFound(err):
		var e client.Error
		if !errors.As(err, &e) || e.Index == 0 {
			return err
		}
		listed = map[string]*client.Node{}
		index = e.Index
	default:
		return err
	}
	c.applyListing(listed, index)

	w := c.kapi.Watcher(c.keyOrRoot(), &client.WatcherOptions{
		AfterIndex: index, Recursive: true, MaxPollDuration: c.opts.maxPoll,
	})
	defer leave(w)
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if c.opts.progress > 0 {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if progress.Watch(wctx, c.kapi, c.prefix+"/_etcdv2-client-progress", c.opts.progress) == progress.ErrStale {
				cancel(progress.ErrStale)
			}
		}()
		defer wg.Wait()
		defer cancel(nil)
	}
	backoff := time.Duration(0)
	for {
		ev, err := w.Next(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if context.Cause(wctx) == progress.ErrStale {
				return errResync
			}
			if errors.Is(err, client.Error{Code: client.ErrorCodeEventIndexCleared}) ||
				errors.Is(err, client.Error{Code: client.ErrorCodeWatcherCleared}) {
				return errResync
			}
			if unrecoverable(err) {
				return err
			}
			// The watcher keeps its cursor: poll again after a pause.
			backoff = nextBackoff(backoff, c.opts.backoff)
			if err := sleep(wctx, backoff); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return errResync
			}
			continue
		}
		backoff = 0
		if clusterID != "" && ev.ClusterID != "" && ev.ClusterID != clusterID {
			return errResync
		}
		c.applyEvent(ev)
	}
}

// leave ends w's part in the client's shared long poll after its last
// use. A watcher of this client stays subscribed to the shared poll of its
// key between calls of Next, keeping the poll (a connection and a
// goroutine) open, and leaves it only when a Next returns a context error
// or when the watcher is garbage-collected (client.Watcher, "Shared
// polls"); one Next with an ended context makes it leave now.
func leave(w client.Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = w.Next(ctx)
}

// keyOrRoot is the key to read and watch: the prefix, or "/" for the root.
func (c *Cache) keyOrRoot() string {
	if c.prefix == "" {
		return "/"
	}
	return c.prefix
}

// relInfo describes key relative to the prefix without allocating: ok is
// false unless key is strictly below the prefix; depth counts its
// segments below the prefix; hidden reports a segment starting with "_"
// (or an empty one).
func (c *Cache) relInfo(key string) (depth int, hidden, ok bool) {
	if len(key) <= len(c.prefix)+1 || key[len(c.prefix)] != '/' || key[:len(c.prefix)] != c.prefix {
		return 0, false, false
	}
	rel := key[len(c.prefix)+1:]
	depth = 1
	if rel[0] == '_' {
		hidden = true
	}
	for i := 0; i < len(rel); i++ {
		if rel[i] != '/' {
			continue
		}
		depth++
		if i+1 == len(rel) || rel[i+1] == '_' || rel[i+1] == '/' {
			hidden = true
		}
	}
	return depth, hidden, true
}

// keeps reports whether the node n belongs in the cache.
func (c *Cache) keeps(n *client.Node) bool {
	depth, hidden, ok := c.relInfo(n.Key)
	if !ok || hidden {
		return false
	}
	if c.opts.depth > 0 && depth > c.opts.depth {
		return false
	}
	return c.opts.filter == nil || c.opts.filter(n)
}

// flat returns a copy of n without its children.
func flat(n *client.Node) *client.Node {
	cp := *n
	cp.Nodes = nil
	return &cp
}

// countNodes returns the number of n's descendants.
func countNodes(n *client.Node) int {
	if n == nil {
		return 0
	}
	total := len(n.Nodes)
	for _, ch := range n.Nodes {
		total += countNodes(ch)
	}
	return total
}

// flatten moves n's descendants that the cache keeps to out, detaching
// them from their parents (the listing is the cache's own).
func (c *Cache) flatten(n *client.Node, out map[string]*client.Node) {
	if n == nil {
		return
	}
	for _, ch := range n.Nodes {
		if _, hidden, ok := c.relInfo(ch.Key); !ok || hidden {
			continue
		}
		c.flatten(ch, out)
		ch.Nodes = nil
		if c.keeps(ch) {
			out[ch.Key] = ch
		}
	}
	n.Nodes = nil
}

// applyListing replaces the content with listed (at store index index)
// and reports the difference.
func (c *Cache) applyListing(listed map[string]*client.Node, index uint64) {
	// The difference is computed only for someone to report it to; a
	// subscriber arriving meanwhile waits for the swap (subMu).
	c.subMu.Lock()
	listening := c.opts.handler != nil || len(c.subs) > 0
	c.mu.Lock()
	old := c.nodes
	var puts, dels []Event
	if !listening {
		old = nil
	}
	for k, n := range listed {
		if old == nil {
			break
		}
		p, ok := old[k]
		if ok && sameNode(p, n) {
			listed[k] = p
			continue
		}
		ev := Event{Type: Put, Node: n, Index: index, Action: "resync", Resync: true}
		if ok {
			ev.PrevNode = p
		}
		puts = append(puts, ev)
	}
	for k, p := range old {
		if _, ok := listed[k]; ok {
			continue
		}
		if _, parentGone := c.parentGone(k, old, listed); parentGone {
			continue
		}
		dels = append(dels, Event{
			Type:     Delete,
			Node:     &client.Node{Key: k, Dir: p.Dir, CreatedIndex: p.CreatedIndex, ModifiedIndex: index},
			PrevNode: p, Index: index, Action: "resync", Resync: true,
		})
	}
	c.nodes = listed
	// A quorum listing is never behind what was applied before, except
	// after a cluster change, when the old indexes mean nothing.
	c.index = index
	c.mu.Unlock()
	c.subMu.Unlock()

	sort.Slice(puts, func(i, j int) bool {
		if a, b := puts[i].Node.ModifiedIndex, puts[j].Node.ModifiedIndex; a != b {
			return a < b
		}
		return puts[i].Node.Key < puts[j].Node.Key
	})
	sort.Slice(dels, func(i, j int) bool { return dels[i].Node.Key < dels[j].Node.Key })
	select {
	case <-c.synced:
	default:
		// Report the first listing before WaitSynced returns, so that a
		// subscriber that waited sees it whole.
		defer close(c.synced)
	}
	for _, ev := range puts {
		c.emit(ev)
	}
	for _, ev := range dels {
		c.emit(ev)
	}
}

// parentGone reports whether an ancestor of k (below the prefix) was in
// old and is not in listed: then k's Delete is implied by the ancestor's.
func (c *Cache) parentGone(k string, old, listed map[string]*client.Node) (string, bool) {
	for {
		i := strings.LastIndexByte(k, '/')
		if i <= len(c.prefix) {
			return "", false
		}
		k = k[:i]
		if _, was := old[k]; was {
			if _, is := listed[k]; !is {
				return k, true
			}
		}
	}
}

func sameNode(a, b *client.Node) bool {
	return a.Key == b.Key && a.Dir == b.Dir && a.Value == b.Value &&
		a.CreatedIndex == b.CreatedIndex && a.ModifiedIndex == b.ModifiedIndex
}

// applyEvent applies one watch event.
func (c *Cache) applyEvent(r *client.Response) {
	if r.Node == nil {
		return
	}
	key := cleanKey(r.Node.Key)
	idx := r.Node.ModifiedIndex
	switch r.Action {
	case "delete", "expire", "compareAndDelete":
		c.remove(r, key, idx)
	case "set", "create", "update", "compareAndSwap":
		c.put(r, key, idx)
	}
}

// remove applies the removal of key (and its subtree).
func (c *Cache) remove(r *client.Response, key string, idx uint64) {
	all := key == c.prefix || strings.HasPrefix(c.prefix, key+"/") || key == ""
	if !all {
		if _, hidden, ok := c.relInfo(key); !ok || hidden {
			return
		}
	}
	c.mu.Lock()
	if idx <= c.index {
		c.mu.Unlock()
		return
	}
	c.index = idx
	var prev *client.Node
	removed := false
	if all {
		removed = len(c.nodes) > 0
		c.nodes = make(map[string]*client.Node)
	} else {
		if p, ok := c.nodes[key]; ok {
			prev, removed = p, true
			delete(c.nodes, key)
		}
		if r.Node.Dir || (r.PrevNode != nil && r.PrevNode.Dir) || (prev != nil && prev.Dir) {
			pfx := key + "/"
			for k := range c.nodes {
				if strings.HasPrefix(k, pfx) {
					delete(c.nodes, k)
					removed = true
				}
			}
		}
	}
	c.mu.Unlock()
	if !removed {
		return
	}
	n := flat(r.Node)
	n.Key = key
	c.emit(Event{Type: Delete, Node: n, PrevNode: prev, Index: idx, Action: r.Action})
}

// put applies a set, create, update or compareAndSwap of key.
func (c *Cache) put(r *client.Response, key string, idx uint64) {
	depth, hidden, ok := c.relInfo(key)
	if !ok || hidden {
		return
	}
	n := flat(r.Node)
	n.Key = key
	keep := c.keeps(n)
	c.mu.Lock()
	if idx <= c.index {
		c.mu.Unlock()
		return
	}
	c.index = idx
	// A write below the prefix creates the missing directories on its
	// path, with the write's index.
	var implied []*client.Node
	for i, d := len(c.prefix)+1, 1; d < depth; d++ {
		i += strings.IndexByte(key[i:], '/')
		dk := key[:i]
		i++
		if _, ok := c.nodes[dk]; ok {
			continue
		}
		d := &client.Node{Key: dk, Dir: true, CreatedIndex: idx, ModifiedIndex: idx}
		if c.keeps(d) {
			c.nodes[dk] = d
			implied = append(implied, d)
		}
	}
	prev := c.nodes[key]
	if keep {
		c.nodes[key] = n
	} else if prev != nil {
		delete(c.nodes, key)
	}
	c.mu.Unlock()
	for _, d := range implied {
		c.emit(Event{Type: Put, Node: flat(d), Index: idx, Action: r.Action})
	}
	switch {
	case keep:
		c.emit(Event{Type: Put, Node: n, PrevNode: prev, Index: idx, Action: r.Action})
	case prev != nil:
		c.emit(Event{Type: Delete, Node: n, PrevNode: prev, Index: idx, Action: r.Action})
	}
}

// emit hands ev to the handler and the subscribers.
func (c *Cache) emit(ev Event) {
	ev.Node = cloneNode(ev.Node)
	ev.PrevNode = cloneNode(ev.PrevNode)
	if c.opts.handler != nil {
		c.opts.handler(ev)
	}
	c.subMu.Lock()
	for s := range c.subs {
		s.push(ev)
	}
	c.subMu.Unlock()
}

func cloneNode(n *client.Node) *client.Node {
	if n == nil {
		return nil
	}
	cp := *n
	return &cp
}

// WaitSynced blocks until the first listing is applied (nil), ctx ends
// (ctx.Err()) or Run returned before that (an error matching ErrStopped,
// and wrapping the error that ended Run when no retry could fix it).
func (c *Cache) WaitSynced(ctx context.Context) error {
	select {
	case <-c.synced:
		return nil
	default:
	}
	select {
	case <-c.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stopped:
		select {
		case <-c.synced:
			return nil
		default:
		}
		return c.stoppedErr()
	}
}

// Synced reports whether the first listing has been applied.
func (c *Cache) Synced() bool {
	select {
	case <-c.synced:
		return true
	default:
		return false
	}
}

// Get returns a copy of the cached node at key (without children), and
// whether it is cached.
func (c *Cache) Get(key string) (*client.Node, bool) {
	key = cleanKey(key)
	c.mu.RLock()
	n, ok := c.nodes[key]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return cloneNode(n), true
}

// List returns copies of the cached nodes (files and directories, without
// children) whose key starts with prefix, a plain string prefix as in
// Consul's KV.List ("/config/a" matches "/config/a" and "/config/ab"),
// sorted by key. List("") returns every cached node.
func (c *Cache) List(prefix string) []*client.Node {
	c.mu.RLock()
	out := make([]*client.Node, 0, len(c.nodes))
	for k, n := range c.nodes {
		if strings.HasPrefix(k, prefix) {
			out = append(out, cloneNode(n))
		}
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Len returns the number of cached nodes.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.nodes)
}

// Index returns the store index the content reflects: the index of the
// last applied event or listing (0 before the first listing). It does not
// move on events outside the prefix.
func (c *Cache) Index() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.index
}

// Events returns an iterator over every Event the cache applies after
// Events is called, in the order applied, each once. It yields
// (Event{}, ctx.Err()) and ends when ctx ends, and (Event{}, err) with err
// matching ErrStopped (see WaitSynced) once Run has returned and the
// Events applied before are delivered.
// Events are queued for a slow consumer without limit, so the cache never
// waits for it. The queueing ends when the iteration ends or ctx ends;
// range over the iterator once.
func (c *Cache) Events(ctx context.Context) iter.Seq2[Event, error] {
	s := &subscriber{wake: make(chan struct{}, 1)}
	c.subMu.Lock()
	c.subs[s] = struct{}{}
	c.subMu.Unlock()
	unsubscribe := func() {
		c.subMu.Lock()
		delete(c.subs, s)
		c.subMu.Unlock()
	}
	// An iterator that is never ranged over stops queueing when ctx ends.
	stop := context.AfterFunc(ctx, unsubscribe)
	return func(yield func(Event, error) bool) {
		defer func() {
			stop()
			unsubscribe()
		}()
		for {
			for {
				ev, ok := s.pop()
				if !ok {
					break
				}
				if ctx.Err() != nil {
					yield(Event{}, ctx.Err())
					return
				}
				if !yield(ev, nil) {
					return
				}
			}
			select {
			case <-ctx.Done():
				yield(Event{}, ctx.Err())
				return
			case <-s.wake:
			case <-c.stopped:
				if _, ok := s.peek(); ok {
					continue
				}
				yield(Event{}, c.stoppedErr())
				return
			}
		}
	}
}

// subscriber is the queue of one Events iterator.
type subscriber struct {
	mu    sync.Mutex
	queue []Event
	head  int
	wake  chan struct{}
}

func (s *subscriber) push(ev Event) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) pop() (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head >= len(s.queue) {
		s.queue, s.head = s.queue[:0], 0
		return Event{}, false
	}
	ev := s.queue[s.head]
	s.queue[s.head] = Event{}
	s.head++
	return ev, true
}

func (s *subscriber) peek() (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head >= len(s.queue) {
		return Event{}, false
	}
	return s.queue[s.head], true
}
