package health

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Bounds of the adaptive timeout; the root package exports them as
// MinAdaptiveHeaderTimeout and DefaultHeaderTimeoutPerRequest.
const (
	// MinTimeout is the least adaptive timeout.
	MinTimeout = 250 * time.Millisecond
	// MaxTimeout is the largest adaptive timeout, and the timeout while
	// there is not enough data.
	MaxTimeout = 2 * time.Second
)

const (
	// minSamples is how many samples the adaptive timeout needs.
	minSamples = 100
	// Every is how often, in samples, the p99 is recomputed; the
	// histogram is halved each time, so it reflects the last ~2×Every
	// answers.
	Every    = 256
	nBuckets = 64
)

// AdaptiveTimeout is a lock-free histogram of header latencies in
// half-octave buckets from 1 µs, from which the adaptive per-attempt
// timeout is derived: clamp(3 × p99, MinTimeout, MaxTimeout). Its zero
// value is ready; it is safe for concurrent use.
type AdaptiveTimeout struct {
	buckets [nBuckets]atomic.Uint32
	count   atomic.Uint32
	timeout atomic.Int64 // nanoseconds; 0 until there is enough data
}

// bucket maps a latency to its bucket: two buckets per power of two of
// microseconds.
func bucket(d time.Duration) int {
	x := uint64(d) >> 10
	if x == 0 {
		return 0
	}
	b := bits.Len64(x) // x in [2^(b-1), 2^b)
	half := 0
	if b >= 2 && x&(1<<(b-2)) != 0 {
		half = 1
	}
	return min(2*b-1+half, nBuckets-1)
}

// upper is the largest latency of bucket i (an upper bound).
func upper(i int) time.Duration {
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

// Add records the header latency of one answer.
func (h *AdaptiveTimeout) Add(d time.Duration) {
	h.buckets[bucket(d)].Add(1)
	if h.count.Add(1)%Every == 0 {
		h.recompute()
	}
}

func (h *AdaptiveTimeout) recompute() {
	var total uint64
	var counts [nBuckets]uint32
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		total += uint64(counts[i])
	}
	if total < minSamples {
		return
	}
	rank := total - total/100 // the p99 sample, counted from the bottom
	var seen uint64
	p99 := upper(nBuckets - 1)
	for i, n := range counts {
		seen += uint64(n)
		if seen >= rank {
			p99 = upper(i)
			break
		}
	}
	h.timeout.Store(int64(min(max(3*p99, MinTimeout), MaxTimeout)))
	for i := range h.buckets {
		h.buckets[i].Store(counts[i] / 2) // forget old samples; races are harmless
	}
}

// Current returns the adaptive timeout, or MaxTimeout while there is not
// enough data.
func (h *AdaptiveTimeout) Current() time.Duration {
	if t := h.timeout.Load(); t > 0 {
		return time.Duration(t)
	}
	return MaxTimeout
}

// Set makes the timeout d, as if learnt; for tests.
func (h *AdaptiveTimeout) Set(d time.Duration) { h.timeout.Store(int64(d)) }
