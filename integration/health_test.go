package integration_test

import (
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// TestClusterHealth checks ClusterHealth on a healthy cluster, with a
// follower hung by SIGSTOP (reported unhealthy within its per-member
// timeout, the call bounded) and with a follower killed.
func TestClusterHealth(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3})
	ctx := ctxFor(t, 2*time.Minute)
	c := newClientAs(t, cl.ClientURLs(), "", "")
	const perMember = 2 * time.Second // /health runs a quorum read; leave room on a loaded machine
	opts := &client.HealthOptions{PerMemberTimeout: perMember}

	health := func() (*client.Health, time.Duration) {
		t.Helper()
		start := time.Now()
		h, err := client.ClusterHealth(ctx, c, opts)
		if err != nil {
			t.Fatal(err)
		}
		return h, time.Since(start)
	}
	byID := func(h *client.Health) map[string]client.MemberHealth {
		out := map[string]client.MemberHealth{}
		for _, m := range h.Members {
			out[m.ID] = m
		}
		return out
	}

	lead, err := cl.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := health()
	if !h.Healthy || h.LeaderID != lead.ID() || len(h.Members) != 3 || h.MembersErr != nil {
		t.Fatalf("healthy cluster: %+v", h)
	}
	for _, m := range cl.Members() {
		mh := byID(h)[m.ID()]
		if !mh.Healthy || mh.Name != m.Name() || mh.Endpoint != m.URL() || mh.IsLeader != (m == lead) || mh.LeaderView != lead.ID() || mh.Latency <= 0 {
			t.Errorf("%s: %+v", m.Name(), mh)
		}
	}

	var follower *testbed.Member
	for _, m := range cl.Members() {
		if m != lead {
			follower = m
		}
	}
	follower.Stop(t)
	h, took := health()
	// Listing and probing each take at most one per-member timeout.
	if took > 2*perMember+time.Second {
		t.Errorf("ClusterHealth with a stopped member took %v", took)
	}
	if mh := byID(h)[follower.ID()]; mh.Healthy || mh.Err == nil || mh.Reason == "" {
		t.Errorf("stopped member: %+v", mh)
	} else {
		t.Logf("stopped member: %s (took %v)", mh.Reason, took)
	}
	if h.Healthy || h.LeaderID != lead.ID() || h.MembersErr != nil {
		t.Errorf("with a stopped member: %+v", h)
	}
	for _, m := range cl.Members() {
		if m != follower && !byID(h)[m.ID()].Healthy {
			t.Errorf("%s should be healthy: %+v", m.Name(), byID(h)[m.ID()])
		}
	}
	follower.Continue(t)
	if err := cl.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}

	follower.Kill(t)
	h, took = health()
	if mh := byID(h)[follower.ID()]; mh.Healthy || mh.Err == nil {
		t.Errorf("killed member: %+v", mh)
	} else {
		t.Logf("killed member: %s (took %v)", mh.Reason, took)
	}
	if h.Healthy || h.LeaderID != lead.ID() || len(h.Members) != 3 {
		t.Errorf("with a killed member: %+v", h)
	}
}
