package client

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/health"
)

func fiveEndpoints() []Endpoint {
	eps := make([]Endpoint, 5)
	for i := range eps {
		eps[i] = Endpoint{URL: fmt.Sprintf("http://e%d:2379", i), Index: i, HasLeader: true}
	}
	return eps
}

func spread(s Selector, info RequestInfo, cands []Endpoint, n int) []int {
	counts := make([]int, len(cands))
	for i := 0; i < n; i++ {
		counts[s.Select(info, cands)]++
	}
	return counts
}

func TestRoundRobinSpreadExact(t *testing.T) {
	eps := fiveEndpoints()
	counts := spread(RoundRobin(), RequestInfo{}, eps, 10000)
	for i, n := range counts {
		if n < 1980 || n > 2020 { // ±1% of 2000
			t.Errorf("endpoint %d got %d picks, want 2000±20", i, n)
		}
	}
}

func TestRandomSpread(t *testing.T) {
	s := Random().(*random)
	s.intn = detIntN(7)
	counts := spread(s, RequestInfo{}, fiveEndpoints(), 10000)
	// χ² with 4 degrees of freedom; 13.28 is the 1% critical value.
	chi := 0.0
	for _, n := range counts {
		d := float64(n) - 2000
		chi += d * d / 2000
	}
	if chi > 13.28 {
		t.Errorf("counts %v: χ² = %.2f > 13.28", counts, chi)
	}
}

func maxMinRatio(counts []int) float64 {
	lo, hi := counts[0], counts[0]
	for _, n := range counts {
		lo, hi = min(lo, n), max(hi, n)
	}
	return float64(hi) / float64(lo)
}

func TestP2CBalancedOnEqualEndpoints(t *testing.T) {
	ll := LeastLatency().(*leastLatency)
	ll.intn = detIntN(3)
	lf := LeastInFlight().(*leastInFlight)
	lf.intn = detIntN(4)
	for name, s := range map[string]Selector{"LeastLatency": ll, "LeastInFlight": lf} {
		eps := fiveEndpoints()
		for i := range eps {
			eps[i].Latency = time.Millisecond
		}
		counts := spread(s, RequestInfo{}, eps, 10000)
		if r := maxMinRatio(counts); r > 1.2 {
			t.Errorf("%s: counts %v, max/min %.3f > 1.2", name, counts, r)
		}
		// With in-flight load that follows the picks (each pick holds a
		// request until 4 later picks), the spread gets tighter still.
		load := make([]int, 5)
		var ring [4]int
		counts = make([]int, 5)
		for i := 0; i < 10000; i++ {
			for j := range eps {
				eps[j].InFlight = load[j]
			}
			k := s.Select(RequestInfo{}, eps)
			counts[k]++
			if i >= len(ring) {
				load[ring[i%len(ring)]]--
			}
			ring[i%len(ring)] = k
			load[k]++
		}
		if r := maxMinRatio(counts); r > 1.2 {
			t.Errorf("%s under load: counts %v, max/min %.3f > 1.2", name, counts, r)
		}
	}
}

func TestLeastLatencyAvoidsSlowAndFailing(t *testing.T) {
	s := LeastLatency().(*leastLatency)
	s.intn = detIntN(5)
	eps := fiveEndpoints()
	for i := range eps {
		eps[i].Latency = time.Millisecond
	}
	eps[2].Latency = 100 * time.Millisecond
	eps[4].Latency = health.FailurePenalty // it failed
	counts := spread(s, RequestInfo{}, eps, 10000)
	// The failing one is never picked; the slow one only when drawn with
	// the failing one (1 pair in 10).
	if counts[4] != 0 || counts[2] > 1100 {
		t.Errorf("slow or failing endpoints picked: %v", counts)
	}
	// An endpoint with no sample is tried while idle, not once busy.
	eps[3].Latency = 0
	if c := spread(s, RequestInfo{}, eps, 1000); c[3] == 0 {
		t.Errorf("new endpoint never tried: %v", c)
	}
	eps[3].InFlight = 1
	if c := spread(s, RequestInfo{}, eps, 1000); c[3] != 0 {
		t.Errorf("new endpoint with a request in flight picked: %v", c)
	}
	// Watches are placed by open watches, not latency.
	eps[2].Watches, eps[0].Watches, eps[1].Watches, eps[3].Watches, eps[4].Watches = 0, 5, 5, 5, 5
	if c := spread(s, RequestInfo{Kind: KindWatch}, eps, 1000); c[2] < 300 {
		t.Errorf("watch placement ignores open watches: %v", c)
	}
}

func TestLeastInFlightPrefersIdle(t *testing.T) {
	s := LeastInFlight().(*leastInFlight)
	s.intn = detIntN(6)
	eps := fiveEndpoints()
	for i := range eps {
		eps[i].InFlight = 10
	}
	eps[1].InFlight = 0
	c := spread(s, RequestInfo{}, eps, 1000)
	// Endpoint 1 wins whenever drawn: 2 of 5 draws.
	if c[1] < 350 {
		t.Errorf("idle endpoint picked %d/1000 times, want about 400", c[1])
	}
}

func TestStickyPinFailoverAndRebalance(t *testing.T) {
	now := int64(0)
	s := Sticky().(*sticky)
	s.now = func() int64 { return now }
	s.intn = detIntN(8)
	eps := fiveEndpoints()
	if got := s.Select(RequestInfo{}, eps); got != 0 {
		t.Fatalf("first pick %d, want 0 (the head of the shuffled list)", got)
	}
	s.Observe(Outcome{Endpoint: eps[3]})
	for i := 0; i < 100; i++ {
		if got := s.Select(RequestInfo{}, eps); got != 3 {
			t.Fatalf("pick %d, want the pin 3", got)
		}
	}
	// The pin fails: requests move to the next endpoint, and only once
	// for concurrent failures.
	s.Observe(Outcome{Endpoint: eps[3], Err: errors.New("boom")})
	s.Observe(Outcome{Endpoint: eps[3], Err: errors.New("boom")})
	if got := s.Select(RequestInfo{}, eps); got != 4 {
		t.Fatalf("after failure pick %d, want 4", got)
	}
	s.Observe(Outcome{Endpoint: eps[4], Err: errors.New("other request failed at 4")})
	if got := s.Select(RequestInfo{}, eps); got != 4 {
		t.Fatalf("a failure off the pin moved requests: pick %d", got)
	}
	// The pin is ejected (not among the candidates): the next one after
	// it, wrapping around.
	s.Observe(Outcome{Endpoint: eps[4]})
	if got := s.Select(RequestInfo{}, eps[:4]); got != 0 {
		t.Fatalf("pin missing: pick %d, want 0 (wrapped)", got)
	}
	// Without RebalanceEvery the pin never moves by itself.
	now += int64(time.Hour)
	if got := s.Select(RequestInfo{}, eps); got != 4 {
		t.Fatalf("pin moved without rebalance: %d", got)
	}

	r := Sticky(RebalanceEvery(time.Minute)).(*sticky)
	r.now = func() int64 { return now }
	r.intn = detIntN(9)
	r.Observe(Outcome{Endpoint: eps[1]})
	if got := r.Select(RequestInfo{}, eps); got != 1 {
		t.Fatalf("pick %d, want the pin 1", got)
	}
	moved := map[int]bool{}
	for i := 0; i < 50; i++ {
		now += int64(76 * time.Second) // beyond 60 s + 25% jitter
		first := r.Select(RequestInfo{}, eps)
		for j := 0; j < 20*rebalanceSample; j++ { // the check is sampled
			if k := r.Select(RequestInfo{}, eps); k != first {
				first = k
				break
			}
		}
		moved[first] = true
	}
	if len(moved) < 4 {
		t.Errorf("rebalance visited %d endpoints in 50 periods, want ≥ 4", len(moved))
	}
}

func TestPreferLeader(t *testing.T) {
	fb := SelectorFunc(func(_ RequestInfo, c []Endpoint) int { return len(c) - 1 })
	s := PreferLeader(fb)
	eps := fiveEndpoints()
	eps[2].Leader = true
	if got := s.Select(RequestInfo{Kind: KindWrite}, eps); got != 2 {
		t.Errorf("pick %d, want the leader 2", got)
	}
	eps[2].HasLeader = false // it lost its leadership
	if got := s.Select(RequestInfo{Kind: KindWrite}, eps); got != 4 {
		t.Errorf("pick %d, want the fallback's 4", got)
	}
	if !wantsLeader(s) || !wantsLeader(AvoidStale(s, 10)) || wantsLeader(Sticky()) {
		t.Error("leader awareness not reported through wrappers")
	}
}

func TestAvoidStale(t *testing.T) {
	first := SelectorFunc(func(RequestInfo, []Endpoint) int { return 0 })
	s := AvoidStale(first, 100)
	eps := fiveEndpoints()
	eps[0].IndexLag = 5000
	eps[1].IndexLag = 101
	if got := s.Select(RequestInfo{Kind: KindRead}, eps); got != 2 {
		t.Errorf("plain read: pick %d, want 2 (first fresh)", got)
	}
	if got := s.Select(RequestInfo{Kind: KindQuorumRead}, eps); got != 0 {
		t.Errorf("quorum read: pick %d, want 0 (lag ignored)", got)
	}
	for i := range eps {
		eps[i].IndexLag = 1000
	}
	if got := s.Select(RequestInfo{Kind: KindRead}, eps); got != 0 {
		t.Errorf("all stale: pick %d, want 0 (all offered)", got)
	}
}

func TestSelectorModesMap(t *testing.T) {
	if _, ok := selectorFor(EndpointSelectionRandom).(*sticky); !ok {
		t.Error("EndpointSelectionRandom is not Sticky")
	}
	p, ok := selectorFor(EndpointSelectionPrioritizeLeader).(*preferLeader)
	if !ok {
		t.Fatal("EndpointSelectionPrioritizeLeader is not PreferLeader")
	}
	if st, ok := p.fallback.(*sticky); !ok || st.every != DefaultRebalanceEvery {
		t.Error("PreferLeader's fallback is not the default Sticky")
	}
}
