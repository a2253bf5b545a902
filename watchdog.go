package client

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcdv2/client/internal/clock"
)

// watchdogTick is how often the watchdog looks at the plain reads in
// flight while there are any: a liveness check or a body's idle timeout
// is acted on up to about two of these late (a read's times count from
// the first look after it began or its data came), never early. It is
// small against the least liveness check (half of
// MinAdaptiveHeaderTimeout) and the body's idle timeout (at least
// DefaultHeaderTimeoutPerRequest).
const watchdogTick = 10 * time.Millisecond

// watchdog holds a client's plain reads in flight (attempts with their
// checks set) and runs their liveness checks and their bodies' idle
// timeouts (attemptState.watchDue), looking at them every watchdogTick
// while there are any, on one timer, in place of a timer of each read's
// own (see docs/selection-design.md). With no plain read in flight it does
// not wake.
type watchdog struct {
	// tick is how often it looks; zero means watchdogTick.
	tick time.Duration
	set  inflightSet
	// armed is set while the timer is set or a look runs, so that add
	// need not arm it; add reads it without mu, which orders its writes.
	armed atomic.Bool
	mu    sync.Mutex
	// lookEnded is signalled when a look ends (stop waits for it).
	lookEnded sync.Cond
	timer     *time.Timer
	looking   bool
	stopped   bool
	// due is the scratch space of a look.
	due []*attemptState
	// looks counts the looks, and afterScan, when set, runs in each look
	// after it went through the set (given whether it found any
	// attempt): for tests.
	looks     atomic.Int64
	afterScan func(found bool)
}

func (w *watchdog) interval() time.Duration {
	if w.tick > 0 {
		return w.tick
	}
	return watchdogTick
}

// add puts st in the watchdog's care, and arms it if it is not.
func (w *watchdog) add(st *attemptState) {
	w.set.add(st)
	if !w.armed.Load() {
		w.arm()
	}
}

func (w *watchdog) arm() {
	w.mu.Lock()
	if !w.armed.Load() && !w.stopped {
		w.armed.Store(true)
		if w.timer == nil {
			w.timer = time.AfterFunc(w.interval(), w.look)
		} else {
			w.timer.Reset(w.interval())
		}
	}
	w.mu.Unlock()
}

// look runs when the timer fires: it acts on the plain reads that are
// due, then sets the timer again while any needs looking at. An attempt added
// while it disarms finds it disarmed and arms it (add reads armed after
// putting the attempt in the set; look clears armed before it looks at
// the set a last time).
func (w *watchdog) look() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.looking = true
	w.mu.Unlock()
	w.looks.Add(1)

	now := monoNow()
	found := false
	due := w.due[:0]
	w.set.each(func(st *attemptState) bool {
		if st.watched() {
			found = true
			if st.watchDue(now) {
				due = append(due, st)
			}
		}
		return true
	})
	if w.afterScan != nil {
		w.afterScan(found)
	}
	for i, st := range due {
		st.watchFire()
		due[i] = nil
	}
	w.due = due[:0]

	w.mu.Lock()
	w.looking = false
	w.lookEnded.Broadcast()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	if found {
		w.timer.Reset(w.interval())
		w.mu.Unlock()
		return
	}
	w.armed.Store(false)
	w.mu.Unlock()
	if w.anyWatched() {
		w.arm()
	}
}

// anyWatched reports whether an attempt in the set needs looking at (an
// attempt whose body was read, but not yet closed, does not).
func (w *watchdog) anyWatched() bool {
	found := false
	w.set.each(func(st *attemptState) bool {
		found = st.watched()
		return !found
	})
	return found
}

// stop stops the watchdog for good, and waits for a look that runs.
func (w *watchdog) stop() {
	w.mu.Lock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.lookEnded.L = &w.mu
	for w.looking {
		w.lookEnded.Wait()
	}
	w.mu.Unlock()
}

// monoNow is the monotonic clock in nanoseconds, for the watchdog (the
// timers of attempts are real ones, whatever the client's clock).
func monoNow() int64 { return clock.Real{}.Now() }
