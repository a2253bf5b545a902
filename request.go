package client

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/etcdv2/client/internal/health"
	"github.com/etcdv2/client/internal/retry"
)

// request is one logical request to the cluster; do sends it to one
// endpoint after another until one answers.
type request struct {
	method string
	// path is the unescaped path below the endpoint, like "/v2/keys/a b".
	path string
	// rawPath is path escaped for the wire; "" lets net/url escape path.
	rawPath string
	// query is the encoded query string, without "?".
	query string
	// uri, if set, is rawPath (or path, when it needs no escaping), with
	// "?" and query when there is one, in one string: the request URI
	// for an endpoint without a path of its own, sent as is
	// (url.URL.Opaque) so that it is not made again for every attempt.
	uri string
	// body and contentType are sent as they are.
	body        []byte
	contentType string
	// kind tells the selector what the request is.
	kind RequestKind
	// replayable means the request may be resent to another member even
	// after it may have reached a server: reads and watches (and
	// unconditional sets when Config.ResendUnconditionalSets says so). A
	// request that is not replayable fails with an error matching
	// ErrOutcomeUnknown instead.
	replayable bool
	// overwrite marks an unconditional set: it is replayable when
	// Config.ResendUnconditionalSets says so.
	overwrite bool
	// sensitive marks a body that holds a secret and is never printed.
	sensitive bool
	// keys marks a keys API call: its answer is decoded within the
	// attempt (see readBody).
	keys bool
}

// clusterGet returns a GET of path, about the cluster or the member
// rather than the keys: /version, /v2/members, ...
func clusterGet(path string) *request {
	return &request{method: http.MethodGet, path: path, kind: KindCluster, replayable: true}
}

// response is an answer with a 1xx-4xx status; the caller must close Body.
type response struct {
	*http.Response
	// endpoint is the endpoint that answered.
	endpoint string
}

// Backoff between rounds (Config.Rounds): full jitter over
// min(roundBackoffMax, roundBackoffBase × 2^(round-1)).
const (
	roundBackoffBase = 50 * time.Millisecond
	roundBackoffMax  = time.Second
)

// selectBuf holds the per-request scratch space of do, pooled so that the
// request loop does not allocate for it.
type selectBuf struct {
	tried []bool
	cands []Endpoint
}

func (c *httpClusterClient) getBuf(n int) *selectBuf {
	b, _ := c.bufs.Get().(*selectBuf)
	if b == nil {
		b = &selectBuf{}
	}
	if cap(b.tried) < n {
		b.tried = make([]bool, n, max(n, 8))
		b.cands = make([]Endpoint, 0, max(n, 8))
	}
	b.tried = b.tried[:n]
	clear(b.tried)
	return b
}

func (c *httpClusterClient) putBuf(b *selectBuf) {
	clear(b.cands[:cap(b.cands)]) // drop the URL strings
	c.bufs.Put(b)
}

// candidates fills out with the endpoints of set that may be offered to the
// selector for the next attempt: the untried, not ejected ones (for
// anything but a plain read, with a leader); failing those, the untried
// ones without a leader; failing those, the untried ejected one that is
// due to be readmitted first. It is empty only when all were tried.
func (c *httpClusterClient) candidates(set *endpointSet, tried []bool, kind RequestKind, out []Endpoint, now int64) []Endpoint {
	needLeader := kind != KindRead
	noLeader, ejected := false, -1
	for i, e := range set.list {
		if tried[i] {
			continue
		}
		st := e.st
		if st.State() == health.Ejected {
			if ejected < 0 || st.EjectedUntil() < set.list[ejected].st.EjectedUntil() {
				ejected = i
			}
			continue
		}
		if needLeader && !st.HasLeader() {
			noLeader = true
			continue
		}
		out = append(out, e.snapshot(now))
	}
	if len(out) > 0 {
		return out
	}
	if noLeader {
		for i, e := range set.list {
			if !tried[i] && e.st.State() != health.Ejected {
				out = append(out, e.snapshot(now))
			}
		}
		return out
	}
	if ejected >= 0 {
		out = append(out, set.list[ejected].snapshot(now))
	}
	return out
}

// do sends r to the cluster: doRequest, told to the hooks when there are
// some (Config.Hooks; doHooked in hooks.go).
func (c *httpClusterClient) do(ctx context.Context, r *request) (*response, error) {
	if c.hooks == nil {
		return c.doRequest(ctx, r)
	}
	return c.doHooked(ctx, r)
}

// doRequest sends r to the cluster and returns the first answer whose
// status is below 500 (do adds the hooks).
//
// A request makes up to Config.Rounds passes over the endpoints. In a
// pass each endpoint is tried at most once, in the order the selector
// chooses among the candidates the health machinery leaves, without
// waiting between attempts; passes are separated by a jittered backoff.
// Attempts after the first take a token of the retry budget. An error
// that every attempt would meet again (see permanent) ends the request at
// once. A request that is not replayable is not resent once it may have
// reached a server.
// With MonotonicReads, a plain read answered below the client's floor is
// sent again as a quorum read, unless ctx is from WithoutMonotonicReads.
// When ctx ends, do returns exactly ctx.Err().
func (c *httpClusterClient) doRequest(ctx context.Context, r *request) (*response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if r.overwrite && c.resendSets && !r.replayable {
		rr := *r
		rr.replayable = true
		r = &rr
	}
	set := c.eps.Load()
	n := len(set.list)
	buf := c.getBuf(n)
	defer c.putBuf(buf)
	tried := buf.tried
	c.nRequests.Add(1)
	c.budget.Deposit()

	var errs []error
	attempts := 0
	free := false // the next attempt does not take a retry token
	// upgraded: a plain read already sent again as a quorum read, or
	// one the monotonic-read guard leaves alone.
	upgraded := c.mono.on && ctx.Value(asAnsweredKey{}) != nil
	staleAt := -1 // the endpoint whose answer was stale, until retried
rounds:
	for round := 0; round < c.rounds; round++ {
		if round > 0 {
			// A request that cannot be resent gets here only when none
			// of its attempts may have reached a server.
			if err := c.backoff(ctx, round); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if errors.Is(err, ErrClosed) {
					return nil, ErrClosed
				}
				break // the deadline leaves no time for another round
			}
			clear(tried)
		}
		for {
			now := c.clk.Now()
			cands := c.candidates(set, tried, r.kind, buf.cands[:0], now)
			if len(cands) == 0 {
				if staleAt >= 0 {
					// No other endpoint for the quorum read: the
					// one that answered stale will do, through raft.
					tried[staleAt], staleAt = false, -1
					continue
				}
				break // every endpoint tried in this round
			}
			if attempts > 0 {
				if !free && !c.budget.Withdraw(now) {
					errs = append(errs, ErrRetryBudgetExhausted)
					break rounds
				}
				c.nRetries.Add(1)
			}
			info := RequestInfo{Kind: r.kind, Attempt: attempts, Round: round}
			pick := c.selector.Select(info, cands)
			if pick < 0 || pick >= len(cands) {
				pick = 0
			}
			wasEjected := cands[pick].State == StateEjected
			ep := set.list[cands[pick].Index]
			tried[ep.view.Index] = true
			attempts++
			free = false
			more := len(cands) > 1 || round+1 < c.rounds

			timeout, capped := c.attemptTimeoutCapped(ctx, r, more)
			actx := c.hooks.attemptStart(ctx, ep, info)
			resp, sent, err, end := c.send(actx, ep, r, timeout, capped, now)
			elapsed := time.Duration(end - now)
			if err == nil {
				if stale, idx := c.isStale(r, resp); stale && !upgraded {
					c.hooks.attemptEnd(actx, ep, info, resp, nil, elapsed, true)
					// Monotonic-read guard: discard and ask again through
					// raft, preferably elsewhere. Not a health failure.
					c.recordOutcome(ep, info, nil, elapsed, end, wasEjected)
					resp.Body.Close()
					c.nStale.Add(1)
					errs = append(errs, &EndpointError{Endpoint: ep.raw, Err: &StaleReadError{Index: idx, Floor: c.mono.floor.Load()}})
					r = quorumUpgrade(r)
					upgraded, free = true, true
					staleAt = ep.view.Index
					continue
				}
				c.hooks.attemptEnd(actx, ep, info, resp, nil, elapsed, false)
				c.recordOutcome(ep, info, nil, elapsed, end, wasEjected)
				c.noteReturned(r, resp)
				return c.respond(ep, resp), nil
			}
			c.hooks.attemptEnd(actx, ep, info, nil, err, elapsed, false)
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			if c.closed.Load() {
				if sent && !r.replayable {
					// Close cut off a write that may have been applied.
					return nil, &OutcomeUnknownError{Endpoint: ep.raw, Err: ErrClosed}
				}
				return nil, ErrClosed
			}
			if perm, cause := permanent(err); perm {
				// Every other attempt would fail the same way: the
				// caller's policy or configuration is at fault, not the
				// member, whose health is left alone.
				errs = append(errs, &EndpointError{Endpoint: ep.raw, Err: cause})
				return nil, newClusterError(errs)
			}
			c.recordOutcome(ep, info, err, elapsed, end, wasEjected)
			if sent && !r.replayable && !errors.Is(err, ErrClusterIDMismatch) {
				return nil, outcomeUnknown(errs, ep.raw, r, err)
			}
			// A connection that could not be made to an endpoint that
			// was in use cost the server nothing and ejected the
			// endpoint: failing over from it is free.
			free = !wasEjected && classify(err) == health.Hard
			errs = append(errs, &EndpointError{Endpoint: ep.raw, Err: err})
		}
	}
	return nil, newClusterError(errs)
}

// send makes one attempt of r at ep, begun at clock time start, with
// in-flight bookkeeping, and returns the checked answer, whether the
// request may have reached the server, and the clock time of the headers
// or the failure. Time is read from the injected monotonic clock: one
// reading per attempt besides the one taken to choose the endpoint.
//
//lint:ignore ST1008 the error sits between the two facts it qualifies and the end time
func (c *httpClusterClient) send(ctx context.Context, ep *endpoint, r *request, timeout time.Duration, capped bool, start int64) (resp *http.Response, sent bool, err error, end int64) {
	st := ep.st
	watch := r.kind == KindWatch
	st.Begin(watch)
	if !r.replayable && !ep.verified.Load() && c.clusterID.Load() != nil {
		// Before a write that cannot be resent goes to an endpoint
		// not yet seen answering for this cluster, make sure it is
		// a member of it: a write to another cluster cannot be undone.
		err = c.verify(ctx, ep)
	}
	if err == nil {
		resp, sent, err = c.attempt(ctx, ep, r, timeout, capped)
		if err == nil {
			err = c.checkResponse(ep, resp)
		}
	}
	end = c.clk.Now()
	if !watch || err != nil {
		st.End(watch)
	} else if cb, ok := resp.Body.(*cappedBody); ok {
		// The watch counts until its long poll is closed.
		cb.onClose = func() { st.End(true) }
	} else {
		st.End(true)
	}
	c.logAttempt(ctx, ep, r, resp, err, time.Duration(end-start))
	if err != nil {
		resp = nil
	}
	return resp, sent, err, end
}

func (c *httpClusterClient) respond(ep *endpoint, resp *http.Response) *response {
	if b, ok := resp.Body.(*cappedBody); ok {
		// The attempt's state lives until the body is closed: keep the
		// answer there rather than in an allocation of its own.
		b.st.resp = response{Response: resp, endpoint: ep.raw}
		return &b.st.resp
	}
	return &response{Response: resp, endpoint: ep.raw}
}

// backoff waits before round (≥ 1) of a request. It returns an error
// without waiting when ctx's deadline would pass first.
func (c *httpClusterClient) backoff(ctx context.Context, round int) error {
	if c.backoffBase <= 0 {
		return nil
	}
	d := retry.Backoff{Base: c.backoffBase, Max: roundBackoffMax}.Pause(round, c.rnd)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return context.DeadlineExceeded
	}
	if d <= 0 {
		return nil
	}
	t := c.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closeCtx.Done():
		return ErrClosed
	case <-t.C():
		return nil
	}
}

// checkResponse checks the cluster ID and the status of an answer. It
// closes the body of an answer it rejects.
func (c *httpClusterClient) checkResponse(ep *endpoint, resp *http.Response) error {
	if id := headerValue(resp.Header, "X-Etcd-Cluster-Id"); id != "" {
		known := c.clusterID.Load()
		if known == nil {
			// The first answer: remember its cluster. (A separate
			// variable, so that later answers do not make id escape.)
			first := id
			if !c.clusterID.CompareAndSwap(nil, &first) {
				known = c.clusterID.Load()
			} else {
				known = &first
			}
		}
		if *known != id {
			resp.Body.Close()
			return &ClusterIDMismatchError{Endpoint: ep.raw, Want: *known, Got: id}
		}
		ep.verified.Store(true)
	}
	if idx, ok := headerIndex(resp.Header); ok && ep.st != nil {
		ep.st.NoteIndex(idx, c.noteSeen(idx), c.clk.Now())
	}
	if t := headerValue(resp.Header, "X-Raft-Term"); t != "" {
		if term, err := strconv.ParseUint(t, 10, 64); err == nil {
			c.noteTerm(term)
		}
	}
	if resp.StatusCode >= 500 {
		_, err := errorAnswer(resp.StatusCode, resp.Body)
		return err
	}
	return nil
}

func (c *httpClusterClient) logAttempt(ctx context.Context, ep *endpoint, r *request, resp *http.Response, err error, d time.Duration) {
	if c.logger == nil || !c.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{
		slog.String("endpoint", ep.raw),
		slog.String("method", r.method),
		slog.String("path", r.path),
		slog.Duration("duration", d),
	}
	if resp != nil {
		attrs = append(attrs, slog.Int("status", resp.StatusCode))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.logger.LogAttrs(ctx, slog.LevelDebug, "etcd attempt", attrs...)
}
