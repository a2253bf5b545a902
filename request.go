package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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

// errorBodyLimit bounds how much of a 5xx body is read to describe it.
const errorBodyLimit = 64 << 10

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
		if HealthState(st.state.Load()) == StateEjected {
			if ejected < 0 || st.ejectedUntil.Load() < set.list[ejected].st.ejectedUntil.Load() {
				ejected = i
			}
			continue
		}
		if needLeader && st.noLeader.Load() {
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
			if !tried[i] && HealthState(e.st.state.Load()) != StateEjected {
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

// do sends r to the cluster and returns the first answer whose status is
// below 500.
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
// sent again as a quorum read. When ctx ends, do returns exactly
// ctx.Err().
func (c *httpClusterClient) do(ctx context.Context, r *request) (*response, error) {
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
	upgraded := false
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
			resp, sent, err, end := c.send(ctx, ep, r, timeout, capped, now)
			elapsed := time.Duration(end - now)
			if err == nil {
				if stale, idx := c.isStale(r, resp); stale && !upgraded {
					// Monotonic-read guard: discard and ask again through
					// raft, preferably elsewhere. Not a health failure.
					c.recordOutcome(ep, info, nil, elapsed, end, wasEjected)
					resp.Body.Close()
					c.nStale.Add(1)
					errs = append(errs, &EndpointError{Endpoint: ep.raw, Err: &StaleReadError{Index: idx, Floor: c.floor.Load()}})
					r = quorumUpgrade(r)
					upgraded, free = true, true
					staleAt = ep.view.Index
					continue
				}
				c.recordOutcome(ep, info, nil, elapsed, end, wasEjected)
				c.noteReturned(r, resp)
				return c.respond(ep, r, resp), nil
			}
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
			free = !wasEjected && classify(err) == failHard
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
	st.begin(watch)
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
		st.end(watch)
	} else if cb, ok := resp.Body.(*cappedBody); ok {
		// The watch counts until its long poll is closed.
		cb.onClose = func() { st.watches.Add(-1) }
	} else {
		st.watches.Add(-1)
	}
	c.logAttempt(ctx, ep, r, resp, err, time.Duration(end-start))
	if err != nil {
		resp = nil
	}
	return resp, sent, err, end
}

func (c *httpClusterClient) respond(ep *endpoint, _ *request, resp *http.Response) *response {
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

// checkResponse checks the cluster ID and the status of an answer. It
// closes the body of an answer it rejects.
func (c *httpClusterClient) checkResponse(ep *endpoint, resp *http.Response) error {
	if id := resp.Header.Get("X-Etcd-Cluster-Id"); id != "" {
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
		ep.st.noteIndex(idx, c.noteSeen(idx), c.clk.Now())
	}
	if t := resp.Header.Get("X-Raft-Term"); t != "" {
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

// decodeErrorBody turns an error answer into an Error when the body is an
// etcd key error, and into an *HTTPError otherwise.
func decodeErrorBody(status int, b []byte) error {
	var v struct {
		Code    *int   `json:"errorCode"`
		Message string `json:"message"`
		Cause   string `json:"cause"`
		Index   uint64 `json:"index"`
	}
	if err := json.Unmarshal(b, &v); err == nil {
		if v.Code != nil {
			return Error{Code: *v.Code, Message: v.Message, Cause: v.Cause, Index: v.Index}
		}
		if v.Message != "" {
			return &HTTPError{StatusCode: status, Message: v.Message}
		}
	}
	msg := string(bytes.TrimSpace(b))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return &HTTPError{StatusCode: status, Message: msg}
}

// attempt sends r to one endpoint, following redirects, within the
// per-attempt timeout given (0: none; capped says that the caller's
// deadline cut it short), and returns the answer with its body capped.
// sent reports whether the request may have reached a server.
func (c *httpClusterClient) attempt(ctx context.Context, ep *endpoint, r *request, timeout time.Duration, capped bool) (resp *http.Response, sent bool, err error) {
	// One allocation holds what the attempt needs until its body is
	// closed: the cancel func, the timer, the URL and the body wrapper.
	st := &attemptState{timeout: timeout, capped: capped}
	actx, cancel := context.WithCancelCause(ctx)
	st.cancel = cancel
	c.inflight.add(st)
	if c.closed.Load() {
		// Close may have run before the add: it would have missed us.
		cancel(ErrClosed)
	}
	live := actx // the attempt's context, without the trace made below
	var wrote *atomic.Bool
	if !r.replayable {
		wrote = new(atomic.Bool)
		if capped {
			// Until the request is written another endpoint may still
			// be tried, so it gets only its share of the deadline; once
			// it may have been written there is nowhere else to send
			// it, and it gets its whole timeout, up to the deadline.
			share := timeout
			st.unwritten = time.AfterFunc(share, func() {
				if !wrote.Load() {
					st.cancel(&AttemptTimeoutError{After: share, byDeadline: true})
				}
			})
			timeout, _ = c.attemptTimeoutCapped(ctx, r, false)
			st.timeout, st.capped = timeout, false
		}
		st.trace.WroteRequest = func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
				if st.unwritten != nil {
					st.unwritten.Stop()
				}
			}
		}
	}
	check, every := c.livenessCheck(r, timeout, st.capped)
	st.timed = timeout > 0 && every == 0
	if st.timed {
		st.timer = time.AfterFunc(timeout, st.expire)
	}
	if check > 0 {
		st.checkAfter = check
		st.check = time.AfterFunc(check, func() { c.checkLive(live, st, ep, check, every) })
	}
	if c.headerTimeout == 0 && timeout > 0 && timeout < newConnBudget && !st.capped {
		// The adaptive timeout is learnt on warm connections: a new
		// one gets its own budget for dialing and its handshake.
		st.trace.GetConn = func(string) { st.connecting() }
		st.trace.GotConn = func(httptrace.GotConnInfo) { st.connected() }
	}
	if st.trace.WroteRequest != nil || st.trace.GetConn != nil {
		actx = httptrace.WithClientTrace(actx, &st.trace)
	}
	mayHaveSent := func() bool { return wrote != nil && wrote.Load() }

	u := &st.url
	u.Scheme = ep.url.Scheme
	u.Host = ep.url.Host
	u.Path = ep.url.Path + r.path
	u.RawQuery = r.query
	if r.rawPath != "" {
		u.RawPath = ep.url.EscapedPath() + r.rawPath
	}
	for via := 1; ; via++ {
		req := c.newHTTPRequest(actx, r, u)
		resp, err = c.transport.RoundTrip(req)
		if err != nil {
			err = attemptError(actx, err)
			st.release(c)
			return nil, mayHaveSent(), err
		}
		if resp.StatusCode < 300 || resp.StatusCode >= 400 {
			break
		}
		// A redirect: the only one a current etcd sends is Go's path
		// cleaning, with a relative Location; resolve and follow it,
		// but never to another origin. None of these failures would
		// go otherwise on another attempt (see permanent).
		loc, lerr := resp.Location()
		resp.Body.Close()
		if lerr != nil {
			st.release(c)
			return nil, mayHaveSent(), &permanentError{fmt.Errorf("client: redirect (HTTP %d) without a usable Location: %w", resp.StatusCode, lerr)}
		}
		if cerr := c.checkRedirect(via); cerr != nil {
			st.release(c)
			return nil, mayHaveSent(), &permanentError{cerr}
		}
		if via >= maxRedirects {
			st.release(c)
			return nil, mayHaveSent(), ErrTooManyRedirects
		}
		if !sameOrigin(ep.url, loc) {
			st.release(c)
			return nil, mayHaveSent(), &permanentError{fmt.Errorf("%w: from %s to %s://%s", ErrCrossOriginRedirect, ep.raw, loc.Scheme, loc.Host)}
		}
		u = loc
	}
	if st.check != nil {
		st.check.Stop()
	}
	if !st.phase.CompareAndSwap(phaseWaiting, phaseAnswered) || st.timed && !st.timer.Stop() {
		// The timeout fired, or a liveness check gave the attempt
		// up, just as the headers came.
		resp.Body.Close()
		st.release(c)
		return nil, true, attemptError(actx, context.Canceled)
	}
	st.body = cappedBody{rc: resp.Body, remaining: c.maxBody, limit: c.maxBody, st: st, c: c}
	resp.Body = &st.body
	if r.kind != KindWatch {
		if err := c.bufferBody(st, c.bodyIdleTimeout()); err != nil {
			err = attemptError(actx, err)
			st.body.Close()
			return nil, true, err
		}
	}
	return resp, true, nil
}

// attemptState is what one attempt holds until its answer's body is
// closed.
type attemptState struct {
	cancel context.CancelCauseFunc
	timer  *time.Timer
	// capped is set when the caller's deadline cut the timeout short.
	capped bool
	// check, for a request that goes through raft, starts the liveness
	// check of its endpoint.
	check *time.Timer
	// unwritten, for a request that cannot be resent, gives it up at
	// its share of the caller's deadline unless it has been written.
	unwritten *time.Timer
	// timed says that timer bounds the wait for the headers (plain
	// reads are bounded by their liveness checks instead).
	timed bool
	// checkAfter is when check fires, counted from the start or from the
	// connection.
	checkAfter time.Duration
	// conn is connNone until the transport looks for a connection
	// (connGetting), then connGot; see connecting.
	conn atomic.Int32
	// trace holds the attempt's httptrace hooks, if any.
	trace httptrace.ClientTrace
	// phase is phaseWaiting until the headers come (phaseAnswered) or a
	// liveness check gives the attempt up (phaseGivenUp).
	phase atomic.Int32
	// alive is set when a liveness check found the member answering: if
	// the attempt then times out, raft held it, not a hung member.
	alive   atomic.Bool
	timeout time.Duration
	// idle is the body's idle timeout, once the headers came.
	idle time.Duration
	url  url.URL
	body cappedBody
	// resp is the answer handed to the caller.
	resp response
	// shard is the part of the client's in-flight set it is in.
	shard *inflightShard
}

const (
	phaseWaiting = iota
	phaseAnswered
	phaseGivenUp
)

// newConnBudget is how long an attempt with the adaptive per-attempt
// timeout may take to get a connection when it has to make one (dial and
// TLS handshake): the adaptive timeout is learnt on warm connections, and
// a burst of handshakes on a loaded member takes longer than it. It is
// bounded, so that a member that accepts connections but never completes
// a handshake (a stopped TLS member) is still given up on.
const newConnBudget = DefaultHeaderTimeoutPerRequest

const (
	connNone = iota
	connGetting
	connGot
)

// connecting runs when the transport starts looking for a connection for
// the attempt (httptrace GetConn): until it has one, the attempt's timer
// counts newConnBudget instead of the per-attempt timeout and the liveness
// check waits. A warm connection comes at once (connected), so that only a
// new one uses the budget. Only the first connection of an attempt counts:
// a redirect's is within the timeout.
func (st *attemptState) connecting() {
	if !st.conn.CompareAndSwap(connNone, connGetting) {
		return
	}
	if st.check != nil {
		st.check.Stop()
	}
	if st.timer == nil {
		st.timer = time.AfterFunc(newConnBudget, st.expire)
	} else {
		st.timer.Reset(newConnBudget)
	}
}

// connected runs when the transport hands the attempt a connection
// (httptrace GotConn, on the goroutine that ran connecting): the timer and
// the liveness check start counting from here.
func (st *attemptState) connected() {
	if !st.conn.CompareAndSwap(connGetting, connGot) {
		return
	}
	if st.timed {
		st.timer.Reset(st.timeout)
	} else {
		st.timer.Stop()
	}
	if st.check != nil {
		st.check.Reset(st.checkAfter)
	}
}

// expire cancels the attempt when its per-attempt timeout passes, or,
// once the headers came, when its body stalled for the idle timeout.
func (st *attemptState) expire() {
	if st.phase.Load() == phaseAnswered {
		st.cancel(stalledError(st.idle))
		return
	}
	if st.conn.Load() == connGetting {
		// No connection within newConnBudget.
		if st.phase.CompareAndSwap(phaseWaiting, phaseGivenUp) {
			st.cancel(&AttemptTimeoutError{After: newConnBudget})
		}
		return
	}
	st.cancel(&AttemptTimeoutError{After: st.timeout, MemberAlive: st.alive.Load(), byDeadline: st.capped})
}

// release frees what the attempt holds. It is called once.
func (st *attemptState) release(c *httpClusterClient) {
	if st.timer != nil {
		st.timer.Stop()
	}
	if st.check != nil {
		st.check.Stop()
	}
	if st.unwritten != nil {
		st.unwritten.Stop()
	}
	c.inflight.remove(st)
	st.cancel(nil)
}

// checkLive runs when an attempt has waited its liveness-check time for
// headers (see livenessCheck). The endpoint is asked for /version, which a
// member answers from memory, within after. If that goes unanswered too,
// the member is hung (stopped, black-holed): the attempt ends as timed out
// and counts toward ejecting it. If it answers, the member is alive and
// busy (raft holds a write: an election, a slow commit; a large read is
// being built): the attempt keeps waiting, and with every > 0 is checked
// again after every.
func (c *httpClusterClient) checkLive(actx context.Context, st *attemptState, ep *endpoint, after time.Duration, every time.Duration) {
	c.setMu.Lock()
	if c.closed.Load() || actx.Err() != nil {
		c.setMu.Unlock()
		return
	}
	c.bg.Add(1)
	c.setMu.Unlock()
	go func() {
		defer c.bg.Done()
		resp, _, err := c.attempt(actx, ep, clusterGet("/version"), after, false)
		alive := err == nil
		if alive {
			_ = finishBody(resp.Body)
			st.alive.Store(true)
		}
		if actx.Err() != nil {
			return
		}
		if alive {
			if every > 0 && st.phase.Load() == phaseWaiting {
				st.check.Reset(every)
			}
			if every == 0 && ep.st != nil && st.phase.Load() == phaseWaiting {
				// Raft holds a request of a live member: until a
				// request goes through it again, send those that
				// need a leader elsewhere first (see candidates).
				// A write that cannot be resent goes on waiting.
				ep.st.noLeader.Store(true)
			}
			return
		}
		waited := after
		if every > 0 {
			waited = every // the read's timeout: half waiting, half checking
		}
		if st.phase.CompareAndSwap(phaseWaiting, phaseGivenUp) {
			st.cancel(&AttemptTimeoutError{After: waited, MemberAlive: alive})
		}
	}()
}

// inflightShards spreads the in-flight set over locks, so that concurrent
// requests rarely meet on one.
const inflightShards = 16

// inflightSet holds the attempts in flight, so that Close can cancel them
// all. Adding and removing allocate nothing once a shard's map has grown.
type inflightSet struct {
	next   atomic.Uint32
	shards [inflightShards]inflightShard
}

type inflightShard struct {
	mu sync.Mutex
	m  map[*attemptState]struct{}
}

func (f *inflightSet) add(st *attemptState) {
	sh := &f.shards[f.next.Add(1)%inflightShards]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[*attemptState]struct{})
	}
	sh.m[st] = struct{}{}
	sh.mu.Unlock()
	st.shard = sh
}

func (f *inflightSet) remove(st *attemptState) {
	sh := st.shard
	sh.mu.Lock()
	delete(sh.m, st)
	sh.mu.Unlock()
}

// cancelAll cancels every attempt in flight with cause.
func (f *inflightSet) cancelAll(cause error) {
	for i := range f.shards {
		sh := &f.shards[i]
		sh.mu.Lock()
		for st := range sh.m {
			st.cancel(cause)
		}
		sh.mu.Unlock()
	}
}

// attemptError replaces the context error of a request cancelled by the
// per-attempt timeout or by Close with that cause.
func attemptError(actx context.Context, err error) error {
	if cause := context.Cause(actx); cause != nil && cause != context.Canceled && cause != context.DeadlineExceeded {
		var te *AttemptTimeoutError
		if errors.As(cause, &te) || errors.Is(cause, ErrClosed) || errors.Is(cause, ErrResponseStalled) {
			return cause
		}
	}
	return err
}

func (c *httpClusterClient) newHTTPRequest(ctx context.Context, r *request, u *url.URL) *http.Request {
	var h http.Header
	switch r.contentType {
	case "":
		h = c.headers.plain
	case formContentType:
		h = c.headers.form
	}
	if h == nil {
		h = c.headerSet(r.contentType)
	}
	req := &http.Request{
		Method:     r.method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       u.Host,
	}
	if len(r.body) > 0 {
		body := r.body
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	printcURL(r, u)
	return req.WithContext(ctx)
}

// cappedBody limits a response body to Config.MaxResponseBytes and
// releases the attempt's resources when closed.
type cappedBody struct {
	rc        io.ReadCloser
	remaining int64 // negative: no cap
	limit     int64
	st        *attemptState
	c         *httpClusterClient
	// onClose, when set, runs after the attempt is released.
	onClose func()
	closed  bool
	// buffered is set once the whole body is in chunks (every answer but
	// a watch's); ci and off are the read position in them.
	buffered bool
	chunks   [][]byte
	first    [1][]byte
	ci, off  int
	// drain is scratch space for finishBody.
	drain [64]byte
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.buffered {
		for b.ci < len(b.chunks) {
			if ch := b.chunks[b.ci]; b.off < len(ch) {
				n := copy(p, ch[b.off:])
				b.off += n
				return n, nil
			}
			b.ci, b.off = b.ci+1, 0
		}
		return 0, io.EOF
	}
	return b.readCapped(p)
}

// readCapped reads from the connection within the size cap.
func (b *cappedBody) readCapped(p []byte) (int, error) {
	if b.remaining < 0 {
		return b.rc.Read(p)
	}
	if b.remaining == 0 {
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, b.limit)
		}
		return 0, err
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.rc.Read(p)
	b.remaining -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.rc.Close()
	for i, ch := range b.chunks {
		b.c.chunks.Put((*[bodyChunk]byte)(ch[:bodyChunk]))
		b.chunks[i] = nil
	}
	b.chunks = nil
	clear(b.first[:])
	b.st.release(b.c)
	if b.onClose != nil {
		b.onClose()
	}
	return err
}

// drainLimit is how much of a body finishBody reads past what the caller
// decoded (a JSON decoder leaves the final newline unread).
const drainLimit = 4 << 10

// finishBody reads what is left of a body whose content has been decoded,
// up to drainLimit, and closes it, so that the connection is reused. Use
// it only on a body whose end is near: never on an unfinished watch.
func finishBody(body io.ReadCloser) error {
	if b, ok := body.(*cappedBody); ok {
		for n := 0; n < drainLimit; {
			k, err := b.Read(b.drain[:])
			n += k
			if err != nil {
				break
			}
		}
		return b.Close()
	}
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	return body.Close()
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

// sharedHeaders are request headers built once and sent with every
// request that needs exactly them. net/http's Transport does not modify a
// request's headers, so they can be shared; with another transport, which
// might, they are not (see New).
type sharedHeaders struct {
	plain, form http.Header
}

func newSharedHeaders(authHeader string) sharedHeaders {
	plain := http.Header{}
	form := http.Header{"Content-Type": {formContentType}}
	if authHeader != "" {
		plain["Authorization"] = []string{authHeader}
		form["Authorization"] = []string{authHeader}
	}
	return sharedHeaders{plain: plain, form: form}
}

// headerSet builds the headers of one request, for transports that may
// change them.
func (c *httpClusterClient) headerSet(contentType string) http.Header {
	h := make(http.Header, 2)
	if contentType != "" {
		h["Content-Type"] = []string{contentType}
	}
	if c.creds.header != "" {
		h["Authorization"] = []string{c.creds.header}
	}
	return h
}
