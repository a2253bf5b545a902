package client

import "time"

// LeastLatency returns a policy for latency-sensitive clients: the power
// of two choices over Latency × (InFlight + 1). Each attempt draws two
// distinct candidates at random and takes the cheaper, which avoids slow
// and busy endpoints without the herding of always taking the global
// minimum from a stale view. Failed attempts count as slow (see
// Endpoint.Latency); an endpoint with no sample yet costs nothing while
// idle and a large penalty once it has a request in flight, so it gets one
// request to measure. Watches are chosen the same way by their number of
// open watches, since a long poll's duration says nothing of the endpoint.
func LeastLatency() Selector { return &leastLatency{intn: randIntN} }

type leastLatency struct{ intn func(int) int }

// unknownLatencyPenalty is the cost of an endpoint with no latency sample
// that already has requests in flight.
const unknownLatencyPenalty = float64(time.Minute)

func latencyCost(e *Endpoint) float64 {
	if e.Latency == 0 {
		if e.InFlight > 0 {
			return unknownLatencyPenalty * float64(e.InFlight)
		}
		return 0
	}
	return float64(e.Latency) * float64(e.InFlight+1)
}

func (l *leastLatency) Select(info RequestInfo, candidates []Endpoint) int {
	return pickOfTwo(l.intn, info, candidates, latencyCost)
}
