package client

// LeastInFlight returns a policy that draws two distinct candidates at
// random and takes the one with fewer attempts in flight (for watches,
// fewer open watches), ties going to the first drawn: the power of two
// choices over outstanding requests. It needs no latency data and
// balances well when many requests run at once.
func LeastInFlight() Selector { return &leastInFlight{intn: randIntN} }

type leastInFlight struct{ intn func(int) int }

func (l *leastInFlight) Select(info RequestInfo, candidates []Endpoint) int {
	return pickOfTwo(l.intn, info, candidates, inFlightCost)
}

func inFlightCost(e *Endpoint) float64 { return float64(e.InFlight) }
