package clock

import (
	"sync"
	"time"
)

// Fake is a manual clock for tests: time moves only on Advance.
type Fake struct {
	mu     sync.Mutex
	t      int64
	timers []*fakeTimer
	added  chan struct{} // one value per timer created
}

// NewFake returns a Fake clock at an arbitrary time far from zero.
func NewFake() *Fake { return &Fake{t: 1e12, added: make(chan struct{}, 1024)} }

// Now implements Clock.
func (f *Fake) Now() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

// NewTimer implements Clock. A timer of d ≤ 0 has fired already.
func (f *Fake) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: f.t + int64(d), clk: f}
	if d <= 0 {
		t.fired = true
		t.c <- time.Time{}
	} else {
		f.timers = append(f.timers, t)
	}
	f.mu.Unlock()
	select {
	case f.added <- struct{}{}:
	default:
	}
	return t
}

// Advance moves time forward and fires the timers that are due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t += int64(d)
	keep := f.timers[:0]
	for _, t := range f.timers {
		if t.stopped || t.fired {
			continue
		}
		if t.at <= f.t {
			t.fired = true
			t.c <- time.Time{}
			continue
		}
		keep = append(keep, t)
	}
	f.timers = keep
}

// Added receives one value per timer created (up to a buffer of 1024), so
// that a test can wait for code under test to arm a timer.
func (f *Fake) Added() <-chan struct{} { return f.added }

type fakeTimer struct {
	c              chan time.Time
	at             int64
	fired, stopped bool
	clk            *Fake
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := !t.fired && !t.stopped
	t.stopped = true
	return was
}
