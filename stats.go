package client

import "time"

// StatsReporter is implemented by the Client that New returns; assert it:
//
//	if sr, ok := c.(client.StatsReporter); ok {
//		st := sr.Stats()
//		...
//	}
//
// Stats is safe for concurrent use and cheap enough to call every second.
type StatsReporter interface {
	Stats() Stats
}

// Stats is a snapshot of the client's selection and health counters.
// Counters only grow over the client's life (an endpoint's counters start
// when it joins the endpoint list).
type Stats struct {
	// Requests counts the requests sent through the request loop.
	Requests uint64
	// Retries counts the attempts after the first of each request.
	Retries uint64
	// RetriesDenied counts the retries the retry budget refused.
	RetriesDenied uint64
	// StaleReads counts the plain reads answered below the monotonic-read
	// floor and sent again as quorum reads (Config.MonotonicReads).
	StaleReads uint64
	// AttemptTimeout is the per-attempt timeout now (before halving for
	// the caller's deadline); 0 means none. When it is adaptive, it is
	// when a plain read whose member answered its liveness check goes on
	// waiting, and a raft request's member is checked, rather than when
	// they end (see Config.HeaderTimeoutPerRequest).
	AttemptTimeout time.Duration
	// Endpoints has one entry per endpoint, in the client's list order.
	Endpoints []EndpointStats
}

// EndpointStats are the counters and state of one endpoint.
type EndpointStats struct {
	// Endpoint is the snapshot a Selector would see now.
	Endpoint
	// Attempts counts the attempts sent to the endpoint.
	Attempts uint64
	// Failures counts the attempts that failed there (not counting those
	// ended by the caller's context).
	Failures uint64
	// Ejections counts the times the endpoint was ejected.
	Ejections uint64
	// Probes and ProbeFailures count the readmission probes and how many
	// of them failed.
	Probes, ProbeFailures uint64
	// TimeEjected is the total time the endpoint spent ejected.
	TimeEjected time.Duration
	// EjectedFor is how long the current ejection has still to run before
	// the next probe; 0 when the endpoint is not ejected or is due.
	EjectedFor time.Duration
}

// Stats implements StatsReporter.
func (c *httpClusterClient) Stats() Stats {
	now := c.clk.Now()
	s := Stats{
		Requests:      c.nRequests.Load(),
		Retries:       c.nRetries.Load(),
		RetriesDenied: c.budget.Denied(),
		StaleReads:    c.nStale.Load(),
	}
	if c.headerTimeout > 0 {
		s.AttemptTimeout = c.headerTimeout
	} else if c.headerTimeout == 0 {
		s.AttemptTimeout = c.health.Timeout()
	}
	for _, e := range c.eps.Load().list {
		n := e.st.Counters(now)
		s.Endpoints = append(s.Endpoints, EndpointStats{
			Endpoint:      e.snapshot(now),
			Attempts:      n.Attempts,
			Failures:      n.Failures,
			Ejections:     n.Ejections,
			Probes:        n.Probes,
			ProbeFailures: n.ProbeFailures,
			TimeEjected:   n.TimeEjected,
			EjectedFor:    n.EjectedFor,
		})
	}
	return s
}
