package retry

import "time"

// Backoff is the pause between passes over the endpoints: full jitter
// over a ceiling that doubles each round from Base up to Max.
//
//	round  ceiling (Base 50 ms, Max 1 s)
//	1      50 ms
//	2      100 ms
//	3      200 ms
//	6      1 s
type Backoff struct {
	Base, Max time.Duration
}

// Ceiling returns the longest pause before round (≥ 1): min(Max,
// Base × 2^(round-1)).
func (b Backoff) Ceiling(round int) time.Duration {
	ceil := b.Base
	for i := 1; i < round && ceil < b.Max; i++ {
		ceil *= 2
	}
	return min(ceil, b.Max)
}

// Pause returns the jittered pause before round: rnd(n) must be uniform in
// [0, n).
func (b Backoff) Pause(round int, rnd func(int64) int64) time.Duration {
	return time.Duration(rnd(int64(b.Ceiling(round))))
}
