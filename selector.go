package client

import (
	"sync/atomic"
)

// RequestKind tells a Selector what a request is, so that a policy can, for
// instance, send writes to the leader and spread reads.
type RequestKind uint8

// The kinds of requests the client makes.
const (
	// KindRead is a plain (serializable) read: served by any member from its
	// own store, possibly stale.
	KindRead RequestKind = iota
	// KindQuorumRead is a read that goes through raft (GetOptions.Quorum).
	KindQuorumRead
	// KindWrite is a key write (set, create, update, compare-and-swap,
	// delete, in-order create).
	KindWrite
	// KindWatch is a long-poll watch request.
	KindWatch
	// KindCluster is a request of the members, auth or version APIs.
	KindCluster
)

func (k RequestKind) String() string {
	switch k {
	case KindRead:
		return "read"
	case KindQuorumRead:
		return "quorum-read"
	case KindWrite:
		return "write"
	case KindWatch:
		return "watch"
	case KindCluster:
		return "cluster"
	}
	return "unknown"
}

// Endpoint is the read-only view of one endpoint that a Selector chooses from.
type Endpoint struct {
	// URL is the endpoint's URL as configured (or as learned by Sync).
	URL string
	// Index is the endpoint's position in the client's endpoint list. The
	// list is shuffled once when it is set, so that many clients spread
	// over the members; it is stable afterwards.
	Index int
	// Leader reports whether the endpoint is the client URL of the member
	// last known to be the raft leader.
	Leader bool
}

// RequestInfo describes the request an endpoint is chosen for.
type RequestInfo struct {
	// Kind is what the request is.
	Kind RequestKind
	// Attempt counts the attempts already made for this request (0 for the first).
	Attempt int
}

// Selector picks the endpoint for one attempt of a request.
//
// Select is given the candidates: the client's endpoints that have not yet
// been tried for this request, in the order of the client's list, never
// empty. It returns the index of its choice in candidates; an index out of
// range is taken as 0. Failover is the client's job: when the attempt fails
// the client calls Select again with the endpoints still untried, so a
// policy only has to express a preference.
//
// Select must not block or do I/O, and must be safe for concurrent use: the
// client calls it from every goroutine that makes a request. It must not
// keep or modify the candidates slice.
type Selector interface {
	Select(info RequestInfo, candidates []Endpoint) int
}

// Observer is implemented by selectors that keep state from the outcome of
// attempts (the sticky policy keeps its pin on the endpoint that last
// answered). The client calls Observe once after each attempt; like
// Select, it must not block and must be safe for concurrent use.
type Observer interface {
	Observe(o Outcome)
}

// Outcome is the result of one attempt, as given to an Observer.
type Outcome struct {
	// Endpoint is the endpoint the attempt went to.
	Endpoint Endpoint
	// Info describes the request.
	Info RequestInfo
	// Err is nil when the endpoint answered, even with an etcd error such
	// as "key not found"; otherwise it says what went wrong.
	Err error
}

// SelectorFunc adapts a function to the Selector interface.
type SelectorFunc func(info RequestInfo, candidates []Endpoint) int

// Select calls f.
func (f SelectorFunc) Select(info RequestInfo, candidates []Endpoint) int { return f(info, candidates) }

// leaderAware is implemented by selectors that use Endpoint.Leader: the
// client then keeps the leader up to date, refreshing it when a response
// shows a new raft term.
type leaderAware interface {
	usesLeader() bool
}

// Sticky returns the selection policy of the original client's default
// mode: every request goes to one pinned endpoint while it answers; when it
// fails, the next endpoint in the (shuffled) list is tried and, once one
// answers, becomes the new pin. Pinning keeps one connection per client and
// spreads many clients over the members at random.
func Sticky() Selector { return &sticky{} }

type sticky struct {
	pin atomic.Pointer[pinState]
}

type pinState struct {
	ep Endpoint
	// failed is set when an attempt at the pin failed: requests then start
	// at the next endpoint until one answers and becomes the pin.
	failed bool
}

func (s *sticky) Select(_ RequestInfo, candidates []Endpoint) int {
	p := s.pin.Load()
	if p == nil {
		return 0
	}
	// Stay on the pin; otherwise take the first candidate after it in
	// list order, wrapping around, so that failover rotates through the
	// list instead of piling onto its first entry.
	best, bestDist := 0, -1
	for i := range candidates {
		if candidates[i].URL == p.ep.URL && !p.failed {
			return i
		}
		d := candidates[i].Index - p.ep.Index
		if d <= 0 {
			d += 1 << 30
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = i, d
		}
	}
	return best
}

func (s *sticky) Observe(o Outcome) {
	p := s.pin.Load()
	if o.Err != nil {
		// Only a failure of the current pin moves requests away from it;
		// the compare-and-swap keeps concurrent failures from rotating
		// the pin more than once.
		if p != nil && !p.failed && p.ep.URL == o.Endpoint.URL {
			s.pin.CompareAndSwap(p, &pinState{ep: p.ep, failed: true})
		}
		return
	}
	if p != nil && !p.failed && p.ep == o.Endpoint {
		return
	}
	s.pin.Store(&pinState{ep: o.Endpoint})
}

// PreferLeader returns a policy that sends every request to the raft
// leader's endpoint when the client knows it and it has not failed for this
// request, and otherwise asks fallback (Sticky when nil). Writes reach the
// leader without the follower's forwarding hop. The client learns the leader
// from Sync and refreshes it in the background when a response shows that a
// new raft term has begun.
func PreferLeader(fallback Selector) Selector {
	if fallback == nil {
		fallback = Sticky()
	}
	return &preferLeader{fallback: fallback}
}

type preferLeader struct {
	fallback Selector
}

func (p *preferLeader) Select(info RequestInfo, candidates []Endpoint) int {
	for i := range candidates {
		if candidates[i].Leader {
			return i
		}
	}
	return p.fallback.Select(info, candidates)
}

func (p *preferLeader) Observe(o Outcome) {
	if ob, ok := p.fallback.(Observer); ok {
		ob.Observe(o)
	}
}

func (p *preferLeader) usesLeader() bool { return true }

// selectorFor maps the original client's selection modes onto policies.
func selectorFor(mode EndpointSelectionMode) Selector {
	if mode == EndpointSelectionPrioritizeLeader {
		return PreferLeader(Sticky())
	}
	return Sticky()
}
