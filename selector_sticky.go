package client

import (
	"sync/atomic"
	"time"

	"github.com/etcdv2/client/internal/clock"
)

// StickyOption configures Sticky.
type StickyOption func(*sticky)

// RebalanceEvery makes Sticky re-pin to a candidate chosen at random every
// d (± 25% jitter), so that after an outage, which leaves every client
// pinned to a survivor, clients spread over the members again. Zero or a
// negative d means never (the original client's behaviour).
func RebalanceEvery(d time.Duration) StickyOption {
	return func(s *sticky) { s.every = d }
}

// Sticky returns the selection policy of the original client's default
// mode: every request goes to one pinned endpoint while it is a candidate
// and answers. When an attempt at the pin fails, or the pin is ejected,
// requests go to the next candidate after it in the (shuffled) list, which
// becomes the pin once it answers. Only a failure of the current pin moves
// it, so concurrent failures rotate it once. Pinning keeps one connection
// per client and spreads many clients over the members at random.
func Sticky(opts ...StickyOption) Selector {
	s := &sticky{intn: randIntN, now: clock.Real{}.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// rebalanceSample is one over the share of picks that check the time.
const rebalanceSample = 16

type sticky struct {
	pin   atomic.Pointer[pinState]
	every time.Duration
	intn  func(int) int
	now   func() int64
}

type pinState struct {
	url   string
	index int
	// failed is set when an attempt at the pin failed: requests then start
	// at the next endpoint until one answers and becomes the pin.
	failed bool
	// until is when the pin is due for a rebalance (with RebalanceEvery).
	until int64
}

// nextRebalance returns the jittered time of the next re-pin after now.
func (s *sticky) nextRebalance(now int64) int64 {
	if s.every <= 0 {
		return 0
	}
	quarter := int64(s.every) / 4
	return now + int64(s.every) - quarter + int64(s.intn(int(2*quarter+1)))
}

func (s *sticky) Select(info RequestInfo, candidates []Endpoint) int {
	p := s.pin.Load()
	if p == nil {
		return 0
	}
	// The rebalance check reads the clock, so it is made on one first
	// attempt in rebalanceSample: at a period of minutes the delay that
	// adds is nothing, and the pick stays cheap.
	if s.every > 0 && info.Attempt == 0 && !p.failed && s.intn(rebalanceSample) == 0 {
		if now := s.now(); now >= p.until {
			i := s.intn(len(candidates))
			e := candidates[i]
			s.pin.CompareAndSwap(p, &pinState{url: e.URL, index: e.Index, until: s.nextRebalance(now)})
			return i
		}
	}
	// Stay on the pin; otherwise take the first candidate after it in
	// list order, wrapping around, so that failover rotates through the
	// list instead of piling onto its first entry.
	best, bestDist := 0, -1
	for i := range candidates {
		if candidates[i].URL == p.url && !p.failed {
			return i
		}
		d := candidates[i].Index - p.index
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
		if p != nil && !p.failed && p.url == o.Endpoint.URL {
			s.pin.CompareAndSwap(p, &pinState{url: p.url, index: p.index, failed: true})
		}
		return
	}
	if p != nil && !p.failed && p.url == o.Endpoint.URL {
		return
	}
	var until int64
	if s.every > 0 {
		until = s.nextRebalance(s.now())
	}
	s.pin.Store(&pinState{url: o.Endpoint.URL, index: o.Endpoint.Index, until: until})
}
