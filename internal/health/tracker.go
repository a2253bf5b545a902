package health

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcdv2/client/internal/clock"
)

// Class is how the outcome of one attempt counts for health. The client
// classifies its errors; the tracker only sees the class.
type Class uint8

const (
	Success  Class = iota // an answer below 500
	Ignore                // says nothing about the endpoint (the caller's cancellation, Close, its configuration)
	Soft                  // timeout, connection broken after write, 5xx
	NoLeader              // soft, and the endpoint has no leader
	Stalled               // raft held the request of a live member
	Hard                  // connection not made; another cluster
)

// FailurePenalty is the least latency a failed attempt counts for in the
// peak-EWMA, so that an endpoint failing fast does not look fast.
const FailurePenalty = time.Second

// Config configures a Tracker. After, Base and Max must be resolved
// (positive; After may be math.MaxInt32 to never eject on soft failures).
type Config struct {
	// After is how many soft failures in a row eject an endpoint.
	After int32
	// Base is the length of a first ejection, Max the cap of any.
	Base, Max time.Duration
	// Clock is the time source of ejections, probes and latencies.
	Clock clock.Clock
	// Rand(n) is uniform in [0, n): the jitter of ejection lengths.
	Rand func(int64) int64
	// Probe checks that an ejected endpoint answers (the probe's I/O).
	Probe func(ctx context.Context, e *Endpoint) error
	// ProbeLeader asks an endpoint that last said it had no leader for
	// its leader; nil error means it has one.
	ProbeLeader func(ctx context.Context, e *Endpoint) error
	// ProbeDone, if not nil, is called after each readmission probe that
	// was not cut off by Close, with the probe's error.
	ProbeDone func(ctx context.Context, e *Endpoint, err error)
}

// Tracker owns the health of a list of endpoints: their states, ejection
// and readmission, the readmission probes, the latency estimates and the
// adaptive timeout. Its only goroutines are the prober, which runs while
// at least one endpoint is ejected and waits for the earliest ejection to
// end, and the probes it starts; Close stops them and waits for them.
type Tracker struct {
	cfg     Config
	timeout AdaptiveTimeout

	// list is the current endpoint list, replaced whole by SetEndpoints.
	list atomic.Pointer[[]*Endpoint]
	// listMu serializes writers of list.
	listMu sync.Mutex

	// proberMu guards proberRunning; wake asks the prober to look again.
	proberMu      sync.Mutex
	proberRunning bool
	wake          chan struct{}

	// bgMu guards closed and the Add of bg.
	bgMu   sync.Mutex
	closed bool
	bg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// NewTracker returns a tracker with no endpoints.
func NewTracker(cfg Config) *Tracker {
	t := &Tracker{cfg: cfg, wake: make(chan struct{}, 1)}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.list.Store(new([]*Endpoint))
	return t
}

// Close stops the prober and the probes and waits for them. Endpoints
// are still tracked, but no longer probed. It is idempotent.
func (t *Tracker) Close() {
	t.bgMu.Lock()
	t.closed = true
	t.bgMu.Unlock()
	t.cancel()
	t.bg.Wait()
}

// goBackground runs f in a goroutine that Close waits for. It returns
// false, without running f, once the tracker is closed.
func (t *Tracker) goBackground(f func(ctx context.Context)) bool {
	t.bgMu.Lock()
	defer t.bgMu.Unlock()
	if t.closed {
		return false
	}
	t.bg.Add(1)
	go func() {
		defer t.bg.Done()
		f(t.ctx)
	}()
	return true
}

// SetEndpoints makes urls the tracked list and returns their states in
// the same order. The state of a URL already tracked is carried over;
// endpoints that leave the list are marked removed, which closes their
// down channels.
func (t *Tracker) SetEndpoints(urls []string) []*Endpoint {
	t.listMu.Lock()
	defer t.listMu.Unlock()
	old := *t.list.Load()
	list := make([]*Endpoint, len(urls))
	for i, u := range urls {
		for _, o := range old {
			if o.URL == u {
				list[i] = o
			}
		}
		if list[i] == nil {
			list[i] = NewEndpoint(u)
		}
	}
	t.list.Store(&list)
	for _, o := range old {
		kept := false
		for _, e := range list {
			kept = kept || e == o
		}
		if !kept {
			o.remove()
		}
	}
	return list
}

// Lookup returns the state of the tracked endpoint url, or nil.
func (t *Tracker) Lookup(url string) *Endpoint {
	for _, e := range *t.list.Load() {
		if e.URL == url {
			return e
		}
	}
	return nil
}

// Down returns the down channel of the tracked endpoint url (see
// Endpoint.Down); it is closed if url is not tracked.
func (t *Tracker) Down(url string) <-chan struct{} {
	if e := t.Lookup(url); e != nil {
		return e.Down()
	}
	return closedChan
}

// Timeout returns the adaptive per-attempt timeout: clamp(3 × p99 header
// latency, MinTimeout, MaxTimeout), MaxTimeout until there is enough data.
func (t *Tracker) Timeout() time.Duration { return t.timeout.Current() }

// SetTimeout makes the adaptive timeout d, as if learnt; for tests.
func (t *Tracker) SetTimeout(d time.Duration) { t.timeout.Set(d) }

// Record feeds the outcome of one attempt at e, of class cls, to its state,
// its latency estimate and the adaptive timeout. elapsed is the time to
// the response headers or to the failure, now the clock time of its end.
// raft tells a request answered only through raft (a write, a quorum
// read): its success shows a leader; a watch's latency is not sampled.
// pickedEjected tells that e was ejected when the attempt began (it was
// offered because nothing better was left): only then does a success
// readmit it, since an answer to a request sent before the ejection says
// little about the endpoint now.
func (t *Tracker) Record(e *Endpoint, cls Class, raft, watch bool, elapsed time.Duration, now int64, pickedEjected bool) {
	switch cls {
	case Ignore:
		return
	case Success:
		if e.consecutive.Load() != 0 {
			e.consecutive.Store(0)
		}
		if raft && e.noLeader.Load() {
			e.noLeader.Store(false) // the request went through raft: there is a leader
		}
		if !watch {
			e.lat.Observe(now, float64(elapsed))
			t.timeout.Add(elapsed)
		}
		switch e.State() {
		case Probation:
			e.state.CompareAndSwap(uint32(Probation), uint32(Healthy))
		case Ejected:
			if pickedEjected {
				t.readmit(e, now, Healthy)
			}
		}
		return
	}
	e.failures.Add(1)
	if !watch {
		e.lat.Observe(now, float64(max(elapsed, FailurePenalty)))
	}
	if cls == NoLeader || cls == Stalled {
		e.MarkNoLeader()
	}
	if cls == Stalled {
		// The member is alive; the cluster is what stalls (an election).
		// Ejecting it would leave the client fewer members to try once
		// the cluster has a leader again.
		return
	}
	if e.State() == Ejected {
		return // already out; its probe decides
	}
	n := e.consecutive.Add(1)
	if cls == Hard || n >= t.cfg.After || e.State() == Probation {
		t.eject(e, now)
	}
}

// EjectionLength draws the jittered length of the n-th ejection in a row:
// d = Base × 2^(n-1), capped at Max, then uniformly in [d/2, d].
func (t *Tracker) EjectionLength(n int) time.Duration {
	d := t.cfg.Base
	for i := 1; i < n && d < t.cfg.Max; i++ {
		d *= 2
	}
	d = min(d, t.cfg.Max)
	half := d / 2
	return half + time.Duration(t.cfg.Rand(int64(d-half)+1))
}

// eject takes e out of selection, closes its down channel and makes sure
// the prober runs. It does nothing to an endpoint already ejected.
func (t *Tracker) eject(e *Endpoint, now int64) {
	e.mu.Lock()
	if e.removed || e.State() == Ejected {
		e.mu.Unlock()
		return
	}
	if e.readmittedAt != 0 && now-e.readmittedAt >= int64(t.cfg.Max) {
		e.ejectCount = 0
	}
	e.ejectCount++
	e.ejectedAt = now
	e.ejectedUntil.Store(now + int64(t.EjectionLength(e.ejectCount)))
	e.consecutive.Store(0)
	e.state.Store(uint32(Ejected))
	e.ejections.Add(1)
	close(e.down)
	e.down = make(chan struct{})
	e.mu.Unlock()
	t.kickProber()
}

// reeject extends the ejection of e after a failed probe.
func (t *Tracker) reeject(e *Endpoint, now int64) {
	e.mu.Lock()
	if e.State() == Ejected {
		e.ejectCount++
		e.ejectedUntil.Store(now + int64(t.EjectionLength(e.ejectCount)))
	}
	e.mu.Unlock()
}

// readmit puts an ejected endpoint back into selection in state to.
func (t *Tracker) readmit(e *Endpoint, now int64, to State) {
	e.mu.Lock()
	if e.State() != Ejected {
		e.mu.Unlock()
		return
	}
	e.ejectedTotal += now - e.ejectedAt
	e.readmittedAt = now
	e.consecutive.Store(0)
	e.state.Store(uint32(to))
	e.mu.Unlock()
	t.kickProber() // lets the prober end when nothing is ejected any more
}

// ProberRunning reports whether the prober goroutine runs (or is about
// to); for tests.
func (t *Tracker) ProberRunning() bool {
	t.proberMu.Lock()
	defer t.proberMu.Unlock()
	return t.proberRunning
}

// kickProber starts the prober goroutine, or wakes it to look again.
func (t *Tracker) kickProber() {
	t.proberMu.Lock()
	defer t.proberMu.Unlock()
	if t.proberRunning {
		select {
		case t.wake <- struct{}{}:
		default:
		}
		return
	}
	if t.goBackground(t.probeLoop) {
		t.proberRunning = true
	}
}

// probeLoop is the prober: it starts one probe per ejected endpoint whose
// time is up, sleeps until the next one is due or it is woken, and ends
// when nothing is ejected.
func (t *Tracker) probeLoop(ctx context.Context) {
	for {
		now := t.cfg.Clock.Now()
		next := int64(math.MaxInt64)
		ejected := false
		t.proberMu.Lock()
		for _, e := range *t.list.Load() {
			if e.State() != Ejected {
				continue
			}
			ejected = true
			if e.probing.Load() {
				continue // its end wakes the loop
			}
			if until := e.ejectedUntil.Load(); until > now {
				next = min(next, until)
				continue
			}
			e.probing.Store(true)
			if !t.goBackground(func(ctx context.Context) { t.readmissionProbe(ctx, e) }) {
				e.probing.Store(false)
			}
		}
		if !ejected {
			t.proberRunning = false
			t.proberMu.Unlock()
			return
		}
		t.proberMu.Unlock()

		var (
			tm clock.Timer
			tc <-chan time.Time
		)
		if next != math.MaxInt64 {
			tm = t.cfg.Clock.NewTimer(time.Duration(next - now))
			tc = tm.C()
		}
		select {
		case <-ctx.Done():
			if tm != nil {
				tm.Stop()
			}
			t.proberMu.Lock()
			t.proberRunning = false
			t.proberMu.Unlock()
			return
		case <-tc:
		case <-t.wake:
			if tm != nil {
				tm.Stop()
			}
		}
	}
}

// readmissionProbe checks an ejected endpoint (Config.Probe, and
// Config.ProbeLeader when it last said it had no leader) and readmits it
// on probation, or ejects it again for longer.
func (t *Tracker) readmissionProbe(ctx context.Context, e *Endpoint) {
	e.probes.Add(1)
	err := t.cfg.Probe(ctx, e)
	if err == nil && e.noLeader.Load() && t.cfg.ProbeLeader != nil {
		// That second answer only tells whether it has a leader.
		if t.cfg.ProbeLeader(ctx, e) == nil {
			e.noLeader.Store(false)
		}
	}
	if ctx.Err() != nil {
		e.probing.Store(false)
		return
	}
	now := t.cfg.Clock.Now()
	if err != nil {
		e.probeFailures.Add(1)
		t.reeject(e, now)
	} else {
		t.readmit(e, now, Probation)
	}
	e.probing.Store(false)
	if t.cfg.ProbeDone != nil {
		t.cfg.ProbeDone(ctx, e, err)
	}
	t.kickProber()
}
