package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultHealthTimeout is the time each member gets to answer ClusterHealth
// when HealthOptions.PerMemberTimeout is zero. A member's /health runs a
// quorum read with a one-second timeout, so it needs a little more.
const DefaultHealthTimeout = 3 * time.Second

// DefaultHealthConcurrency is how many members ClusterHealth probes at once
// when HealthOptions.Concurrency is zero.
const DefaultHealthConcurrency = 16

// HealthOptions tunes ClusterHealth. The zero value, and nil, mean the
// defaults.
type HealthOptions struct {
	// PerMemberTimeout bounds the probes of one member; a hung member
	// (stopped, or black-holed) is reported unhealthy once it expires.
	// Zero means DefaultHealthTimeout. The client's
	// HeaderTimeoutPerRequest also applies to each probe.
	PerMemberTimeout time.Duration
	// Concurrency bounds how many members are probed at once. Zero means
	// DefaultHealthConcurrency.
	Concurrency int
}

// Health is the health of a cluster as ClusterHealth saw it.
type Health struct {
	// Members has one entry per member, in the order of the member list.
	Members []MemberHealth
	// LeaderID is the ID of the member that reports itself leader; when
	// none answers as leader, the leader most answering members name in
	// their /v2/stats/self. "" when no answering member knows a leader.
	LeaderID string
	// Healthy reports whether every member is healthy.
	Healthy bool
	// MembersErr is the error of reading the member list. When it is not
	// nil, the client's endpoints were probed instead and the members
	// have no ID or name.
	MembersErr error
}

// MemberHealth is the health of one member.
type MemberHealth struct {
	// ID, Name and ClientURLs come from the member list.
	ID         string
	Name       string
	ClientURLs []string
	// Endpoint is the client URL that was probed (the first one), or ""
	// when the member has none: it was added but has not started.
	Endpoint string
	// Healthy reports whether GET /health answered 200 {"health":"true"}.
	Healthy bool
	// Reason says why the member is not healthy: the server's reason
	// (like "RAFT NO LEADER"), or what went wrong with the probe.
	Reason string
	// Err is the error of the /health probe, when it got no answer.
	Err error
	// Latency is the time the /health probe took.
	Latency time.Duration
	// State is the member's raft state from GET /v2/stats/self, like
	// "StateLeader" or "StateFollower"; "" when it did not answer.
	State string
	// LeaderView is the ID of the leader this member knows of
	// (leaderInfo.leader of /v2/stats/self), "" when it knows none.
	LeaderView string
	// IsLeader reports whether the member says it is the leader.
	IsLeader bool
}

// ClusterHealth reports the health of every member of the cluster c talks
// to, the way an operator asks for it. It asks all the client's endpoints
// for the member list at once and takes the first answer, then probes each
// member's first client URL directly (not through the client's endpoint
// selection), concurrently, each within opts.PerMemberTimeout: GET /health
// and GET /v2/stats/self. None of these needs credentials; the client's
// are sent anyway, as with any request. The cluster ID of these answers
// is not checked.
//
// A member that does not answer in time is reported unhealthy; the call
// returns within about twice the per-member timeout (more when the
// concurrency bound makes several rounds), whatever the members do. It
// returns an error only when ctx ends.
func ClusterHealth(ctx context.Context, c Client, opts *HealthOptions) (*Health, error) {
	timeout, conc := DefaultHealthTimeout, DefaultHealthConcurrency
	if opts != nil {
		if opts.PerMemberTimeout > 0 {
			timeout = opts.PerMemberTimeout
		}
		if opts.Concurrency > 0 {
			conc = opts.Concurrency
		}
	}
	h := &Health{}
	members, err := listMembersAtOnce(ctx, c, timeout)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, ctxErr
	}
	if err != nil {
		h.MembersErr = err
		members = nil
		for _, ep := range c.Endpoints() {
			members = append(members, Member{ClientURLs: []string{ep}})
		}
	}
	h.Members = make([]MemberHealth, len(members))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, m := range members {
		h.Members[i] = MemberHealth{ID: m.ID, Name: m.Name, ClientURLs: m.ClientURLs}
		if len(m.ClientURLs) == 0 {
			h.Members[i].Reason = "no client URL: the member has not started"
			continue
		}
		wg.Add(1)
		go func(mh *MemberHealth) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				mh.Reason = ctx.Err().Error()
				return
			}
			defer func() { <-sem }()
			probeMember(ctx, c, mh, timeout)
		}(&h.Members[i])
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.Healthy = len(h.Members) > 0 && h.MembersErr == nil
	views := map[string]int{}
	for _, mh := range h.Members {
		if !mh.Healthy {
			h.Healthy = false
		}
		if mh.IsLeader && h.LeaderID == "" {
			h.LeaderID = mh.ID
		}
		if mh.LeaderView != "" {
			views[mh.LeaderView]++
		}
	}
	if h.LeaderID == "" {
		best := 0
		ids := make([]string, 0, len(views))
		for id := range views {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if views[id] > best {
				h.LeaderID, best = id, views[id]
			}
		}
	}
	return h, nil
}

// listMembersAtOnce asks every endpoint of c for the member list at the
// same time, within timeout, and returns the first list that comes: a hung
// endpoint costs nothing, where the client's failover would spend its
// per-attempt timeout on it first.
func listMembersAtOnce(ctx context.Context, c Client, timeout time.Duration) ([]Member, error) {
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	eps := c.Endpoints()
	type result struct {
		members []Member
		err     error
	}
	results := make(chan result, len(eps))
	for _, ep := range eps {
		go func() {
			resp, err := c.doAt(lctx, ep, clusterGet("/v2/members"))
			if err != nil {
				results <- result{err: &EndpointError{Endpoint: ep, Err: err}}
				return
			}
			if resp.StatusCode != http.StatusOK {
				results <- result{err: &EndpointError{Endpoint: ep, Err: memberError(resp, "list", "")}}
				return
			}
			var v memberList
			if err := decodeResponse(resp, http.StatusOK, &v); err != nil {
				results <- result{err: &EndpointError{Endpoint: ep, Err: err}}
				return
			}
			results <- result{members: v.Members}
		}()
	}
	var errs []error
	for range eps {
		r := <-results
		if r.err == nil {
			return r.members, nil
		}
		errs = append(errs, r.err)
	}
	return nil, newClusterError(errs)
}

// probeMember fills mh from the member's /health and /v2/stats/self.
func probeMember(ctx context.Context, c Client, mh *MemberHealth, timeout time.Duration) {
	mctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	mh.Endpoint = mh.ClientURLs[0]
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		probeStats(mctx, c, mh)
	}()
	start := time.Now()
	healthy, reason, err := probeHealth(mctx, c, mh.Endpoint)
	latency := time.Since(start)
	wg.Wait() // probeStats fills other fields of mh
	mh.Healthy, mh.Reason, mh.Err, mh.Latency = healthy, reason, err, latency
	if err != nil {
		if mctx.Err() != nil && ctx.Err() == nil {
			mh.Reason = "no answer within " + timeout.String()
		} else {
			mh.Reason = err.Error()
		}
	}
}

// probeHealth asks GET /health. A member is healthy when it answers 200
// with "health" true (a string in 3.x, tolerated as a boolean).
func probeHealth(ctx context.Context, c Client, ep string) (bool, string, error) {
	resp, err := c.doAt(ctx, ep, clusterGet("/health"))
	if err != nil {
		return false, "", err
	}
	b, err := readAllCapped(resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, "", err
	}
	var v struct {
		Health json.RawMessage `json:"health"`
		Reason string          `json:"reason"`
	}
	if jerr := json.Unmarshal(b, &v); jerr != nil {
		msg := string(bytes.TrimSpace(b))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		return false, "HTTP " + http.StatusText(resp.StatusCode) + ": " + msg, nil
	}
	ok := strings.Trim(string(v.Health), `"`) == "true"
	if resp.StatusCode == http.StatusOK && ok {
		return true, "", nil
	}
	reason := v.Reason
	if reason == "" {
		reason = "HTTP " + http.StatusText(resp.StatusCode) + ", health " + string(v.Health)
	}
	return false, reason, nil
}

// probeStats reads the member's raft state and leader view from GET
// /v2/stats/self. Failures leave the fields empty.
func probeStats(ctx context.Context, c Client, mh *MemberHealth) {
	resp, err := c.doAt(ctx, mh.Endpoint, clusterGet("/v2/stats/self"))
	if err != nil {
		return
	}
	var v struct {
		ID         string `json:"id"`
		State      string `json:"state"`
		LeaderInfo struct {
			Leader string `json:"leader"`
		} `json:"leaderInfo"`
	}
	if decodeResponse(resp, http.StatusOK, &v) != nil {
		return
	}
	mh.State = v.State
	if v.LeaderInfo.Leader != "0" {
		mh.LeaderView = v.LeaderInfo.Leader
	}
	mh.IsLeader = v.State == "StateLeader"
	if mh.ID == "" {
		mh.ID = v.ID
	}
}

// doAt implements Client: it sends r once to the endpoint base, whatever
// the selector would choose, and returns the answer whatever its status
// (also 5xx). It does not check the cluster ID and does not report the
// outcome to the selector: it is for per-member probes.
func (c *httpClusterClient) doAt(ctx context.Context, base string, r *request) (*response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.closed.Load() {
		return nil, ErrClosed
	}
	list, err := parseEndpoints([]string{base})
	if err != nil {
		return nil, err
	}
	ep := list[0]
	start := time.Now()
	resp, _, err := c.attempt(ctx, ep, r, c.attemptTimeout(ctx, r, false), false)
	c.logAttempt(ctx, ep, r, resp, err, time.Since(start))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	return &response{Response: resp, endpoint: ep.raw}, nil
}
