package client

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// benchAttempt is the selection work of one attempt in do, without the
// HTTP exchange: scratch buffer, candidates, Select, the retry-budget
// deposit, the attempt timeout, in-flight bookkeeping, and the outcome fed
// to the health machinery, the latency average and the selector.
func benchAttempt(c *httpClusterClient, set *endpointSet, r *request) {
	buf := c.getBuf(len(set.list))
	c.nRequests.Add(1)
	c.budget.Deposit()
	now := c.clk.Now()
	cands := c.candidates(set, buf.tried, r.kind, buf.cands[:0], now)
	info := RequestInfo{Kind: r.kind}
	pick := c.selector.Select(info, cands)
	if pick < 0 || pick >= len(cands) {
		pick = 0
	}
	ep := set.list[cands[pick].Index]
	buf.tried[ep.view.Index] = true
	_ = c.attemptTimeout(context.Background(), r, true)
	ep.st.Begin(false)
	end := c.clk.Now() // send's one clock reading
	ep.st.End(false)
	c.recordOutcome(ep, info, nil, time.Duration(end-now)+time.Millisecond, end, false)
	c.putBuf(buf)
}

func benchClient(b *testing.B, sel Selector) *httpClusterClient {
	eps := make([]string, 5)
	for i := range eps {
		eps[i] = fmt.Sprintf("http://10.0.0.%d:2379", i+1)
	}
	cl, err := New(Config{Endpoints: eps, Selector: sel})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cl.Close() })
	return cl.(*httpClusterClient)
}

var benchPolicies = []struct {
	name string
	sel  func() Selector
}{
	{"Sticky", func() Selector { return selectorFor(EndpointSelectionRandom) }},
	{"Random", Random},
	{"RoundRobin", RoundRobin},
	{"PreferLeader", func() Selector { return PreferLeader(nil) }},
	{"LeastLatency", LeastLatency},
	{"LeastInFlight", LeastInFlight},
	{"AvoidStale", func() Selector { return AvoidStale(LeastLatency(), 100) }},
}

// BenchmarkSelection measures the selection overhead per attempt with 5
// endpoints (target: ≤ 200 ns, 0 allocations).
func BenchmarkSelection(b *testing.B) {
	r := &request{method: http.MethodGet, path: "/v2/keys/k", kind: KindRead, replayable: true}
	for _, p := range benchPolicies {
		b.Run(p.name, func(b *testing.B) {
			c := benchClient(b, p.sel())
			set := c.eps.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				benchAttempt(c, set, r)
			}
		})
		b.Run(p.name+"/parallel", func(b *testing.B) {
			c := benchClient(b, p.sel())
			set := c.eps.Load()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchAttempt(c, set, r)
				}
			})
		})
	}
}

// TestSelectionDoesNotAllocate guards the zero-allocation goal of the
// selection path.
func TestSelectionDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	r := &request{method: http.MethodGet, path: "/v2/keys/k", kind: KindRead, replayable: true}
	for _, p := range benchPolicies {
		cl, err := New(Config{Endpoints: []string{"http://a:1", "http://b:1", "http://c:1", "http://d:1", "http://e:1"}, Selector: p.sel()})
		if err != nil {
			t.Fatal(err)
		}
		c := cl.(*httpClusterClient)
		set := c.eps.Load()
		benchAttempt(c, set, r) // warm the pools
		if n := testing.AllocsPerRun(200, func() { benchAttempt(c, set, r) }); n != 0 {
			t.Errorf("%s: %.1f allocations per attempt, want 0", p.name, n)
		}
		cl.Close()
	}
}
