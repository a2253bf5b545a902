package client

import (
	"math/rand/v2"
	"time"
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

// String returns the kind's name, such as "quorum-read".
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

// Endpoint is a read-only snapshot of one endpoint, taken by the client for
// each attempt, from which a Selector chooses. All fields are what the
// client knew when the attempt began; they change between attempts.
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
	// HasLeader is false after the endpoint answered that it has no leader
	// (etcd error 300 or 301, HTTP 503), until a write or quorum read
	// through it succeeds or a probe finds a leader. The client offers
	// such an endpoint for anything but plain reads only when no other
	// untried endpoint is left.
	HasLeader bool
	// State is the endpoint's health. Selectors normally see only healthy
	// endpoints and ones on probation; see StateEjected.
	State HealthState
	// InFlight is the number of attempts at the endpoint waiting for their
	// response headers. Watches are not counted.
	InFlight int
	// Watches is the number of watch long polls open at the endpoint.
	Watches int
	// Latency is a peak-sensitive moving average of the time to response
	// headers (decay 10 s): it jumps to a slower sample at once and comes
	// down slowly. A failed attempt counts for at least one second. It
	// also decays while the endpoint gets no traffic, so that a policy
	// avoiding a slow endpoint tries it again after a while. Watches are
	// not included. Zero means no sample yet.
	Latency time.Duration
	// EtcdIndex is the last X-Etcd-Index the endpoint answered with, or 0.
	EtcdIndex uint64
	// IndexLag is how far EtcdIndex was below the highest index the client
	// had seen from any endpoint when that answer came; 0 when unknown or
	// older than 10 s.
	IndexLag uint64
	// ConsecutiveFailures counts the failed attempts in a row at the
	// endpoint since its last answer.
	ConsecutiveFailures int
}

// RequestInfo describes the request an endpoint is chosen for.
type RequestInfo struct {
	// Kind is what the request is.
	Kind RequestKind
	// Attempt counts the attempts already made for this request (0 for the first).
	Attempt int
	// Round counts the passes over the endpoints already completed for
	// this request (see Config.Rounds).
	Round int
}

// Selector picks the endpoint for one attempt of a request.
//
// The client calls Select with the candidates: its endpoints that have not
// been tried yet in this round of the request, that are not ejected, and,
// for anything but plain reads, that are not known to lack a leader, in
// the order of the client's list. If no endpoint qualifies, the candidates
// are the untried endpoints without a leader, and failing those, the single
// least bad ejected one (the one readmitted soonest). So candidates is never
// empty, and failover, ejection, readmission and backoff come with every
// policy: a Selector only expresses a preference.
//
// Select returns the index of its choice in candidates; an index out of
// range is taken as 0. It must not block or do I/O, must be safe for
// concurrent use (the client calls it from every goroutine that makes a
// request, without a lock), and must not keep or modify candidates after it
// returns. It should not allocate: it runs once per attempt.
type Selector interface {
	Select(info RequestInfo, candidates []Endpoint) int
}

// Observer is implemented by selectors that keep state from the outcome of
// attempts (the sticky policy keeps its pin on the endpoint that last
// answered). The client calls Observe once after each attempt that was not
// ended by the caller's context or by Close; like Select, it must not block
// and must be safe for concurrent use. Health tracking is the client's
// job: an Observer is needed only for a policy's own state.
type Observer interface {
	Observe(o Outcome)
}

// Outcome is the result of one attempt, as given to an Observer.
type Outcome struct {
	// Endpoint is the endpoint the attempt went to, as it is after the
	// client has taken the outcome into account.
	Endpoint Endpoint
	// Info describes the request.
	Info RequestInfo
	// Err is nil when the endpoint answered, even with an etcd error such
	// as "key not found"; otherwise it says what went wrong.
	Err error
	// Latency is the time from the start of the attempt to the response
	// headers or to the failure.
	Latency time.Duration
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

// wantsLeader reports whether s, or a selector it wraps, uses the leader.
func wantsLeader(s Selector) bool {
	la, ok := s.(leaderAware)
	return ok && la.usesLeader()
}

// observeInner passes an outcome on to a wrapped selector.
func observeInner(s Selector, o Outcome) {
	if ob, ok := s.(Observer); ok {
		ob.Observe(o)
	}
}

// DefaultRebalanceEvery is the re-pin period of the default policy (a nil
// Config.Selector with EndpointSelectionRandom): Sticky(RebalanceEvery(
// DefaultRebalanceEvery)), so that clients that piled onto the survivors
// of an outage spread out again.
const DefaultRebalanceEvery = 2 * time.Minute

// selectorFor maps the original client's selection modes onto policies.
func selectorFor(mode EndpointSelectionMode) Selector {
	if mode == EndpointSelectionPrioritizeLeader {
		return PreferLeader(Sticky(RebalanceEvery(DefaultRebalanceEvery)))
	}
	return Sticky(RebalanceEvery(DefaultRebalanceEvery))
}

// randIntN is the selectors' default source of randomness: the runtime's
// per-thread generator, safe for concurrent use and allocation-free.
// Tests replace it per selector.
func randIntN(n int) int { return rand.IntN(n) }

// twoChoices draws two distinct indexes below n (n ≥ 2) uniformly.
// pickOfTwo is the power of two choices: it draws two distinct
// candidates and returns the one with the lower cost, ties going to the
// first drawn. Watches are compared by open watches whatever the cost,
// since a long poll's latency says nothing about the endpoint.
func pickOfTwo(intn func(int) int, info RequestInfo, candidates []Endpoint, cost func(*Endpoint) float64) int {
	if len(candidates) < 2 {
		return 0
	}
	i, j := twoChoices(intn, len(candidates))
	a, b := &candidates[i], &candidates[j]
	if info.Kind == KindWatch {
		if b.Watches < a.Watches {
			return j
		}
		return i
	}
	if cost(b) < cost(a) {
		return j
	}
	return i
}

func twoChoices(intn func(int) int, n int) (int, int) {
	i := intn(n)
	j := intn(n - 1)
	if j >= i {
		j++
	}
	return i, j
}
