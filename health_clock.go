package client

import "time"

// clock is the time source of the health machinery, the retry budget, the
// backoff between rounds and the selectors that need time. It is injected
// so that tests control time; the per-attempt timeout uses real timers.
type clock interface {
	// now returns monotonic nanoseconds since an arbitrary origin.
	now() int64
	// newTimer returns a timer that fires once after d.
	newTimer(d time.Duration) timer
}

// timer is the part of *time.Timer the client uses.
type timer interface {
	C() <-chan time.Time
	Stop() bool
}

// realClock reads the monotonic clock of the process.
type realClock struct{}

// processStart is the origin of realClock.now.
var processStart = time.Now()

func (realClock) now() int64 { return int64(time.Since(processStart)) }

func (realClock) newTimer(d time.Duration) timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
