package health

import (
	"sync"
	"sync/atomic"
	"time"
)

// State is what the tracker thinks of an endpoint. The root package
// exports the same values as client.HealthState.
type State uint8

const (
	// Healthy is an endpoint in use.
	Healthy State = iota
	// Probation is an endpoint readmitted after an ejection that has not
	// answered a request since: one failure ejects it again, for longer.
	Probation
	// Ejected is an endpoint left out of selection until a probe readmits
	// it.
	Ejected
)

// LagWindow is how long an endpoint's index sample is trusted.
const LagWindow = 10 * time.Second

// Endpoint is the live state of one endpoint, owned by a Tracker. It
// outlives the client's endpoint snapshots: the tracker hands out the
// same *Endpoint for a URL for as long as the URL stays in its list. The
// hot path reads and writes it with atomics only; mu serializes state
// transitions (ejection, readmission) and the down channel.
type Endpoint struct {
	// URL is the endpoint's normalized URL; it never changes.
	URL string

	state       atomic.Uint32 // State
	consecutive atomic.Int32  // soft failures in a row
	noLeader    atomic.Bool   // the endpoint last said it has no leader
	inFlight    atomic.Int32  // attempts waiting for headers (not watches)
	watches     atomic.Int32  // watches from pick to body close
	probing     atomic.Bool   // a readmission probe runs
	lat         PeakEWMA

	etcdIndex    atomic.Uint64 // last X-Etcd-Index
	indexLag     atomic.Uint64 // how far behind the client's highest index it was
	indexAt      atomic.Int64  // clock time of the sample
	ejectedUntil atomic.Int64  // clock time

	attempts, failures, ejections, probes, probeFailures atomic.Uint64

	mu           sync.Mutex
	ejectCount   int   // ejections in a row
	ejectedAt    int64 // clock time of the current ejection
	readmittedAt int64 // clock time of the last readmission, 0 if none
	ejectedTotal int64 // nanoseconds spent ejected, closed periods only
	down         chan struct{}
	removed      bool
}

// NewEndpoint returns the state of an endpoint that is in no tracker's
// list: it is healthy and never ejected.
func NewEndpoint(url string) *Endpoint {
	return &Endpoint{URL: url, down: make(chan struct{})}
}

// State returns the endpoint's health state.
func (e *Endpoint) State() State { return State(e.state.Load()) }

// EjectedUntil returns the clock time at which the current (or last)
// ejection ends.
func (e *Endpoint) EjectedUntil() int64 { return e.ejectedUntil.Load() }

// HasLeader reports whether the endpoint may have a leader: false once it
// said it had none, until a request through raft or a leader probe shows
// one.
func (e *Endpoint) HasLeader() bool { return !e.noLeader.Load() }

// MarkNoLeader records that the endpoint has no leader (or that raft
// holds its requests), so that requests that need one go elsewhere first.
func (e *Endpoint) MarkNoLeader() {
	if !e.noLeader.Load() {
		e.noLeader.Store(true)
	}
}

// InFlight returns the attempts waiting for their headers (watches not
// counted).
func (e *Endpoint) InFlight() int { return int(e.inFlight.Load()) }

// Watches returns the watches whose long poll is open.
func (e *Endpoint) Watches() int { return int(e.watches.Load()) }

// Latency returns the peak-EWMA of its header latencies at clock time now.
func (e *Endpoint) Latency(now int64) time.Duration { return e.lat.Value(now) }

// ConsecutiveFailures returns the soft failures in a row.
func (e *Endpoint) ConsecutiveFailures() int { return int(e.consecutive.Load()) }

// Begin counts an attempt that starts; a watch counts in Watches, anything
// else in InFlight.
func (e *Endpoint) Begin(watch bool) {
	e.attempts.Add(1)
	if watch {
		e.watches.Add(1)
	} else {
		e.inFlight.Add(1)
	}
}

// End counts the end of an attempt begun with the same watch: it has its
// headers or failed (for a watch: its long poll is closed).
func (e *Endpoint) End(watch bool) {
	if watch {
		e.watches.Add(-1)
	} else {
		e.inFlight.Add(-1)
	}
}

// NoteIndex records an X-Etcd-Index sample taken at clock time now; ref is
// the highest index the client had seen from any endpoint before it.
func (e *Endpoint) NoteIndex(idx, ref uint64, now int64) {
	var lag uint64
	if ref > idx {
		lag = ref - idx
	}
	e.etcdIndex.Store(idx)
	e.indexLag.Store(lag)
	e.indexAt.Store(now)
}

// AnswerMark returns a mark that changes with every answer with an index
// (NoteIndex, at a clock time other than the last one's): a mark other
// than one taken earlier shows that the member answered since, and so
// was running, whatever another of its requests is waiting for.
func (e *Endpoint) AnswerMark() int64 { return e.indexAt.Load() }

// Index returns the last index sample (0 if none) and, if it is at most
// LagWindow old at clock time now, how far behind it was (else 0).
func (e *Endpoint) Index(now int64) (idx, lag uint64) {
	idx = e.etcdIndex.Load()
	if idx != 0 && now-e.indexAt.Load() <= int64(LagWindow) {
		lag = e.indexLag.Load()
	}
	return idx, lag
}

// Counters are an endpoint's counters at one time.
type Counters struct {
	Attempts, Failures, Ejections, Probes, ProbeFailures uint64
	// TimeEjected is the total time spent ejected, the current ejection
	// included.
	TimeEjected time.Duration
	// EjectedFor is how long the current ejection still runs; 0 when the
	// endpoint is not ejected or is due.
	EjectedFor time.Duration
}

// Counters returns the endpoint's counters at clock time now.
func (e *Endpoint) Counters(now int64) Counters {
	c := Counters{
		Attempts:      e.attempts.Load(),
		Failures:      e.failures.Load(),
		Ejections:     e.ejections.Load(),
		Probes:        e.probes.Load(),
		ProbeFailures: e.probeFailures.Load(),
	}
	e.mu.Lock()
	total := e.ejectedTotal
	if e.State() == Ejected {
		total += now - e.ejectedAt
		if left := e.ejectedUntil.Load() - now; left > 0 {
			c.EjectedFor = time.Duration(left)
		}
	}
	e.mu.Unlock()
	c.TimeEjected = time.Duration(total)
	return c
}

// closedChan is returned by Down for endpoints that are already down.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Down returns a channel closed when the endpoint is ejected or removed
// from its tracker's list; it is already closed if the endpoint is either.
// Each ejection closes the channel returned before it.
func (e *Endpoint) Down() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed || e.State() == Ejected {
		return closedChan
	}
	return e.down
}

// remove marks the endpoint as gone from the list: its down channel
// closes.
func (e *Endpoint) remove() {
	e.mu.Lock()
	if !e.removed {
		e.removed = true
		if e.State() != Ejected {
			close(e.down)
		}
	}
	e.mu.Unlock()
}
