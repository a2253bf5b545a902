package client

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcdv2/client/internal/health"
)

// HealthState is what the client's shared health machinery thinks of an
// endpoint. Every Selector gets it for free: the client takes ejected
// endpoints out of the candidates before it calls Select.
type HealthState uint8

const (
	// StateHealthy is an endpoint in use.
	StateHealthy HealthState = iota
	// StateProbation is an endpoint readmitted after an ejection that has
	// not answered a request since: one failure ejects it again, for longer.
	StateProbation
	// StateEjected is an endpoint left out of selection until a background
	// probe (GET /version) readmits it. A Selector sees an ejected endpoint
	// only when every endpoint not yet tried for the request is ejected:
	// the client then offers the least bad one rather than none.
	StateEjected
)

// String returns the state's name, such as "ejected".
func (s HealthState) String() string {
	switch s {
	case StateHealthy:
		return "healthy"
	case StateProbation:
		return "probation"
	case StateEjected:
		return "ejected"
	}
	return "unknown"
}

// Defaults of EjectionConfig.
const (
	// DefaultEjectAfter is how many consecutive soft failures eject an endpoint.
	DefaultEjectAfter = 2
	// DefaultBaseEjection is the length of a first ejection (before jitter).
	DefaultBaseEjection = time.Second
	// DefaultMaxEjection caps the length of an ejection.
	DefaultMaxEjection = 30 * time.Second
)

// EjectionConfig tunes when an endpoint is taken out of selection and for
// how long. Its zero value means the defaults.
//
// Hard failures eject at once: a connection that could not be made (refused,
// reset or unreachable while dialing, so the request was never written) and
// an answer from another cluster (cluster-ID mismatch). Soft failures eject
// after After of them in a row: an attempt timeout, a 5xx answer (etcd error
// 300 "raft internal", 301 "leader election", HTTP 500 or 503), and a
// connection broken after the request was written. Any answer below 500,
// etcd errors such as "key not found" included, resets the count.
//
// The n-th ejection in a row lasts Base × 2^(n-1), capped at Max, with equal
// jitter (a uniform draw in [d/2, d]); with the defaults 0.5–1 s, 1–2 s,
// 2–4 s, … up to 15–30 s. The count goes back to zero once the endpoint has
// stayed in use for Max after its readmission. When the time is up a
// background probe (GET /version, plus GET /v2/members/leader when the
// endpoint last said it had no leader) readmits the endpoint on probation,
// or ejects it again for longer. A successful answer from an ejected
// endpoint (one offered because every other was ejected too, or a request
// that was already in flight) readmits it as well.
type EjectionConfig struct {
	// After is the number of consecutive soft failures that eject an
	// endpoint. Zero means DefaultEjectAfter; a negative value disables
	// ejection on soft failures (hard failures still eject).
	After int
	// Base is the length of the first ejection before jitter. Zero means
	// DefaultBaseEjection.
	Base time.Duration
	// Max caps the length of an ejection. Zero means DefaultMaxEjection.
	Max time.Duration
}

// Internal constants of the health machinery.
const (
	// failurePenalty is the least latency a failed attempt counts for in
	// the peak-EWMA, so that an endpoint failing fast does not look fast.
	failurePenalty = time.Second
	// lagWindow is how long a per-endpoint index sample is trusted.
	lagWindow = 10 * time.Second
	// unknownLatencyPenalty is the cost LeastLatency gives an endpoint with
	// no latency sample that already has requests in flight.
	unknownLatencyPenalty = float64(time.Minute)
)

// closedChan is returned by endpointDown for endpoints that are already down.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// epState is the live state of one endpoint. It outlives endpoint
// snapshots: SetEndpoints, Sync and leader changes carry it over by URL.
// The hot path reads and writes it with atomics only; mu serializes state
// transitions (ejection, readmission) and the down channel.
type epState struct {
	state       atomic.Uint32 // HealthState
	consecutive atomic.Int32  // soft failures in a row
	noLeader    atomic.Bool   // the endpoint last said it has no leader
	inFlight    atomic.Int32  // attempts waiting for headers (not watches)
	watches     atomic.Int32  // watches from pick to body close
	probing     atomic.Bool   // a readmission probe runs
	lat         health.PeakEWMA

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

func newEpState() *epState { return &epState{down: make(chan struct{})} }

// begin counts an attempt that starts; end one that has its headers or
// failed (for a watch: whose long poll is closed).
func (st *epState) begin(watch bool) {
	st.attempts.Add(1)
	if watch {
		st.watches.Add(1)
	} else {
		st.inFlight.Add(1)
	}
}

func (st *epState) end(watch bool) {
	if watch {
		st.watches.Add(-1)
	} else {
		st.inFlight.Add(-1)
	}
}

// snapshot fills the dynamic fields of the view of e.
func (e *endpoint) snapshot(now int64) Endpoint {
	v := e.view
	st := e.st
	if st == nil {
		v.HasLeader = true
		return v
	}
	v.State = HealthState(st.state.Load())
	v.HasLeader = !st.noLeader.Load()
	v.InFlight = int(st.inFlight.Load())
	v.Watches = int(st.watches.Load())
	v.Latency = st.lat.Value(now)
	v.ConsecutiveFailures = int(st.consecutive.Load())
	if idx := st.etcdIndex.Load(); idx != 0 {
		v.EtcdIndex = idx
		if now-st.indexAt.Load() <= int64(lagWindow) {
			v.IndexLag = st.indexLag.Load()
		}
	}
	return v
}

// failClass is how an attempt's outcome counts for health.
type failClass uint8

const (
	failNone     failClass = iota // an answer below 500
	failIgnore                    // the caller's cancellation, or Close
	failSoft                      // timeout, connection broken after write, 5xx
	failNoLeader                  // soft, and the endpoint has no leader
	failStalled                   // raft held the request of a live member
	failHard                      // connection not made; another cluster
)

func classify(err error) failClass {
	if err == nil {
		return failNone
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return failIgnore
	}
	if perm, _ := permanent(err); perm {
		return failIgnore // the caller's policy or configuration
	}
	if errors.Is(err, ErrClusterIDMismatch) {
		return failHard
	}
	var te *AttemptTimeoutError
	if errors.As(err, &te) {
		switch {
		case te.byDeadline:
			return failIgnore // the caller's deadline, not the member
		case te.MemberAlive:
			return failStalled
		}
		return failSoft
	}
	var ee Error
	if errors.As(err, &ee) {
		if ee.Code == ErrorCodeRaftInternal || ee.Code == ErrorCodeLeaderElect {
			return failNoLeader
		}
		return failSoft
	}
	var he *HTTPError
	if errors.As(err, &he) {
		if he.StatusCode == http.StatusServiceUnavailable {
			return failNoLeader
		}
		return failSoft
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return failHard
	}
	return failSoft
}

// healthParams are the resolved EjectionConfig.
type healthParams struct {
	after int32
	base  time.Duration
	max   time.Duration
}

func resolveEjection(cfg EjectionConfig) healthParams {
	p := healthParams{after: int32(cfg.After), base: cfg.Base, max: cfg.Max}
	if p.after == 0 {
		p.after = DefaultEjectAfter
	}
	if p.after < 0 {
		p.after = math.MaxInt32
	}
	if p.base <= 0 {
		p.base = DefaultBaseEjection
	}
	if p.max <= 0 {
		p.max = DefaultMaxEjection
	}
	if p.max < p.base {
		p.max = p.base
	}
	return p
}

// recordOutcome feeds the outcome of one attempt to the health machinery,
// the latency average and the selector's Observer. elapsed is the time to
// the response headers or to the failure.
// pickedEjected tells that the endpoint was ejected when the attempt began
// (it was offered because nothing better was left): only then does a
// success readmit it, since an answer to a request sent before the
// ejection says little about the endpoint now.
func (c *httpClusterClient) recordOutcome(ep *endpoint, info RequestInfo, err error, elapsed time.Duration, now int64, pickedEjected bool) {
	cls := classify(err)
	if cls == failIgnore {
		return
	}
	if st := ep.st; st != nil {
		c.updateHealth(st, info.Kind, cls, elapsed, now, pickedEjected)
	}
	if c.observer != nil {
		c.observer.Observe(Outcome{Endpoint: ep.snapshot(now), Info: info, Err: err, Latency: elapsed})
	}
	if err != nil && ep.view.Leader && c.wantLeader {
		c.refreshLeaderAsync()
	}
}

func (c *httpClusterClient) updateHealth(st *epState, kind RequestKind, cls failClass, elapsed time.Duration, now int64, pickedEjected bool) {
	if cls == failNone {
		if st.consecutive.Load() != 0 {
			st.consecutive.Store(0)
		}
		if (kind == KindWrite || kind == KindQuorumRead) && st.noLeader.Load() {
			// The request went through raft: there is a leader.
			st.noLeader.Store(false)
		}
		if kind != KindWatch {
			st.lat.Observe(now, float64(elapsed))
			c.hist.Add(elapsed)
		}
		switch HealthState(st.state.Load()) {
		case StateProbation:
			st.state.CompareAndSwap(uint32(StateProbation), uint32(StateHealthy))
		case StateEjected:
			if pickedEjected {
				c.readmit(st, now, StateHealthy)
			}
		}
		return
	}
	st.failures.Add(1)
	if kind != KindWatch {
		st.lat.Observe(now, float64(max(elapsed, failurePenalty)))
	}
	if (cls == failNoLeader || cls == failStalled) && !st.noLeader.Load() {
		st.noLeader.Store(true)
	}
	if cls == failStalled {
		// The member is alive; the cluster is what stalls (an election).
		// Ejecting it would leave the client fewer members to try once
		// the cluster has a leader again.
		return
	}
	if HealthState(st.state.Load()) == StateEjected {
		return // already out; its probe decides
	}
	n := st.consecutive.Add(1)
	if cls == failHard || n >= c.health.after || HealthState(st.state.Load()) == StateProbation {
		c.eject(st, now)
	}
}

// ejectionLength is the jittered length of the n-th ejection in a row.
func (c *httpClusterClient) ejectionLength(n int) time.Duration {
	d := c.health.base
	for i := 1; i < n && d < c.health.max; i++ {
		d *= 2
	}
	d = min(d, c.health.max)
	half := d / 2
	return half + time.Duration(c.rnd(int64(d-half)+1))
}

// eject takes st out of selection, closes its down channel and makes sure
// the prober runs. It does nothing to an endpoint already ejected.
func (c *httpClusterClient) eject(st *epState, now int64) {
	st.mu.Lock()
	if st.removed || HealthState(st.state.Load()) == StateEjected {
		st.mu.Unlock()
		return
	}
	if st.readmittedAt != 0 && now-st.readmittedAt >= int64(c.health.max) {
		st.ejectCount = 0
	}
	st.ejectCount++
	st.ejectedAt = now
	st.ejectedUntil.Store(now + int64(c.ejectionLength(st.ejectCount)))
	st.consecutive.Store(0)
	st.state.Store(uint32(StateEjected))
	st.ejections.Add(1)
	close(st.down)
	st.down = make(chan struct{})
	st.mu.Unlock()
	c.kickProber()
}

// reeject extends the ejection of st after a failed probe.
func (c *httpClusterClient) reeject(st *epState, now int64) {
	st.mu.Lock()
	if HealthState(st.state.Load()) == StateEjected {
		st.ejectCount++
		st.ejectedUntil.Store(now + int64(c.ejectionLength(st.ejectCount)))
	}
	st.mu.Unlock()
}

// readmit puts an ejected endpoint back into selection in state to.
func (c *httpClusterClient) readmit(st *epState, now int64, to HealthState) {
	st.mu.Lock()
	if HealthState(st.state.Load()) != StateEjected {
		st.mu.Unlock()
		return
	}
	st.ejectedTotal += now - st.ejectedAt
	st.readmittedAt = now
	st.consecutive.Store(0)
	st.state.Store(uint32(to))
	st.mu.Unlock()
	c.kickProber() // lets the prober end when nothing is ejected any more
}

// remove marks st as gone from the endpoint list: its down channel closes.
func (st *epState) remove() {
	st.mu.Lock()
	if !st.removed {
		st.removed = true
		if HealthState(st.state.Load()) != StateEjected {
			close(st.down)
		}
	}
	st.mu.Unlock()
}

// endpointDown returns a channel that is closed when the endpoint url is
// ejected or removed from the client's endpoints. It is already closed
// when url is ejected or is not an endpoint of the client. A watch
// holding a long poll open on url selects on it, cancels the poll when it
// closes, and issues the next one through do, which then avoids url.
// Each ejection closes the channel returned before it; call endpointDown
// again for each new poll.
func (c *httpClusterClient) endpointDown(url string) <-chan struct{} {
	for _, e := range c.eps.Load().list {
		if e.raw != url {
			continue
		}
		st := e.st
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.removed || HealthState(st.state.Load()) == StateEjected {
			return closedChan
		}
		return st.down
	}
	return closedChan
}
