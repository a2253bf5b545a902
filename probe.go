package client

import (
	"context"
	"fmt"
	"time"

	"github.com/etcdv2/client/internal/health"
)

// Probes: requests about one member rather than the keys, each sent to
// one endpoint alone, once, without the selector or failover. Their
// liveness request is askVersion (attempt.go), shared with the liveness
// check of an attempt:
//
//   - the readmission probe of an ejected endpoint, which the health
//     tracker runs (health.Tracker; newTracker gives it askVersion, and
//     getOnce of the leader);
//   - probe, the watcher's check of the member holding its long poll,
//     whose outcome counts like an attempt's;
//   - verify, before a write that cannot be resent, checks that the
//     endpoint answers for the client's cluster.

// readmissionProbe is the tracker's probe of an ejected endpoint.
func (c *httpClusterClient) readmissionProbe(ctx context.Context, st *health.Endpoint) error {
	return c.askVersion(ctx, c.endpointOf(st), c.probeTimeout(), true)
}

// leaderProbe asks an endpoint that last said it had no leader for the
// leader, after its readmission probe succeeded.
func (c *httpClusterClient) leaderProbe(ctx context.Context, st *health.Endpoint) error {
	return c.getOnce(ctx, c.endpointOf(st), clusterGet("/v2/members/leader"), c.probeTimeout())
}

// probeDone logs a failed readmission probe and calls the test hook.
func (c *httpClusterClient) probeDone(ctx context.Context, st *health.Endpoint, err error) {
	if err != nil && c.logger != nil {
		c.logger.DebugContext(ctx, "etcd client: endpoint stays ejected", "endpoint", st.URL, "error", err)
	}
	if h := c.testHookProbeDone; h != nil {
		h(st.URL, err)
	}
}

// getOnce sends r to ep within timeout and reads the answer, which must
// pass checkResponse and have a 2xx status.
func (c *httpClusterClient) getOnce(ctx context.Context, ep *endpoint, r *request, timeout time.Duration) error {
	start := time.Now()
	resp, _, err := c.attempt(ctx, ep, r, timeout, false)
	if err == nil {
		err = c.checkResponse(ep, resp)
		if err == nil {
			if resp.StatusCode/100 != 2 {
				err = &HTTPError{StatusCode: resp.StatusCode}
			}
			if cerr := finishBody(resp.Body); err == nil {
				err = cerr
			}
		}
	}
	c.logAttempt(ctx, ep, r, resp, err, time.Since(start))
	if err != nil {
		return fmt.Errorf("probe %s: %w", r.path, err)
	}
	return nil
}

// probeTimeout bounds one probe request: the configured per-attempt
// timeout, or DefaultHeaderTimeoutPerRequest when it is adaptive or off.
func (c *httpClusterClient) probeTimeout() time.Duration {
	if c.headerTimeout > 0 {
		return c.headerTimeout
	}
	return DefaultHeaderTimeoutPerRequest
}

// probe checks that an endpoint answers (askVersion within probeTimeout)
// and reports the outcome to the health tracker and the selector as an
// attempt would: a failure counts toward ejecting the endpoint. It is used
// to notice a hung member under a long-poll watch, which no request would
// otherwise notice; see also endpointDown.
func (c *httpClusterClient) probe(ctx context.Context, url string) error {
	var ep *endpoint
	for _, e := range c.eps.Load().list {
		if e.raw == url {
			ep = e
		}
	}
	if ep == nil {
		return fmt.Errorf("%w: %s is not an endpoint of the client", ErrInvalidEndpoint, url)
	}
	start := time.Now()
	wasEjected := ep.st.State() == health.Ejected
	err := c.askVersion(ctx, ep, c.probeTimeout(), true)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.recordOutcome(ep, RequestInfo{Kind: KindCluster}, err, time.Since(start), c.clk.Now(), wasEjected)
	return err
}

// endpointOf returns the endpoint of the current list whose health state
// is st, or, if it has just left the list, one made for it.
func (c *httpClusterClient) endpointOf(st *health.Endpoint) *endpoint {
	for _, e := range c.eps.Load().list {
		if e.st == st {
			return e
		}
	}
	list, err := parseEndpoints([]string{st.URL})
	if err != nil {
		// Cannot happen: st.URL was parsed when it joined the list.
		return &endpoint{raw: st.URL, st: st}
	}
	list[0].st = st
	return list[0]
}

// verify checks that ep answers for the cluster this client knows.
func (c *httpClusterClient) verify(ctx context.Context, ep *endpoint) error {
	r := clusterGet("/v2/members")
	resp, _, err := c.attempt(ctx, ep, r, c.attemptTimeout(ctx, r, false), false)
	if err != nil {
		return err
	}
	if err := c.checkResponse(ep, resp); err != nil {
		return err
	}
	resp.Body.Close()
	if !ep.verified.Load() {
		return fmt.Errorf("client: endpoint %s sent no cluster ID; it is probably not an etcd member", ep.raw)
	}
	return nil
}
