package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/v2fake"
)

// healthFake scripts /health and /v2/stats/self of one member.
func healthFake(t *testing.T, id, state, leader string, healthStatus int, healthBody string) *v2fake.Server {
	s := newFake(t)
	s.On("GET /health", v2fake.Respond(healthStatus, healthBody))
	s.On("GET /v2/stats/self", v2fake.Respond(200, fmt.Sprintf(`{"name":"n-%s","id":%q,"state":%q,"startTime":"2026-11-21T11:00:00Z","leaderInfo":{"leader":%q,"uptime":"1m","startTime":"2026-11-21T11:00:00Z"},"recvAppendRequestCnt":1,"sendAppendRequestCnt":0}`, id, id, state, leader)))
	return s
}

func memberListJSON(ms ...[3]string) string {
	var parts []string
	for _, m := range ms {
		clientURLs := "[]"
		if m[2] != "" {
			clientURLs = fmt.Sprintf("[%q]", m[2])
		}
		parts = append(parts, fmt.Sprintf(`{"id":%q,"name":%q,"peerURLs":["http://127.0.0.1:1"],"clientURLs":%s}`, m[0], m[1], clientURLs))
	}
	return `{"members":[` + strings.Join(parts, ",") + `]}`
}

func TestClusterHealth(t *testing.T) {
	leader := healthFake(t, "a1", "StateLeader", "a1", 200, `{"health":"true","reason":""}`)
	follower := healthFake(t, "b2", "StateFollower", "a1", 200, `{"health":"true"}`)
	noLeader := healthFake(t, "c3", "StateCandidate", "0", 503, `{"health":"false","reason":"RAFT NO LEADER"}`)
	hung := newFake(t)
	hung.On("GET /health", v2fake.Hang())
	hung.On("GET /v2/stats/self", v2fake.Hang())
	dead := newFake(t)
	dead.Close()

	list := memberListJSON(
		[3]string{"a1", "n1", leader.URL},
		[3]string{"b2", "n2", follower.URL},
		[3]string{"c3", "n3", noLeader.URL},
		[3]string{"d4", "n4", hung.URL},
		[3]string{"e5", "n5", dead.URL},
		[3]string{"f6", "", ""},
	)
	leader.On("GET /v2/members", v2fake.Respond(200, list))

	c := newAPIClient(t, Config{}, leader)
	const timeout = 300 * time.Millisecond
	start := time.Now()
	h, err := ClusterHealth(testCtx(t), c, &HealthOptions{PerMemberTimeout: timeout})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took > 2*time.Second {
		t.Errorf("ClusterHealth took %v with a per-member timeout of %v", took, timeout)
	}
	if h.Healthy || h.LeaderID != "a1" || h.MembersErr != nil || len(h.Members) != 6 {
		t.Fatalf("got %+v", h)
	}
	byID := map[string]MemberHealth{}
	for _, m := range h.Members {
		byID[m.ID] = m
	}
	if m := byID["a1"]; !m.Healthy || !m.IsLeader || m.State != "StateLeader" || m.Name != "n1" || m.Endpoint != leader.URL || m.Latency <= 0 {
		t.Errorf("leader: %+v", m)
	}
	if m := byID["b2"]; !m.Healthy || m.IsLeader || m.LeaderView != "a1" || m.State != "StateFollower" {
		t.Errorf("follower: %+v", m)
	}
	if m := byID["c3"]; m.Healthy || m.Reason != "RAFT NO LEADER" || m.LeaderView != "" || m.Err != nil {
		t.Errorf("no leader: %+v", m)
	}
	if m := byID["d4"]; m.Healthy || !strings.Contains(m.Reason, "no answer within") || m.Err == nil || m.Latency > time.Second {
		t.Errorf("hung: %+v", m)
	}
	if m := byID["e5"]; m.Healthy || m.Err == nil || !strings.Contains(m.Reason, "refused") {
		t.Errorf("dead: %+v", m)
	}
	if m := byID["f6"]; m.Healthy || m.Endpoint != "" || !strings.Contains(m.Reason, "not started") {
		t.Errorf("unstarted: %+v", m)
	}
}

func TestClusterHealthAllHealthy(t *testing.T) {
	a := healthFake(t, "a1", "StateFollower", "b2", 200, `{"health":"true","reason":""}`)
	b := healthFake(t, "b2", "StateLeader", "b2", 200, `{"health":true}`)
	a.On("GET /v2/members", v2fake.Respond(200, memberListJSON([3]string{"a1", "n1", a.URL}, [3]string{"b2", "n2", b.URL})))
	h, err := ClusterHealth(testCtx(t), newAPIClient(t, Config{}, a), nil)
	if err != nil || !h.Healthy || h.LeaderID != "b2" {
		t.Fatalf("got %+v, %v", h, err)
	}
	if h.Members[0].ID != "a1" || h.Members[1].ID != "b2" {
		t.Errorf("members out of order: %+v", h.Members)
	}
}

func TestClusterHealthWithoutMemberList(t *testing.T) {
	a := healthFake(t, "a1", "StateLeader", "a1", 200, `{"health":"true"}`)
	a.On("GET /v2/members", v2fake.Respond(500, `{"message":"boom"}`))
	h, err := ClusterHealth(testCtx(t), newAPIClient(t, Config{}, a), nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.MembersErr == nil || h.Healthy || len(h.Members) != 1 || !h.Members[0].Healthy || h.Members[0].ID != "a1" {
		t.Errorf("got %+v", h)
	}
}

func TestClusterHealthContextEnds(t *testing.T) {
	hung := newFake(t)
	hung.On("GET /v2/members", v2fake.Hang())
	c := newAPIClient(t, Config{HeaderTimeoutPerRequest: -1}, hung)
	ctx := testCtx(t)
	ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := ClusterHealth(ctx, c, &HealthOptions{PerMemberTimeout: 5 * time.Second})
	if !errors.Is(err, ctx.Err()) || err == nil {
		t.Errorf("got %v", err)
	}
}
