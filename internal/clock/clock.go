// Package clock is the time source of the client's health machinery, retry
// budget, backoff and time-aware selectors, injected so that tests control
// time. Per-attempt timeouts use real timers and are not on it.
package clock

import "time"

// Clock reads time and makes timers. Implementations are safe for
// concurrent use; neither method blocks.
type Clock interface {
	// Now returns monotonic nanoseconds since an arbitrary origin.
	Now() int64
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the client uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// Real reads the monotonic clock of the process.
type Real struct{}

// processStart is the origin of Real.Now.
var processStart = time.Now()

// Now implements Clock.
func (Real) Now() int64 { return int64(time.Since(processStart)) }

// NewTimer implements Clock.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
