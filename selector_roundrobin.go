package client

import "sync/atomic"

// RoundRobin returns a policy that sends attempts to the candidates in
// turn, in the client's list order, through one counter shared by every
// request. While all endpoints are candidates the spread is exact.
func RoundRobin() Selector { return &roundRobin{} }

type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) Select(_ RequestInfo, candidates []Endpoint) int {
	return int((r.next.Add(1) - 1) % uint64(len(candidates)))
}
