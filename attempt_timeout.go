package client

import (
	"context"
	"time"
)

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
