package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Hooks observes the calls a Client makes to the cluster and the attempts
// of each call, for metrics and tracing (Config.Hooks). The adapters in
// the module github.com/etcdv2/client/observability implement it for
// Prometheus and OpenTelemetry; health counters that are not tied to one
// call (ejections, readmission probes, retry-budget denials, requests in
// flight per endpoint) are in the client's Stats (see StatsReporter).
//
// A call is one request of the client to the cluster: one Get, Set,
// Delete, one long poll of a watcher, one members or auth request, and
// also the client's own requests (Sync, leader refreshes). A call makes
// one attempt or more, each at one endpoint (see Config.Rounds). Requests
// sent to one given endpoint outside the request loop are not calls: the
// client's readmission probes and liveness checks, the cluster ID check
// before a write to an endpoint not yet seen, and the per-member requests
// of the cluster health checks. A watch's call and attempt end when the
// long poll's headers come; the wait for the event is not part of them.
//
// The client calls the hooks synchronously on the goroutine that makes
// the call: CallStart, then for each attempt AttemptStart and AttemptEnd,
// then CallEnd, each exactly once and in that order, AttemptEnd before the
// next AttemptStart. A call that ends before its first attempt (its
// context already done, or the client closed) has CallStart and CallEnd
// only. The hooks run on the request path: they must be safe for
// concurrent use (calls run in parallel), return quickly and never block
// or do I/O (record into counters, start and end spans). They are given
// no credentials: neither the request's headers nor its body.
//
// CallStart and AttemptStart return the context the call or attempt goes
// on with: ctx itself, or ctx with values added (as
// go.opentelemetry.io/otel/trace.ContextWithSpan does), so that a span
// started there is the parent of what follows (the attempts; the
// transport's own spans). A returned context that would end otherwise
// than ctx does (a cancelable or otherwise detached one) is ignored and
// ctx is used, so that a hook cannot change when a call ends.
type Hooks interface {
	// CallStart is called when a call begins.
	CallStart(ctx context.Context, call CallInfo) context.Context
	// AttemptStart is called before an attempt is sent, with the context
	// CallStart returned.
	AttemptStart(ctx context.Context, attempt AttemptInfo) context.Context
	// AttemptEnd is called when an attempt has its answer (headers, and
	// the body for anything but a watch) or failed, with the context
	// AttemptStart returned.
	AttemptEnd(ctx context.Context, attempt AttemptInfo, end AttemptEnd)
	// CallEnd is called when a call returns, with the context CallStart
	// returned.
	CallEnd(ctx context.Context, call CallInfo, end CallEnd)
}

// CallInfo describes a call.
type CallInfo struct {
	// Kind is what the request is.
	Kind RequestKind
	// Method is the HTTP method, such as "GET".
	Method string
}

// AttemptInfo describes one attempt of a call.
type AttemptInfo struct {
	// Call is the call the attempt belongs to.
	Call CallInfo
	// Endpoint is the URL of the endpoint the attempt goes to, as in
	// Client.Endpoints. Endpoint URLs never carry user information (New
	// and SetEndpoints refuse them).
	Endpoint string
	// Attempt counts the attempts already made for this call (0 for the
	// first).
	Attempt int
	// Round counts the passes over the endpoints already completed for
	// this call (see Config.Rounds).
	Round int
	// Retry is Attempt > 0: an attempt after the first.
	Retry bool
}

// AttemptEnd is how an attempt ended.
type AttemptEnd struct {
	// Class says how it ended.
	Class AttemptClass
	// Err is nil when the endpoint answered with a status below 500, even
	// with an etcd error such as "key not found", and when the answer was
	// stale (AttemptStale); otherwise it says what went wrong.
	Err error
	// StatusCode is the HTTP status of the answer, or 0 when none came or
	// it is not known (a 5xx decoded as an etcd error).
	StatusCode int
	// Latency is the time from the start of the attempt to its answer
	// (with the body, for anything but a watch) or to its failure.
	Latency time.Duration
}

// CallEnd is how a call ended.
type CallEnd struct {
	// Class says how it ended.
	Class CallClass
	// Err is the error the client returns to the caller at this level:
	// nil when an endpoint answered with a status below 500 (an etcd
	// error such as "key not found" is decoded from that answer later).
	Err error
	// StatusCode is the HTTP status of the answer, 0 when there is none.
	StatusCode int
	// Attempts is the number of attempts the call made.
	Attempts int
	// Duration is the time from the start of the call to its end.
	Duration time.Duration
}

// AttemptClass says how an attempt ended. Its String is meant as a metric
// label value.
type AttemptClass uint8

// The classes of attempt outcomes.
const (
	// AttemptOK is an answer with a status below 500 (etcd errors such as
	// "key not found" included).
	AttemptOK AttemptClass = iota
	// AttemptStale is an answer discarded because it was older than what
	// the client had already returned (Config.MonotonicReads); the call
	// goes on as a quorum read.
	AttemptStale
	// AttemptCanceled is an attempt ended by the caller: its context
	// ended, its deadline cut the attempt short, or the client was closed.
	AttemptCanceled
	// AttemptRefused is an attempt that every endpoint would fail the same
	// way, so that the call ends at once: a redirect refused by the
	// client's policy, an answer larger than Config.MaxResponseBytes, a
	// server certificate that fails verification.
	AttemptRefused
	// AttemptConnect is a connection that could not be made.
	AttemptConnect
	// AttemptTimeout is an attempt that got no response headers within the
	// per-attempt timeout from a member that did not answer a liveness
	// check either (or was not checked).
	AttemptTimeout
	// AttemptRaftStalled is an attempt timeout of a member that still
	// answered a liveness check: raft held the request (an election, a
	// slow commit).
	AttemptRaftStalled
	// AttemptNoLeader is a 5xx answer saying that the member has no
	// leader (etcd errors 300 and 301, HTTP 503).
	AttemptNoLeader
	// AttemptServerError is any other 5xx answer.
	AttemptServerError
	// AttemptClusterMismatch is an answer from a member of another cluster.
	AttemptClusterMismatch
	// AttemptBroken is any other failure: a connection broken after the
	// request was written, a body that stalled or was cut short.
	AttemptBroken
)

// String returns the class's name, such as "no_leader".
func (c AttemptClass) String() string {
	switch c {
	case AttemptOK:
		return "ok"
	case AttemptStale:
		return "stale"
	case AttemptCanceled:
		return "canceled"
	case AttemptRefused:
		return "refused"
	case AttemptConnect:
		return "connect"
	case AttemptTimeout:
		return "timeout"
	case AttemptRaftStalled:
		return "raft_stalled"
	case AttemptNoLeader:
		return "no_leader"
	case AttemptServerError:
		return "server_error"
	case AttemptClusterMismatch:
		return "cluster_mismatch"
	case AttemptBroken:
		return "broken"
	}
	return "unknown"
}

// CallClass says how a call ended. Its String is meant as a metric label
// value.
type CallClass uint8

// The classes of call outcomes.
const (
	// CallOK is an answer with a status below 500 (etcd errors such as
	// "key not found" included).
	CallOK CallClass = iota
	// CallCanceled is a call ended by its context.
	CallCanceled
	// CallClosed is a call ended by Client.Close, or made after it.
	CallClosed
	// CallOutcomeUnknown is a write that may have been applied but was not
	// resent (ErrOutcomeUnknown).
	CallOutcomeUnknown
	// CallBudgetExhausted is a call that failed because the retry budget
	// refused a retry (ErrRetryBudgetExhausted).
	CallBudgetExhausted
	// CallFailed is any other failure: every attempt failed, or one
	// failed in a way that every endpoint would (a *ClusterError).
	CallFailed
)

// String returns the class's name, such as "outcome_unknown".
func (c CallClass) String() string {
	switch c {
	case CallOK:
		return "ok"
	case CallCanceled:
		return "canceled"
	case CallClosed:
		return "closed"
	case CallOutcomeUnknown:
		return "outcome_unknown"
	case CallBudgetExhausted:
		return "retry_budget"
	case CallFailed:
		return "failed"
	}
	return "unknown"
}

// JoinHooks returns Hooks that calls each of hooks in turn (nil ones are
// skipped), for instance to export metrics to Prometheus and traces to
// OpenTelemetry. The starts are called in order, each with the context
// the one before it returned; the ends in reverse order, each with the
// context the last start returned.
func JoinHooks(hooks ...Hooks) Hooks {
	var j joinedHooks
	for _, h := range hooks {
		if h != nil {
			j = append(j, h)
		}
	}
	return j
}

type joinedHooks []Hooks

func (j joinedHooks) CallStart(ctx context.Context, call CallInfo) context.Context {
	for _, h := range j {
		ctx = keepValues(ctx, h.CallStart(ctx, call))
	}
	return ctx
}

func (j joinedHooks) AttemptStart(ctx context.Context, attempt AttemptInfo) context.Context {
	for _, h := range j {
		ctx = keepValues(ctx, h.AttemptStart(ctx, attempt))
	}
	return ctx
}

func (j joinedHooks) AttemptEnd(ctx context.Context, attempt AttemptInfo, end AttemptEnd) {
	for i := len(j) - 1; i >= 0; i-- {
		j[i].AttemptEnd(ctx, attempt, end)
	}
}

func (j joinedHooks) CallEnd(ctx context.Context, call CallInfo, end CallEnd) {
	for i := len(j) - 1; i >= 0; i-- {
		j[i].CallEnd(ctx, call, end)
	}
}

// keepValues returns h if it ends exactly when ctx does (ctx with values
// added), and ctx otherwise.
func keepValues(ctx, h context.Context) context.Context {
	if h == nil || h.Done() != ctx.Done() {
		return ctx
	}
	return h
}

// hookSet is the client's Hooks; a nil *hookSet means none, and its
// methods then cost a nil check.
type hookSet struct {
	h Hooks
}

func newHookSet(h Hooks) *hookSet {
	if h == nil {
		return nil
	}
	return &hookSet{h: h}
}

// callState is what the hooks keep of a call in flight, in its context.
type callState struct {
	info     CallInfo
	attempts int
}

type callStateKey struct{}

func (c *httpClusterClient) doHooked(ctx context.Context, r *request) (*response, error) {
	h := c.hooks.h
	cs := &callState{info: CallInfo{Kind: r.kind, Method: r.method}}
	start := c.clk.Now()
	hctx := keepValues(ctx, h.CallStart(ctx, cs.info))
	hctx = context.WithValue(hctx, callStateKey{}, cs)
	resp, err := c.doRequest(hctx, r)
	end := CallEnd{Class: callClass(ctx, err), Err: err, Attempts: cs.attempts, Duration: time.Duration(c.clk.Now() - start)}
	if resp != nil {
		end.StatusCode = resp.StatusCode
	}
	h.CallEnd(hctx, cs.info, end)
	return resp, err
}

// attemptStart tells the hooks that an attempt of r at ep begins, and
// returns the context the attempt is sent with.
func (h *hookSet) attemptStart(ctx context.Context, ep *endpoint, info RequestInfo) context.Context {
	if h == nil {
		return ctx
	}
	return h.startAttempt(ctx, ep, info)
}

func (h *hookSet) startAttempt(ctx context.Context, ep *endpoint, info RequestInfo) context.Context {
	cs, _ := ctx.Value(callStateKey{}).(*callState)
	if cs == nil {
		return ctx // not a call made through do
	}
	cs.attempts++
	actx := keepValues(ctx, h.h.AttemptStart(ctx, attemptInfo(cs, ep, info)))
	if actx != ctx && actx.Value(callStateKey{}) != cs {
		// A context made afresh (that ends as ctx does): AttemptEnd
		// must still find the call.
		actx = context.WithValue(actx, callStateKey{}, cs)
	}
	return actx
}

// attemptEnd tells the hooks how the attempt that attemptStart began
// ended: with resp or err, after elapsed; stale says that resp was
// discarded as stale.
func (h *hookSet) attemptEnd(ctx context.Context, ep *endpoint, info RequestInfo, resp *http.Response, err error, elapsed time.Duration, stale bool) {
	if h == nil {
		return
	}
	h.endAttempt(ctx, ep, info, resp, err, elapsed, stale)
}

func (h *hookSet) endAttempt(ctx context.Context, ep *endpoint, info RequestInfo, resp *http.Response, err error, elapsed time.Duration, stale bool) {
	cs, _ := ctx.Value(callStateKey{}).(*callState)
	if cs == nil {
		return
	}
	class := attemptClass(ctx, err)
	if perm, cause := permanent(err); perm {
		err = cause // without the client's internal mark
	}
	end := AttemptEnd{Class: class, Err: err, Latency: elapsed}
	if stale {
		end.Class = AttemptStale
	}
	if resp != nil {
		end.StatusCode = resp.StatusCode
	} else if he := (*HTTPError)(nil); errors.As(err, &he) {
		end.StatusCode = he.StatusCode
	}
	h.h.AttemptEnd(ctx, attemptInfo(cs, ep, info), end)
}

func attemptInfo(cs *callState, ep *endpoint, info RequestInfo) AttemptInfo {
	return AttemptInfo{Call: cs.info, Endpoint: ep.raw, Attempt: info.Attempt, Round: info.Round, Retry: info.Attempt > 0}
}

// attemptClass classifies the failure err of an attempt made under ctx.
func attemptClass(ctx context.Context, err error) AttemptClass {
	if err == nil {
		return AttemptOK
	}
	if ctx.Err() != nil || errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return AttemptCanceled
	}
	if perm, _ := permanent(err); perm {
		return AttemptRefused
	}
	if errors.Is(err, ErrClusterIDMismatch) {
		return AttemptClusterMismatch
	}
	var te *AttemptTimeoutError
	if errors.As(err, &te) {
		switch {
		case te.byDeadline:
			return AttemptCanceled
		case te.MemberAlive:
			return AttemptRaftStalled
		}
		return AttemptTimeout
	}
	var ee Error
	if errors.As(err, &ee) {
		if ee.Code == ErrorCodeRaftInternal || ee.Code == ErrorCodeLeaderElect {
			return AttemptNoLeader
		}
		return AttemptServerError
	}
	var he *HTTPError
	if errors.As(err, &he) {
		if he.StatusCode == http.StatusServiceUnavailable {
			return AttemptNoLeader
		}
		return AttemptServerError
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return AttemptConnect
	}
	return AttemptBroken
}

// callClass classifies the error err of a call made with ctx.
func callClass(ctx context.Context, err error) CallClass {
	switch {
	case err == nil:
		return CallOK
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return CallCanceled
	case errors.Is(err, ErrOutcomeUnknown):
		return CallOutcomeUnknown
	case errors.Is(err, ErrClosed):
		return CallClosed
	case errors.Is(err, ErrRetryBudgetExhausted):
		return CallBudgetExhausted
	}
	return CallFailed
}
