package client

// LeastInFlight returns a policy that draws two distinct candidates at
// random and takes the one with fewer attempts in flight (for watches,
// fewer open watches), ties going to the first drawn: the power of two
// choices over outstanding requests. It needs no latency data and
// balances well when many requests run at once.
func LeastInFlight() Selector { return &leastInFlight{intn: randIntN} }

type leastInFlight struct{ intn func(int) int }

func (l *leastInFlight) Select(info RequestInfo, candidates []Endpoint) int {
	if len(candidates) < 2 {
		return 0
	}
	i, j := twoChoices(l.intn, len(candidates))
	a, b := &candidates[i], &candidates[j]
	if info.Kind == KindWatch {
		if b.Watches < a.Watches {
			return j
		}
		return i
	}
	if b.InFlight < a.InFlight {
		return j
	}
	return i
}
