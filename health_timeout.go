package client

import (
	"context"
	"math/bits"
	"sync/atomic"
	"time"
)

// Bounds of the adaptive per-attempt timeout.
const (
	// MinAdaptiveHeaderTimeout is the least per-attempt timeout the
	// adaptive default (Config.HeaderTimeoutPerRequest zero) chooses.
	MinAdaptiveHeaderTimeout = 250 * time.Millisecond
	// adaptiveMinSamples is how many samples the adaptive timeout needs.
	adaptiveMinSamples = 100
	// adaptiveEvery is how often, in samples, the p99 is recomputed; the
	// histogram is halved each time, so it reflects the last ~2×adaptiveEvery
	// answers.
	adaptiveEvery = 256
	histBuckets   = 64
)

// latencyHist is a lock-free histogram of header latencies in half-octave
// buckets from 1 µs, from which the adaptive per-attempt timeout is
// derived: clamp(3 × p99, MinAdaptiveHeaderTimeout,
// DefaultHeaderTimeoutPerRequest).
type latencyHist struct {
	buckets [histBuckets]atomic.Uint32
	count   atomic.Uint32
	timeout atomic.Int64 // nanoseconds; 0 until there is enough data
}

// histBucket maps a latency to its bucket: two buckets per power of two
// of microseconds.
func histBucket(d time.Duration) int {
	x := uint64(d) >> 10
	if x == 0 {
		return 0
	}
	b := bits.Len64(x) // x in [2^(b-1), 2^b)
	half := 0
	if b >= 2 && x&(1<<(b-2)) != 0 {
		half = 1
	}
	return min(2*b-1+half, histBuckets-1)
}

// histUpper is the largest latency of bucket i (an upper bound).
func histUpper(i int) time.Duration {
	if i == 0 {
		return 1 << 10
	}
	b := (i + 1) / 2
	if (i+1)%2 == 1 { // upper half of [2^(b-1), 2^b)
		return time.Duration(uint64(1)<<b) << 10
	}
	if b < 2 {
		return 2 << 10
	}
	return time.Duration(uint64(1)<<(b-1)+uint64(1)<<(b-2)) << 10
}

func (h *latencyHist) add(d time.Duration) {
	h.buckets[histBucket(d)].Add(1)
	if h.count.Add(1)%adaptiveEvery == 0 {
		h.recompute()
	}
}

func (h *latencyHist) recompute() {
	var total uint64
	var counts [histBuckets]uint32
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		total += uint64(counts[i])
	}
	if total < adaptiveMinSamples {
		return
	}
	rank := total - total/100 // the p99 sample, counted from the bottom
	var seen uint64
	p99 := histUpper(histBuckets - 1)
	for i, n := range counts {
		seen += uint64(n)
		if seen >= rank {
			p99 = histUpper(i)
			break
		}
	}
	h.timeout.Store(int64(min(max(3*p99, MinAdaptiveHeaderTimeout), DefaultHeaderTimeoutPerRequest)))
	for i := range h.buckets {
		h.buckets[i].Store(counts[i] / 2) // forget old samples; races are harmless
	}
}

// current returns the adaptive timeout, or DefaultHeaderTimeoutPerRequest
// while there is not enough data.
func (h *latencyHist) current() time.Duration {
	if t := h.timeout.Load(); t > 0 {
		return time.Duration(t)
	}
	return DefaultHeaderTimeoutPerRequest
}

// attemptTimeout is the per-attempt timeout of one attempt of r: the
// configured one, or the adaptive one for a replayable request when none
// is configured (a request that cannot be resent gets the fixed
// DefaultWriteHeaderTimeout, since its timeout is an unknown outcome and
// not a failover). Unless timeouts are off, while other endpoints remain
// untried it is at most half of the time left before ctx's deadline, so
// failover always gets a turn. Zero means no timeout.
func (c *httpClusterClient) attemptTimeout(ctx context.Context, r *request, more bool) time.Duration {
	t, _ := c.attemptTimeoutCapped(ctx, r, more)
	return t
}

// attemptTimeoutCapped is attemptTimeout, and reports whether the caller's
// deadline cut it short: a timeout of such an attempt says little about
// the endpoint, and does not count toward ejecting it.
func (c *httpClusterClient) attemptTimeoutCapped(ctx context.Context, r *request, more bool) (time.Duration, bool) {
	t := c.headerTimeout
	switch {
	case t < 0:
		return 0, false // no per-attempt timeout, as configured
	case t == 0 && r.replayable && throughRaft(r.kind):
		// Raft holds it while the cluster has no leader, and a proposal
		// a follower gets then is dropped: give up on it after about an
		// election's time, so that the retry comes after the election
		// (a hung member is found out sooner, by the liveness check).
		t = c.raftPatience
	case t == 0 && r.replayable:
		t = c.hist.current()
	case t == 0:
		// A write that cannot be resent: a timeout would only make its
		// outcome unknown, so it waits as long as the server itself may,
		// and a liveness check tells a hung member from a busy one (see
		// attemptWithin).
		t = DefaultWriteHeaderTimeout
	}
	if more {
		if dl, ok := ctx.Deadline(); ok {
			half := time.Until(dl) / 2
			if half < time.Millisecond {
				half = time.Millisecond
			}
			if half < t {
				return half, true
			}
		}
	}
	return t, false
}

// throughRaft reports whether requests of kind k are answered only after a
// round of consensus, so that a healthy member may hold them for as long
// as a leader election takes.
func throughRaft(k RequestKind) bool { return k == KindWrite || k == KindQuorumRead }

// raftPatience is how long a replayable write or quorum read waits for a
// member that is alive (its liveness check passed) before it is tried
// elsewhere: longer than etcd takes to notice a lost leader and elect a
// new one with its default timings (1 s election timeout), during which
// followers drop proposals.
const raftPatience = 3 * time.Second

// livenessCheck returns how long an attempt of r waits for its headers
// before the client checks that the endpoint still answers at all (0 for no
// check) and, for a check that repeats while the member answers, its
// period (every). Checks are made only when the timeout is the client's
// own (Config.HeaderTimeoutPerRequest zero):
//
//   - a request that goes through raft is checked once, after the adaptive
//     timeout: a member holds it while the cluster elects a leader or
//     commits slowly, which is no reason to give up on it, let alone eject
//     it;
//   - a plain read is checked at half its timeout, with the other half for
//     the check, and again every timeout while the member answers: a member
//     builds a large listing before it sends the headers, which can take
//     far longer than the adaptive timeout, and is then merely slow, not
//     hung. The attempt then has no timeout of its own (see attemptWith),
//     but the share of the caller's deadline (capped).
//
// A member that no longer answers /version either is hung.
func (c *httpClusterClient) livenessCheck(r *request, timeout time.Duration, capped bool) (after, every time.Duration) {
	if c.headerTimeout != 0 {
		return 0, 0
	}
	if r.kind == KindRead && timeout > 0 {
		if capped {
			return timeout / 2, 0
		}
		return timeout / 2, timeout
	}
	if !throughRaft(r.kind) {
		return 0, 0
	}
	check := c.hist.current()
	if timeout > 0 && check >= timeout {
		return 0, 0
	}
	return check, 0
}
