package client

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Shared polls: watchers of one Client that watch the same key with the
// same options share one long poll (a share) run by a goroutine of the
// client. The share keeps its own cursor and delivers every event it gets,
// in order, to each subscriber whose cursor the event has reached; a
// subscriber takes its events with Next. The rules that keep a subscriber's
// events exactly those it would get polling alone are told once, at the
// Watcher type ("Shared polls").

// shareQueueMax bounds the events queued for one subscriber (events the
// share got that its watcher has not taken with Next yet). A subscriber
// with shareQueueMax events queued when another comes leaves the share: it
// takes what it has queued, then polls alone from its cursor.
const shareQueueMax = 256

// shareLagMax is how far (in store indexes) a watcher's cursor may be behind
// the store index its share last saw when it takes an event that was queued
// while it was not in Next. Further behind, its own poll could meet a 401
// (the server keeps 1000 events), so it leaves and polls alone: the server
// decides.
const shareLagMax = 500

// Causes of a shared poll ended by the share itself.
var (
	// errShareRestart ends a poll that was sent before a watcher without
	// a cursor joined: the next poll's headers give that watcher its
	// cursor.
	errShareRestart = errors.New("client: shared watch poll restarted for a new subscriber")
	// errShareIdle ends the poll of a share that lost its last
	// subscriber.
	errShareIdle = errors.New("client: shared watch poll has no subscriber left")
)

// watchHub is a client's registry of shares; its zero value is ready.
type watchHub struct {
	mu     sync.Mutex
	shares map[watchSpec]*watchShare
}

// watchShare is one shared poll.
type watchShare struct {
	hub  *watchHub
	spec watchSpec

	// mu guards everything below; lock order: hub.mu, then mu.
	mu   sync.Mutex
	subs map[*watchSub]struct{}
	// cursor is the waitIndex of the share's next poll (0: from now).
	cursor uint64
	// gen counts the polls sent; headers is set once the poll gen got
	// its headers.
	gen     uint64
	headers bool
	// pending counts the subscribers still without a cursor.
	pending int
	// known is the highest store index the share's polls have seen
	// (X-Etcd-Index of their headers, index of their events).
	known uint64
	// cancel ends the poll in flight (or the wait before it).
	cancel context.CancelCauseFunc
	// dead is set, under hub.mu too, when the share leaves the hub.
	dead bool
}

// watchSub is one watcher's subscription to a share. Its fields are
// guarded by the share's mu.
type watchSub struct {
	share *watchShare
	// cursor is the index of the next event the subscriber takes: events
	// below it are not queued for it. 0 means not known yet (a watcher
	// without a cursor waiting for the headers of poll needGen).
	cursor  uint64
	needGen uint64
	// queue[head:] are the items not taken yet.
	queue []shareItem
	head  int
	// left is set when the subscriber is no longer in the share; it
	// still takes what is queued.
	left bool
	// ready is signalled when an item is queued or left is set.
	ready chan struct{}
	// waiting is set while the subscriber's watcher waits in Next.
	waiting bool
}

// shareItem is an event or, last in a queue, the error that ended the
// share.
type shareItem struct {
	resp *Response
	err  error
	// late is set when the event was queued while the watcher was not
	// in Next; known is the share's known index when it was taken.
	late  bool
	known uint64
	// sole is set when resp was queued for this subscriber only: it is
	// the subscriber's to keep, without a copy.
	sole bool
}

// watchLink holds a watcher's subscription. It is atomic because a
// watcher dropped while subscribed leaves its share from a finalizer.
type watchLink struct {
	sub atomic.Pointer[watchSub]
}

// join subscribes a watcher with cursor next (0: from now) to the share of
// spec, starting one if there is none. It returns nil when the watcher must
// poll alone: the share's cursor is past the watcher's (it catches up on
// its own first), the share has no cursor yet while the watcher has one,
// or the client is closed.
func (h *watchHub) join(c *httpClusterClient, spec watchSpec, next uint64) *watchSub {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.shares[spec]
	if s == nil {
		s = &watchShare{hub: h, spec: spec, cursor: next, subs: map[*watchSub]struct{}{}}
		sub := s.add(next)
		if h.shares == nil {
			h.shares = map[watchSpec]*watchShare{}
		}
		h.shares[spec] = s
		if !c.goBackground(s.run) {
			delete(h.shares, spec)
			return nil
		}
		return sub
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if next != 0 && (s.cursor == 0 || s.cursor > next) {
		return nil
	}
	sub := s.add(next)
	if next == 0 && s.headers {
		// The poll in flight was registered before this watcher came:
		// its "now" is later. Restart it; the next poll's headers tell.
		s.cancel(errShareRestart)
	}
	return sub
}

// add makes a subscriber with cursor next. s.mu is held (or s is new).
func (s *watchShare) add(next uint64) *watchSub {
	sub := &watchSub{share: s, cursor: next, ready: make(chan struct{}, 1)}
	if next == 0 {
		sub.needGen = s.gen + 1
		s.pending++
	}
	s.subs[sub] = struct{}{}
	return sub
}

// remove takes sub out of the share and wakes its watcher. s.mu is held.
func (s *watchShare) remove(sub *watchSub) {
	if sub.left {
		return
	}
	sub.left = true
	delete(s.subs, sub)
	if sub.cursor == 0 {
		s.pending--
	}
	sub.signal()
}

// signal wakes the subscriber's watcher.
func (sub *watchSub) signal() {
	select {
	case sub.ready <- struct{}{}:
	default:
	}
}

// leave takes the subscriber out of its share; the share's poll ends when
// it was the last one.
func (sub *watchSub) leave() {
	s := sub.share
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(sub)
	sub.queue, sub.head = nil, 0
	if len(s.subs) == 0 && s.cancel != nil {
		s.cancel(errShareIdle)
	}
}

// take returns the next item queued for sub, waiting for one, with the
// subscriber's cursor after it (0 while it has none). It returns ok false
// once sub has left its share and has nothing queued; an error only when
// ctx ends, with where the subscriber's own polls resume (resumeAt).
func (sub *watchSub) take(ctx context.Context) (it shareItem, cursor uint64, ok bool, err error) {
	s := sub.share
	for {
		s.mu.Lock()
		if sub.head < len(sub.queue) {
			sub.waiting = false
			it = sub.queue[sub.head]
			it.known = s.known
			sub.queue[sub.head] = shareItem{}
			if sub.head++; sub.head == len(sub.queue) {
				sub.queue, sub.head = sub.queue[:0], 0
			}
			cursor = sub.cursor
			s.mu.Unlock()
			return it, cursor, true, nil
		}
		if sub.left {
			sub.waiting = false
			cursor = sub.cursor
			s.mu.Unlock()
			return shareItem{}, cursor, false, nil
		}
		sub.waiting = true
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			s.mu.Lock()
			sub.waiting = false
			cursor = sub.resumeAt()
			s.mu.Unlock()
			return shareItem{}, cursor, false, ctx.Err()
		case <-sub.ready:
		}
	}
}

// resumeAt is where the subscriber's own polls start if it leaves now:
// its first event still queued, or its cursor (0 while it has none). The
// share's mu is held.
func (sub *watchSub) resumeAt() uint64 {
	if sub.head < len(sub.queue) && sub.queue[sub.head].resp != nil {
		return sub.queue[sub.head].resp.Node.ModifiedIndex
	}
	return sub.cursor
}

// run is the share's goroutine: it polls while the share has subscribers
// and the client is open (ctx).
func (s *watchShare) run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		s.hub.mu.Lock()
		s.mu.Lock()
		if len(s.subs) == 0 || ctx.Err() != nil {
			s.dead = true
			delete(s.hub.shares, s.spec)
			// On Close the subscribers poll alone, and fail as they
			// would have alone.
			for sub := range s.subs {
				s.remove(sub)
			}
			s.mu.Unlock()
			s.hub.mu.Unlock()
			return
		}
		pctx, cancel := context.WithCancelCause(ctx)
		s.cancel = cancel
		s.mu.Unlock()
		s.hub.mu.Unlock()

		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-pctx.Done():
			case <-t.C:
			}
			t.Stop()
			if pctx.Err() != nil {
				cancel(nil)
				continue
			}
		}
		s.mu.Lock()
		s.gen++
		gen, next := s.gen, s.cursor
		s.headers = false
		s.mu.Unlock()
		start := time.Now()
		res, after, err := s.spec.poll(pctx, next, func(index uint64) { s.onHeaders(gen, next, index) })
		cause := context.Cause(pctx)
		cancel(nil)
		if ctx.Err() != nil {
			continue // closed: the top of the loop ends the share
		}
		if err != nil && (cause == errShareRestart || cause == errShareIdle) {
			// Ended by the share: as an empty poll, at once.
			res, after, err, backoff = nil, next, nil, 0
			start = time.Time{}
		}
		s.mu.Lock()
		s.headers = false
		if err != nil {
			s.fail(err)
			s.mu.Unlock()
			continue
		}
		if res != nil {
			s.cursor = after
			s.deliver(res)
			backoff = 0
		} else {
			if after > s.cursor {
				s.cursor = after
			}
			if !start.IsZero() {
				backoff = nextBackoff(backoff, start)
			}
		}
		s.mu.Unlock()
		if res != nil {
			// Let the watchers just given the event run before the
			// next poll is sent: sent first, its request's write runs
			// before them (bench/notes.md has the latency it cost).
			runtime.Gosched()
		}
	}
}

// onHeaders runs when the headers of poll gen, sent with cursor next, arrive
// with the store index index. A share without a cursor takes index + 1 (the
// server waits for events after it); subscribers without a cursor that
// joined before the poll was sent take index + 1 as well, or the share's
// cursor if that is later. If others joined after it was sent, the poll is
// restarted for them.
func (s *watchShare) onHeaders(gen, next, index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return
	}
	s.headers = true
	s.known = max(s.known, index)
	if next == 0 && s.cursor == 0 {
		s.cursor = index + 1
	}
	if s.pending == 0 {
		return
	}
	cursor := max(index+1, s.cursor)
	later := false
	for sub := range s.subs {
		if sub.cursor != 0 {
			continue
		}
		if sub.needGen <= gen {
			sub.cursor = cursor
			s.pending--
		} else {
			later = true
		}
	}
	if later {
		s.cancel(errShareRestart)
	}
}

// deliver queues the event res for every subscriber its index has reached,
// and takes out those whose queue is full. Queued for one subscriber
// only, res is that subscriber's (the share keeps no reference to it);
// for several, each takes a copy. s.mu is held.
func (s *watchShare) deliver(res *Response) {
	index := res.Node.ModifiedIndex
	s.known = max(s.known, index)
	var only *watchSub
	queued := 0
	for sub := range s.subs {
		if sub.cursor == 0 || index < sub.cursor {
			continue
		}
		if len(sub.queue)-sub.head >= shareQueueMax {
			// It fell behind: it takes what it has, then polls alone
			// from its cursor, which is this event's index.
			s.remove(sub)
			continue
		}
		sub.queue = append(sub.queue, shareItem{resp: res, late: !sub.waiting})
		sub.cursor = index + 1
		sub.signal() // it takes the item once s.mu is released
		only = sub
		queued++
	}
	if queued == 1 {
		only.queue[len(only.queue)-1].sole = true
	}
}

// fail ends the share after its poll failed with err. A subscriber whose
// cursor is the share's sent that very poll and gets err, as it would have
// alone; the others leave without it and poll alone. s.mu is held.
func (s *watchShare) fail(err error) {
	for sub := range s.subs {
		if sub.cursor == s.cursor && s.cursor != 0 {
			sub.queue = append(sub.queue, shareItem{err: err})
		}
		s.remove(sub)
	}
}

// nextShared waits for the watcher's next event through a share, joining
// one when the watcher's cursor allows. ok is false when the watcher must
// poll alone: no share could take it, or it left its share without an
// event (it fell behind, or the share ended).
func (w *httpWatcher) nextShared(ctx context.Context) (res *Response, ok bool, err error) {
	sub := w.link.sub.Load()
	if sub == nil {
		c, _ := w.spec.client.(*httpClusterClient)
		if sub = w.hub.join(c, w.spec, w.next); sub == nil {
			return nil, false, nil
		}
		w.link.sub.Store(sub)
	}
	it, cursor, ok, err := sub.take(ctx)
	switch {
	case err != nil:
		if w.next == 0 {
			// A watcher without a cursor keeps the one the share's
			// headers gave it (rule 3: a caller giving up ends an
			// empty poll), or its first event queued.
			w.next = cursor
		}
		w.leaveShare()
		return nil, true, err
	case !ok:
		w.link.sub.Store(nil)
		if w.next == 0 {
			// A watcher without a cursor that got one from the
			// share's headers keeps it: the events after it are
			// still to come.
			w.next = cursor
		}
		return nil, false, nil
	case it.err != nil:
		w.link.sub.Store(nil)
		if w.next == 0 {
			w.next = cursor
		}
		return nil, true, it.err
	case it.late && w.next != 0 && w.next+shareLagMax < it.known:
		// Slow, and far behind the store: its own poll might meet a
		// 401 now. Ask the server, alone, from the cursor.
		w.leaveShare()
		return nil, false, nil
	}
	res = it.resp
	if !it.sole {
		res = cloneResponse(it.resp)
	}
	w.next = res.Node.ModifiedIndex + 1
	return res, true, nil
}

// leaveShare takes the watcher out of its share, if it is in one. Events
// queued and not taken are dropped: the watcher's cursor is still before
// them, so they come again.
func (w *httpWatcher) leaveShare() {
	if w.link == nil {
		return
	}
	if sub := w.link.sub.Swap(nil); sub != nil {
		sub.leave()
	}
}

// cloneResponse returns a deep copy of r: every subscriber of a share gets
// a Response of its own, as it would alone.
func cloneResponse(r *Response) *Response {
	c := *r
	c.Node = cloneNode(r.Node)
	c.PrevNode = cloneNode(r.PrevNode)
	return &c
}

// cloneNode returns a deep copy of n.
func cloneNode(n *Node) *Node {
	if n == nil {
		return nil
	}
	c := *n
	if n.Expiration != nil {
		e := *n.Expiration
		c.Expiration = &e
	}
	if n.Nodes != nil {
		c.Nodes = make(Nodes, len(n.Nodes))
		for i, child := range n.Nodes {
			c.Nodes[i] = cloneNode(child)
		}
	}
	return &c
}
