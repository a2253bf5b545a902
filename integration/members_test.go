package integration_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// TestMembersAddUpdateRemove adds a fourth member with MembersAPI.Add,
// starts it with the membership the cluster reports, uses it, moves its
// peer URL with Update, and removes it with Remove.
func TestMembersAddUpdateRemove(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3})
	ctx := ctxFor(t, 2*time.Minute)
	c := newClientAs(t, cl.ClientURLs(), "", "")
	api := client.NewMembersAPI(c)

	ms, err := api.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("List: %d members, want 3: %+v", len(ms), ms)
	}

	name, peer := cl.ReservePeer(t)
	added := addMember(ctx, t, api, peer)
	if added.ID == "" || added.Name != "" || !slices.Equal(added.PeerURLs, []string{peer}) || len(added.ClientURLs) != 0 {
		t.Errorf("Add answered %+v", added)
	}
	if _, err := api.Add(ctx, peer); !errors.Is(err, client.ErrMemberExists) {
		// etcd 3.4 checks that the cluster would stay healthy before it
		// looks for a duplicate, and a member added but not started
		// fails that check with a 500.
		v, verr := c.GetVersion(ctx)
		var he *client.HTTPError
		if verr != nil || strings.HasPrefix(v.Server, "3.5.") || !errors.As(err, &he) || he.StatusCode != 500 {
			t.Errorf("second Add of %s: got %v, want ErrMemberExists", peer, err)
		}
	}

	ms, err = api.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var peers []testbed.Peer
	for _, m := range ms {
		p := testbed.Peer{Name: m.Name, PeerURLs: m.PeerURLs}
		if m.ID == added.ID {
			p.Name = name // not started: the cluster knows no name yet
		}
		peers = append(peers, p)
	}
	if len(peers) != 4 {
		t.Fatalf("List after Add: %+v", ms)
	}
	nm := cl.StartJoined(t, name, added.ID, peers)
	if err := cl.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	ms, err = api.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m4 := find(ms, added.ID)
	if m4 == nil || m4.Name != name || !slices.Equal(m4.ClientURLs, []string{nm.URL()}) {
		t.Fatalf("List after start: %+v", ms)
	}
	// The new member serves: a write through it is read back through
	// another member, and the other way round.
	if a := keyRequest(t, nm.URL(), "/joined/a", "1", "", ""); a.Status != 201 {
		t.Fatalf("PUT through the new member: %+v", a)
	}
	if a := keyRequest(t, cl.Members()[0].URL(), "/joined/a?quorum=true", "", "", ""); a.Status != 200 || a.Value != "1" {
		t.Errorf("GET through m0: %+v", a)
	}

	// Move the new member's advertised peer URL to the second port it
	// listens on: it stays reachable, so the cluster stays healthy.
	alt := cl.AltPeerURL(name)
	if err := api.Update(ctx, added.ID, []string{alt}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	ms, err = api.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m4 = find(ms, added.ID); m4 == nil || !slices.Equal(m4.PeerURLs, []string{alt}) {
		t.Errorf("List after Update: %+v", ms)
	}
	if err := cl.WaitHealthy(ctx); err != nil {
		t.Fatalf("after Update: %v", err)
	}
	if a := keyRequest(t, nm.URL(), "/joined/b", "2", "", ""); a.Status != 201 {
		t.Errorf("PUT through the moved member: %+v", a)
	}
	if a := keyRequest(t, nm.URL(), "/joined/a?quorum=true", "", "", ""); a.Status != 200 || a.Value != "1" {
		t.Errorf("quorum GET through the moved member: %+v", a)
	}
	// Another member's peer URL is taken; an unknown ID is not found.
	if err := api.Update(ctx, added.ID, []string{cl.Members()[0].PeerURL()}); !errors.Is(err, client.ErrMemberExists) {
		t.Errorf("Update to a used peer URL: got %v", err)
	}
	if err := api.Update(ctx, "1234", []string{peer}); !errors.Is(err, client.ErrMemberNotFound) {
		t.Errorf("Update of an unknown member: got %v", err)
	}
	if err := api.Remove(ctx, "1234"); !errors.Is(err, client.ErrMemberNotFound) {
		t.Errorf("Remove of an unknown member: got %v", err)
	}

	removeMember(ctx, t, api, added.ID)
	// Removed before: the server answers 410 Gone, which Remove accepts.
	if err := api.Remove(ctx, added.ID); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	cl.RemoveMember(t, nm) // the DELETE is answered 410; stops the process
	ms, err = api.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || find(ms, added.ID) != nil {
		t.Errorf("List after Remove: %+v", ms)
	}
}

// addMember adds a member with peer URL peer the way a careful caller
// does. A freshly started etcd refuses membership changes for its first
// 5 s ("unhealthy cluster", HTTP 500), which the client reports as an
// unknown outcome since a 500 on a write may still be applied: list the
// members to find out, and try again if it was not.
func addMember(ctx context.Context, t *testing.T, api client.MembersAPI, peer string) *client.Member {
	t.Helper()
	for try, deadline := 0, time.Now().Add(30*time.Second); ; try++ {
		m, err := api.Add(ctx, peer)
		if err == nil {
			return m
		}
		if !errors.Is(err, client.ErrOutcomeUnknown) && !errors.Is(err, client.ErrMemberExists) {
			t.Fatalf("Add: %v", err)
		}
		ms, lerr := api.List(ctx)
		if lerr != nil {
			t.Fatalf("List after %v: %v", err, lerr)
		}
		for i := range ms {
			if slices.Contains(ms[i].PeerURLs, peer) {
				return &ms[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Add: still failing after 30s: %v", err)
		}
		if try == 0 {
			t.Logf("Add not applied (%v); trying again", err)
		}
		waitTick(ctx, t, 250*time.Millisecond)
	}
}

// removeMember is Remove with the same care as addMember.
func removeMember(ctx context.Context, t *testing.T, api client.MembersAPI, id string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		err := api.Remove(ctx, id)
		if err == nil {
			return
		}
		if !errors.Is(err, client.ErrOutcomeUnknown) || time.Now().After(deadline) {
			t.Fatalf("Remove: %v", err)
		}
		t.Logf("Remove: %v; trying again", err)
		waitTick(ctx, t, 250*time.Millisecond)
	}
}

func find(ms []client.Member, id string) *client.Member {
	for i := range ms {
		if ms[i].ID == id {
			return &ms[i]
		}
	}
	return nil
}

// TestMembersLeader compares Leader with the bed's view before and after
// the leader is killed, and checks that without quorum the caller gets an
// election error rather than a wrong member.
func TestMembersLeader(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3})
	ctx := ctxFor(t, 2*time.Minute)
	api := client.NewMembersAPI(newClientAs(t, cl.ClientURLs(), "", ""))

	lead, err := cl.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := api.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != lead.ID() || got.Name != lead.Name() {
		t.Fatalf("Leader: %+v, bed says %s (%s)", got, lead.Name(), lead.ID())
	}

	old := lead.ID()
	lead.Kill(t)
	var newLead *client.Member
	sawElection := false
	for deadline := time.Now().Add(30 * time.Second); newLead == nil; {
		if time.Now().After(deadline) {
			t.Fatal("no new leader within 30s")
		}
		m, err := api.Leader(ctx)
		switch {
		case client.IsElectionInProgress(err):
			sawElection = true
		case err != nil:
			t.Fatalf("Leader during the election: %v", err)
		case m.ID != old:
			newLead = m
		}
		if newLead == nil {
			waitTick(ctx, t, 50*time.Millisecond)
		}
	}
	bed, err := cl.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newLead.ID != bed.ID() {
		t.Errorf("Leader after the kill: %s, bed says %s", newLead.ID, bed.ID())
	}
	t.Logf("election seen by Leader while it ran: %v", sawElection)

	// Kill the new leader too: the last member has no quorum and will
	// never know a leader again. Until it notices, it names the leader it
	// knew; never another member.
	var survivor *testbed.Member
	for _, m := range cl.Members() {
		if m.ID() != old && m.ID() != bed.ID() {
			survivor = m
		}
	}
	bed.Kill(t)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("Leader did not report the election within 30s")
		}
		m, err := api.Leader(ctx)
		if client.IsElectionInProgress(err) {
			var ce *client.ClusterError
			if !errors.As(err, &ce) {
				t.Errorf("election error without the cluster error: %v", err)
			}
			break
		}
		if err != nil {
			t.Fatalf("Leader without quorum: %v", err)
		}
		if m.ID != bed.ID() {
			t.Fatalf("Leader without quorum named %s; the survivor %s knew %s", m.ID, survivor.ID(), bed.ID())
		}
		waitTick(ctx, t, 50*time.Millisecond)
	}
	// It stays so.
	if _, err := api.Leader(ctx); !client.IsElectionInProgress(err) {
		t.Errorf("second Leader without quorum: %v", err)
	}
}

// waitTick waits d (a polling interval; what is awaited has no event).
func waitTick(ctx context.Context, t *testing.T, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		t.Fatal("test context ended")
	case <-tm.C:
	}
}
