package client

// The attempt: one HTTP exchange with one endpoint, with its timers (the
// per-attempt timeout, the budget of a new connection, the liveness check),
// redirects and the body cap (body.go reads the body). do (request.go)
// makes one attempt per endpoint it tries.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

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
	live := actx // the attempt's context, without the trace made below
	// trace holds the attempt's httptrace hooks, if it needs any (not a
	// plain read's).
	var trace *httptrace.ClientTrace
	var wrote *atomic.Bool
	// getConn is set when the transport asks for a connection: one that
	// never does runs no httptrace hooks (a Config.Transport not built
	// on net/http's), and wrote then says nothing.
	var getConn *atomic.Bool
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
		trace = &httptrace.ClientTrace{}
		getConn = new(atomic.Bool)
		trace.GetConn = func(string) { getConn.Store(true) }
		trace.WroteRequest = func(info httptrace.WroteRequestInfo) {
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
	if check > 0 && ep.st != nil {
		st.mark.Store(ep.st.AnswerMark())
	}
	switch {
	case st.timed:
		st.timer = time.AfterFunc(timeout, st.expire)
		if check > 0 {
			st.checkAfter = check
			st.check = time.AfterFunc(check, func() { c.checkLive(live, st, ep, check, every) })
		}
	case check > 0:
		// A plain read (see livenessCheck): the client's watchdog runs
		// its liveness checks until the headers come, then counts the
		// body's idle time (readBody). A new connection needs no budget
		// of its own here: the read has no timeout, and a check finds
		// a member that does not complete handshakes out, its own
		// request being bounded by newConnBudget.
		st.checks = true
		st.c, st.live, st.ep, st.every = c, live, ep, every
		st.checkAfter = check
		st.due.Store(dueStampStart)
	}
	if st.checks {
		c.watchdog.add(st)
	} else {
		c.inflight.add(st)
	}
	if c.closed.Load() {
		// Close may have run before the add: it would have missed us.
		cancel(ErrClosed)
	}
	if st.timed && c.headerTimeout == 0 && !st.capped && (timeout < newConnBudget || check > 0) {
		// The adaptive timeout and the liveness check are learnt on
		// warm connections: a new one gets its own budget for dialing
		// and its handshake.
		if trace == nil {
			trace = &httptrace.ClientTrace{}
		}
		trace.GetConn = func(string) {
			if getConn != nil {
				getConn.Store(true)
			}
			st.connecting()
		}
		trace.GotConn = func(httptrace.GotConnInfo) { st.connected() }
	}
	if trace != nil {
		actx = httptrace.WithClientTrace(actx, trace)
	}
	mayHaveSent := func() bool {
		return wrote != nil && (wrote.Load() || !getConn.Load() && !dialFailed(err))
	}

	u := &st.url
	u.Scheme = ep.url.Scheme
	u.Host = ep.url.Host
	if r.uri != "" && ep.url.Path == "" {
		u.Path, u.RawPath, u.Opaque = r.path, r.rawPath, r.uri
	} else {
		u.Path = ep.url.Path + r.path
		u.RawQuery = r.query
		if r.rawPath != "" {
			u.RawPath = ep.url.EscapedPath() + r.rawPath
		}
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
		if err := c.readBody(st, r.keys, resp.StatusCode, c.bodyIdleTimeout()); err != nil {
			err = attemptError(actx, err)
			st.body.Close()
			return nil, true, err
		}
	}
	return resp, true, nil
}

// attemptState is what one attempt holds until its answer's body is
// closed. It is allocated for every attempt: its small fields are kept
// together, and the body's scratch space small, so that it fits the
// allocator's 512-byte size class (TestAttemptStateSize).
type attemptState struct {
	cancel context.CancelCauseFunc
	timer  *time.Timer
	// check, for a request that goes through raft, starts the liveness
	// check of its endpoint.
	check *time.Timer
	// unwritten, for a request that cannot be resent, gives it up at
	// its share of the caller's deadline unless it has been written.
	unwritten *time.Timer
	// checkAfter is when check fires, counted from the start or from the
	// connection.
	checkAfter time.Duration
	// capped is set when the caller's deadline cut the timeout short.
	capped bool
	// timed says that timer bounds the wait for the headers (plain
	// reads are bounded by their liveness checks instead).
	timed bool
	// checks, for a plain read, says that the client's watchdog runs its
	// liveness checks (checkLive of ep in live, every every) until the
	// headers come, then its body's idle timeout; timer is not used.
	checks bool
	c      *httpClusterClient
	live   context.Context
	ep     *endpoint
	every  time.Duration
	// due, for a plain read, is when (monoNow) its next liveness check is
	// due until the headers come (0 while one runs), then when data of
	// its body last came; or one of the dueStamp values, for the
	// watchdog to fill in when it next looks (so that an attempt need
	// not read the clock). idleArmed says that the body's idle time is
	// counted, until the body was read. dueMu orders the writes of due
	// by a check (rearm) and by the headers (armIdle), and the end of the
	// body with the watchdog's giving it up.
	due       atomic.Int64
	dueMu     sync.Mutex
	idleArmed atomic.Bool
	// alive is set when a liveness check found the member answering: if
	// the attempt then times out, raft held it, not a hung member.
	alive atomic.Bool
	// mark is the endpoint's AnswerMark when the attempt began or was
	// last checked (see checkLive).
	mark atomic.Int64
	// conn is connNone until the transport looks for a connection
	// (connGetting), then connGot; see connecting.
	conn atomic.Int32
	// phase is phaseWaiting until the headers come (phaseAnswered) or a
	// liveness check gives the attempt up (phaseGivenUp).
	phase   atomic.Int32
	timeout time.Duration
	// idle is the body's idle timeout, once the headers came.
	idle time.Duration
	url  url.URL
	body cappedBody
	// resp is the answer handed to the caller.
	resp response
	// slot is the attempt's place in the client's in-flight set.
	slot *atomic.Pointer[attemptState]
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
	connReleased
)

// connecting runs when the transport starts looking for a connection for
// the attempt (httptrace GetConn): until it has one, the liveness check
// waits and the attempt's timer counts newConnBudget instead of the
// per-attempt timeout, which then starts afresh. A warm connection comes at once (connected), so that only a
// new one uses the budget. Only the first connection of an attempt counts:
// a redirect's is within the timeout. The hooks touch only the timers and
// atomics, and do nothing once the attempt is released: a transport that
// wraps net/http's may compose them into a trace of its own that it
// shares between requests.
func (st *attemptState) connecting() {
	if !st.conn.CompareAndSwap(connNone, connGetting) {
		return
	}
	if st.check != nil {
		st.check.Stop()
	}
	st.timer.Reset(newConnBudget)
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

// watched says whether the watchdog has anything to do for a plain read:
// until its headers come, and while its body is read.
func (st *attemptState) watched() bool {
	return st.phase.Load() == phaseWaiting || st.idleArmed.Load()
}

// watchDue runs when the watchdog looks at a plain read (checks set), at
// now: it says whether the read needs watchFire, a liveness check being
// then marked as running.
func (st *attemptState) watchDue(now int64) bool {
	switch st.phase.Load() {
	case phaseWaiting:
		at := st.due.Load()
		if at == dueStampStart {
			// Counted from this look, which is after the attempt
			// began: the check is late by up to the time between
			// looks, never early.
			st.due.CompareAndSwap(dueStampStart, now+int64(st.checkAfter))
			return false
		}
		return at > 0 && now >= at && st.due.CompareAndSwap(at, 0)
	case phaseAnswered:
		if !st.idleArmed.Load() {
			return false
		}
		at := st.due.Load()
		if at == dueStampData {
			// As late as the data, or later: the idle timeout is never
			// counted from before it.
			st.due.CompareAndSwap(dueStampData, now)
			return false
		}
		return now-at >= int64(st.idle)
	}
	return false
}

// The values of attemptState.due that the watchdog replaces with the time
// of its look: dueStampStart, when the attempt began (plus the time to its
// liveness check); dueStampData, when data of the body came.
const (
	dueStampStart = -1
	dueStampData  = -2
)

// watchFire is what the watchdog does for a plain read that watchDue
// found due: before the headers, the liveness check; after, the end of
// an attempt whose body has been idle for the idle timeout.
func (st *attemptState) watchFire() {
	if st.phase.Load() == phaseWaiting {
		st.c.checkLive(st.live, st, st.ep, st.checkAfter, st.every)
		return
	}
	st.dueMu.Lock()
	if at := st.due.Load(); st.idleArmed.Load() && at != dueStampData && monoNow()-at >= int64(st.idle) {
		st.cancel(stalledError(st.idle))
	}
	st.dueMu.Unlock()
}

// armIdle starts the body's idle timeout, once the headers came.
func (st *attemptState) armIdle(idle time.Duration) {
	st.idle = idle
	switch {
	case st.checks:
		st.dueMu.Lock()
		st.due.Store(dueStampData)
		st.idleArmed.Store(true)
		st.dueMu.Unlock()
	case st.timer == nil:
		st.timer = time.AfterFunc(idle, st.expire)
	default:
		st.timer.Reset(idle) // stopped when the headers came
	}
}

// bodyData notes that data of the body came: the idle timeout starts
// again.
func (st *attemptState) bodyData() {
	if st.checks {
		st.due.Store(dueStampData)
	} else {
		st.timer.Reset(st.idle)
	}
}

// stopIdle ends the body's idle timeout, the body having been read.
func (st *attemptState) stopIdle() {
	if st.checks {
		st.dueMu.Lock()
		st.idleArmed.Store(false)
		st.dueMu.Unlock()
	} else if st.timer != nil {
		st.timer.Stop()
	}
}

// rearm makes the next liveness check of a plain read due after d,
// unless the headers came.
func (st *attemptState) rearm(d time.Duration) {
	st.dueMu.Lock()
	if st.phase.Load() == phaseWaiting {
		if st.ep.st != nil {
			st.mark.Store(st.ep.st.AnswerMark())
		}
		st.due.Store(monoNow() + int64(d))
	}
	st.dueMu.Unlock()
}

// release frees what the attempt holds. It is called once.
func (st *attemptState) release(c *httpClusterClient) {
	st.conn.Store(connReleased)
	if st.timer != nil {
		st.timer.Stop()
	}
	if st.check != nil {
		st.check.Stop()
	}
	if st.unwritten != nil {
		st.unwritten.Stop()
	}
	removeInflight(st)
	st.cancel(nil)
}

// checkLive runs when an attempt has waited its liveness-check time for
// headers (see livenessCheck). A member that answered another request of
// the client since the attempt began or was last checked is running; else
// the endpoint is asked for /version, which a member answers from memory,
// within after. If that goes unanswered too, the member is hung (stopped,
// black-holed): the attempt ends as timed out and counts toward ejecting
// it. If it answers, the member is alive and busy (raft holds a write: an
// election, a slow commit; a large read is being built): the attempt keeps
// waiting, and with every > 0 is checked again after every.
func (c *httpClusterClient) checkLive(actx context.Context, st *attemptState, ep *endpoint, after time.Duration, every time.Duration) {
	if actx.Err() != nil {
		return
	}
	if ep.st != nil && ep.st.AnswerMark() != st.mark.Load() {
		// Another request of the member was answered since the
		// attempt began or was last checked: it runs, and the check
		// need not ask.
		c.foundAlive(st, ep, every)
		return
	}
	c.goBackground(func(context.Context) {
		alive := c.askVersion(actx, ep, after, false) == nil
		if alive {
			st.alive.Store(true)
		}
		if actx.Err() != nil {
			return
		}
		if alive {
			c.foundAlive(st, ep, every)
			return
		}
		waited := after
		if every > 0 {
			waited = every // the read's timeout: half waiting, half checking
		}
		if st.phase.CompareAndSwap(phaseWaiting, phaseGivenUp) {
			st.cancel(&AttemptTimeoutError{After: waited, MemberAlive: alive})
		}
	})
}

// foundAlive is the end of a liveness check that found the member of an
// attempt still waiting for its headers running: with every > 0 (a plain
// read) the check is made again after every; otherwise raft holds the
// request.
func (c *httpClusterClient) foundAlive(st *attemptState, ep *endpoint, every time.Duration) {
	st.alive.Store(true)
	if every > 0 {
		st.rearm(every)
		return
	}
	if ep.st != nil && st.phase.Load() == phaseWaiting {
		// Raft holds a request of a live member: until a request goes
		// through it again, send those that need a leader elsewhere
		// first (see candidates). A write that cannot be resent goes
		// on waiting.
		ep.st.MarkNoLeader()
	}
}

// askVersion sends GET /version, which a member answers from memory, to
// ep within timeout: the one liveness request of the client, for the
// liveness check above and the probes (probe.go). Unless strict, any
// answer at all shows the member alive; strict, the answer must pass
// checkResponse and have a 2xx status, and the exchange is logged.
func (c *httpClusterClient) askVersion(ctx context.Context, ep *endpoint, timeout time.Duration, strict bool) error {
	r := clusterGet("/version")
	if strict {
		return c.getOnce(ctx, ep, r, timeout)
	}
	resp, _, err := c.attempt(ctx, ep, r, timeout, false)
	if err != nil {
		return err
	}
	_ = finishBody(resp.Body) // the headers came: it is alive
	return nil
}

// attemptError replaces the context error of a request cancelled by the
// per-attempt timeout or by Close with that cause.
// dialFailed reports whether err says that no connection was made (a
// dial error), so that nothing was sent, whatever the transport.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

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

// The per-attempt timeout and the liveness check.

// MinAdaptiveHeaderTimeout is the least per-attempt timeout the adaptive
// default (Config.HeaderTimeoutPerRequest zero) chooses.
const MinAdaptiveHeaderTimeout = 250 * time.Millisecond

// attemptTimeout is the per-attempt timeout of one attempt of r: the
// configured one, or the adaptive one for a replayable request when none
// is configured (a request that cannot be resent gets the fixed
// DefaultWriteHeaderTimeout, since its timeout is an unknown outcome and
// not a failover). Unless timeouts are off, while other endpoints remain
// untried it is at most half of the time left before ctx's deadline, so
// failover always gets a turn. Zero means no timeout.
func (c *httpClusterClient) attemptTimeout(ctx context.Context, r *request, more bool) time.Duration {
	t, _ := c.attemptTimeoutCapped(ctx, r, more)
	return t
}

// attemptTimeoutCapped is attemptTimeout, and reports whether the caller's
// deadline cut it short: a timeout of such an attempt says little about
// the endpoint, and does not count toward ejecting it.
func (c *httpClusterClient) attemptTimeoutCapped(ctx context.Context, r *request, more bool) (time.Duration, bool) {
	t := c.headerTimeout
	switch {
	case t < 0:
		return 0, false // no per-attempt timeout, as configured
	case t == 0 && r.replayable && throughRaft(r.kind):
		// Raft holds it while the cluster has no leader, and a proposal
		// a follower gets then is dropped: give up on it after about an
		// election's time, so that the retry comes after the election
		// (a hung member is found out sooner, by the liveness check).
		t = c.raftPatience
	case t == 0 && r.replayable:
		t = c.health.Timeout()
	case t == 0:
		// A write that cannot be resent: a timeout would only make its
		// outcome unknown, so it waits as long as the server itself may,
		// and a liveness check tells a hung member from a busy one (see
		// attempt).
		t = DefaultWriteHeaderTimeout
	}
	if more {
		if dl, ok := ctx.Deadline(); ok {
			half := time.Until(dl) / 2
			if half < time.Millisecond {
				half = time.Millisecond
			}
			if half < t {
				return half, true
			}
		}
	}
	return t, false
}

// throughRaft reports whether requests of kind k are answered only after a
// round of consensus, so that a healthy member may hold them for as long
// as a leader election takes.
func throughRaft(k RequestKind) bool { return k == KindWrite || k == KindQuorumRead }

// raftPatience is how long a replayable write or quorum read waits for a
// member that is alive (its liveness check passed) before it is tried
// elsewhere: longer than etcd takes to notice a lost leader and elect a
// new one with its default timings (1 s election timeout), during which
// followers drop proposals.
const raftPatience = 3 * time.Second

// livenessCheck returns how long an attempt of r waits for its headers
// before the client checks that the endpoint still answers at all (0 for no
// check) and, for a check that repeats while the member answers, its
// period (every). Checks are made only when the timeout is the client's
// own (Config.HeaderTimeoutPerRequest zero):
//
//   - a request that goes through raft is checked once, after the adaptive
//     timeout: a member holds it while the cluster elects a leader or
//     commits slowly, which is no reason to give up on it, let alone eject
//     it;
//   - a plain read is checked at half its timeout, with the other half for
//     the check, and again every timeout while the member answers: a member
//     builds a large listing before it sends the headers, which can take
//     far longer than the adaptive timeout, and is then merely slow, not
//     hung. The attempt then has no timeout of its own (see attempt),
//     but the share of the caller's deadline (capped).
//
// A member that no longer answers /version either is hung.
func (c *httpClusterClient) livenessCheck(r *request, timeout time.Duration, capped bool) (after, every time.Duration) {
	if c.headerTimeout != 0 {
		return 0, 0
	}
	if r.kind == KindRead && timeout > 0 {
		if capped {
			return timeout / 2, 0
		}
		return timeout / 2, timeout
	}
	if !throughRaft(r.kind) {
		return 0, 0
	}
	check := c.health.Timeout()
	if timeout > 0 && check >= timeout {
		return 0, 0
	}
	return check, 0
}
