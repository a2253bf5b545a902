package client

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/etcdv2/client/internal/clock"
)

// prober is the readmission machinery. One goroutine runs while at least
// one endpoint is ejected and none otherwise; it waits for the earliest
// ejection to end and starts one probe per endpoint whose time is up.
type prober struct {
	mu      sync.Mutex
	running bool
	wake    chan struct{} // buffered, 1
}

// kickProber starts the prober goroutine, or wakes it to look again.
func (c *httpClusterClient) kickProber() {
	c.prober.mu.Lock()
	defer c.prober.mu.Unlock()
	if c.prober.running {
		select {
		case c.prober.wake <- struct{}{}:
		default:
		}
		return
	}
	if c.goBackground(c.probeLoop) {
		c.prober.running = true
	}
}

func (c *httpClusterClient) probeLoop(ctx context.Context) {
	for {
		now := c.clk.Now()
		next := int64(math.MaxInt64)
		ejected := false
		c.prober.mu.Lock()
		for _, e := range c.eps.Load().list {
			st := e.st
			if HealthState(st.state.Load()) != StateEjected {
				continue
			}
			ejected = true
			if st.probing.Load() {
				continue // its end wakes the loop
			}
			if until := st.ejectedUntil.Load(); until > now {
				next = min(next, until)
				continue
			}
			st.probing.Store(true)
			ep := e
			if !c.goBackground(func(ctx context.Context) { c.readmissionProbe(ctx, ep) }) {
				st.probing.Store(false)
			}
		}
		if !ejected {
			c.prober.running = false
			c.prober.mu.Unlock()
			return
		}
		c.prober.mu.Unlock()

		var (
			t  clock.Timer
			tc <-chan time.Time
		)
		if next != math.MaxInt64 {
			t = c.clk.NewTimer(time.Duration(next - now))
			tc = t.C()
		}
		select {
		case <-ctx.Done():
			if t != nil {
				t.Stop()
			}
			c.prober.mu.Lock()
			c.prober.running = false
			c.prober.mu.Unlock()
			return
		case <-tc:
		case <-c.prober.wake:
			if t != nil {
				t.Stop()
			}
		}
	}
}

// readmissionProbe checks an ejected endpoint off the request path and
// readmits it on probation, or ejects it again for longer.
func (c *httpClusterClient) readmissionProbe(ctx context.Context, ep *endpoint) {
	st := ep.st
	st.probes.Add(1)
	err := c.checkAlive(ctx, ep)
	if ctx.Err() != nil {
		st.probing.Store(false)
		return
	}
	now := c.clk.Now()
	if err != nil {
		st.probeFailures.Add(1)
		c.reeject(st, now)
		if c.logger != nil {
			c.logger.DebugContext(ctx, "etcd client: endpoint stays ejected", "endpoint", ep.raw, "error", err)
		}
	} else {
		c.readmit(st, now, StateProbation)
	}
	st.probing.Store(false)
	if h := c.testHookProbeDone; h != nil {
		h(ep.raw, err)
	}
	c.kickProber()
}

// checkAlive asks ep for its version and, when it last said it had no
// leader, for the leader.
func (c *httpClusterClient) checkAlive(ctx context.Context, ep *endpoint) error {
	if err := c.getOnce(ctx, ep, clusterGet("/version")); err != nil {
		return err
	}
	if ep.st != nil && ep.st.noLeader.Load() {
		if c.getOnce(ctx, ep, clusterGet("/v2/members/leader")) == nil {
			ep.st.noLeader.Store(false)
		}
	}
	return nil
}

// probe checks that an endpoint answers (GET /version within the
// per-attempt timeout, or DefaultHeaderTimeoutPerRequest when it is
// adaptive or off) and reports the outcome to the health machinery and the
// selector as an attempt would: a failure counts toward ejecting the
// endpoint. It is used to notice a hung member under a long-poll watch,
// which no request would otherwise notice; see also endpointDown.
func (c *httpClusterClient) probe(ctx context.Context, url string) error {
	set := c.eps.Load()
	var ep *endpoint
	for _, e := range set.list {
		if e.raw == url {
			ep = e
		}
	}
	if ep == nil {
		return fmt.Errorf("%w: %s is not an endpoint of the client", ErrInvalidEndpoint, url)
	}
	start := time.Now()
	wasEjected := HealthState(ep.st.state.Load()) == StateEjected
	err := c.getOnce(ctx, ep, clusterGet("/version"))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.recordOutcome(ep, RequestInfo{Kind: KindCluster}, err, time.Since(start), c.clk.Now(), wasEjected)
	return err
}

// getOnce sends r to ep alone within the probe timeout and reads the
// answer, which must be a 2xx.
func (c *httpClusterClient) getOnce(ctx context.Context, ep *endpoint, r *request) error {
	start := time.Now()
	resp, _, err := c.attempt(ctx, ep, r, c.probeTimeout(), false)
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
