package client

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/etcdv2/client/internal/health"
)

// HealthState is what the client's shared health machinery thinks of an
// endpoint. Every Selector gets it for free: the client takes ejected
// endpoints out of the candidates before it calls Select.
type HealthState uint8

const (
	// StateHealthy is an endpoint in use.
	StateHealthy = HealthState(health.Healthy)
	// StateProbation is an endpoint readmitted after an ejection that has
	// not answered a request since: one failure ejects it again, for longer.
	StateProbation = HealthState(health.Probation)
	// StateEjected is an endpoint left out of selection until a background
	// probe (GET /version) readmits it. A Selector sees an ejected endpoint
	// only when every endpoint not yet tried for the request is ejected:
	// the client then offers the least bad one rather than none.
	StateEjected = HealthState(health.Ejected)
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

// The health machinery (states, ejection and readmission, probes, latency
// estimates, the adaptive timeout) is internal/health's Tracker; this file
// wires it to the client: configuration, the classification of errors,
// the probes' requests and the snapshots selectors see.

// newTracker returns the health tracker of c, configured by cfg.
func newTracker(c *httpClusterClient, cfg EjectionConfig) *health.Tracker {
	after := int32(cfg.After)
	if after == 0 {
		after = DefaultEjectAfter
	}
	if after < 0 {
		after = math.MaxInt32
	}
	base, maxEj := cfg.Base, cfg.Max
	if base <= 0 {
		base = DefaultBaseEjection
	}
	if maxEj <= 0 {
		maxEj = DefaultMaxEjection
	}
	if maxEj < base {
		maxEj = base
	}
	return health.NewTracker(health.Config{
		After: after, Base: base, Max: maxEj,
		Clock:       c.clk,
		Rand:        c.rnd,
		Probe:       c.readmissionProbe,
		ProbeLeader: c.leaderProbe,
		ProbeDone:   c.probeDone,
	})
}

// snapshot fills the dynamic fields of the view of e.
func (e *endpoint) snapshot(now int64) Endpoint {
	v := e.view
	st := e.st
	if st == nil {
		v.HasLeader = true
		return v
	}
	v.State = HealthState(st.State())
	v.HasLeader = st.HasLeader()
	v.InFlight = st.InFlight()
	v.Watches = st.Watches()
	v.Latency = st.Latency(now)
	v.ConsecutiveFailures = st.ConsecutiveFailures()
	v.EtcdIndex, v.IndexLag = st.Index(now)
	return v
}

// classify tells how an attempt's error counts for the endpoint's health.
func classify(err error) health.Class {
	if err == nil {
		return health.Success
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return health.Ignore
	}
	if perm, _ := permanent(err); perm {
		return health.Ignore // the caller's policy or configuration
	}
	if errors.Is(err, ErrClusterIDMismatch) {
		return health.Hard
	}
	var te *AttemptTimeoutError
	if errors.As(err, &te) {
		switch {
		case te.byDeadline:
			return health.Ignore // the caller's deadline, not the member
		case te.MemberAlive:
			return health.Stalled
		}
		return health.Soft
	}
	var ee Error
	if errors.As(err, &ee) {
		if ee.Code == ErrorCodeRaftInternal || ee.Code == ErrorCodeLeaderElect {
			return health.NoLeader
		}
		return health.Soft
	}
	var he *HTTPError
	if errors.As(err, &he) {
		if he.StatusCode == http.StatusServiceUnavailable {
			return health.NoLeader
		}
		return health.Soft
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return health.Hard
	}
	return health.Soft
}

// recordOutcome feeds the outcome of one attempt to the health tracker
// (see health.Tracker.Record for elapsed, now and pickedEjected), the
// selector's Observer and, when the leader failed, the leader tracker.
func (c *httpClusterClient) recordOutcome(ep *endpoint, info RequestInfo, err error, elapsed time.Duration, now int64, pickedEjected bool) {
	cls := classify(err)
	if cls == health.Ignore {
		return
	}
	c.health.Record(ep.st, cls, throughRaft(info.Kind), info.Kind == KindWatch, elapsed, now, pickedEjected)
	if c.observer != nil {
		c.observer.Observe(Outcome{Endpoint: ep.snapshot(now), Info: info, Err: err, Latency: elapsed})
	}
	if err != nil && ep.view.Leader && c.wantLeader {
		c.refreshLeaderAsync()
	}
}

// endpointDown returns a channel that is closed when the endpoint url is
// ejected or removed from the client's endpoints. It is already closed
// when url is ejected or is not an endpoint of the client. A watch
// holding a long poll open on url selects on it, cancels the poll when it
// closes, and issues the next one through do, which then avoids url.
// Each ejection closes the channel returned before it; call endpointDown
// again for each new poll.
func (c *httpClusterClient) endpointDown(url string) <-chan struct{} {
	return c.health.Down(url)
}
