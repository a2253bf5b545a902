package client

import (
	"context"
	"sync/atomic"
	"time"
)

// leaderTracker is what the client knows of the raft term, and whether a
// look-up of the leader runs; the leader itself is marked in the endpoint
// set (setLeader).
type leaderTracker struct {
	// maxTerm is the highest X-Raft-Term seen.
	maxTerm atomic.Uint64
	// refreshing is set while a leader refresh runs; refreshPending asks
	// it for one more look-up.
	refreshing     atomic.Bool
	refreshPending atomic.Bool
}

// noteTerm records a raft term seen in a response; a new term means an
// election happened, so the leader is looked up again.
func (c *httpClusterClient) noteTerm(term uint64) {
	if raise(&c.leader.maxTerm, term) >= term {
		return
	}
	if c.wantLeader {
		c.refreshLeaderAsync()
	}
}

// leaderRefreshTimeout bounds one background leader refresh.
const leaderRefreshTimeout = 5 * time.Second

// refreshLeaderAsync looks the leader up in the background. Requests made
// while a look-up runs are served by one more look-up after it, so a new
// term seen during a look-up is never missed.
func (c *httpClusterClient) refreshLeaderAsync() {
	c.leader.refreshPending.Store(true)
	if c.leader.refreshing.Swap(true) {
		return
	}
	started := c.goBackground(func(ctx context.Context) {
		for {
			for c.leader.refreshPending.Swap(false) {
				c.refreshLeaderRetrying(ctx)
			}
			c.leader.refreshing.Store(false)
			// A request may have come between the last Swap and the Store.
			if !c.leader.refreshPending.Load() || c.leader.refreshing.Swap(true) {
				return
			}
		}
	})
	if !started {
		c.leader.refreshing.Store(false)
	}
}

// refreshLeaderRetrying looks the leader up, trying again a few times with
// a growing pause while members answer that an election is in progress.
func (c *httpClusterClient) refreshLeaderRetrying(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, leaderRefreshTimeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	for try := 0; try < 8; try++ {
		if err := c.refreshLeader(ctx); err == nil || ctx.Err() != nil {
			return
		}
		t := c.clk.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		backoff *= 2
	}
}

// refreshLeader asks the cluster who leads and marks its endpoint.
func (c *httpClusterClient) refreshLeader(ctx context.Context) error {
	var m struct {
		ClientURLs []string `json:"clientURLs"`
	}
	if err := c.getJSON(ctx, "/v2/members/leader", &m); err != nil {
		return err
	}
	c.setLeader(m.ClientURLs)
	return nil
}
