package testbed

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Peer is a cluster member as --initial-cluster needs it: its name and
// peer URLs.
type Peer struct {
	Name     string
	PeerURLs []string
}

// reservation is a member prepared by ReservePeer and not started yet.
type reservation struct {
	m       *Member
	altPort int
}

// reservations holds, per cluster, the members reserved by ReservePeer
// until StartJoined takes them. Cluster has no field for them because
// this file was added beside the bed without changing it.
var (
	reserveMu    sync.Mutex
	reservations = map[*Cluster]map[string]*reservation{}
)

// ReservePeer prepares a new member without telling the cluster about it:
// it allocates its name, ports, data directory (and proxies per Options)
// and returns the name and the peer URL to add it with, for a test that
// adds the member through the API under test and then calls StartJoined.
//
// The member's process will listen on a second peer port as well, returned
// by AltPeerURL, so that a test can move the member's advertised peer URL
// there (MembersAPI.Update) and the member stays reachable. Failure is
// fatal to tb.
func (c *Cluster) ReservePeer(tb testing.TB) (name, peerURL string) {
	tb.Helper()
	m, err := c.newMember()
	if err != nil {
		tb.Fatalf("testbed: ReservePeer: %v", err)
	}
	alt, err := freePort()
	if err != nil {
		m.closeProxies()
		tb.Fatalf("testbed: ReservePeer: %v", err)
	}
	reserveMu.Lock()
	if reservations[c] == nil {
		reservations[c] = map[string]*reservation{}
		tb.Cleanup(func() {
			reserveMu.Lock()
			left := reservations[c]
			delete(reservations, c)
			delete(joined, c)
			reserveMu.Unlock()
			for _, r := range left {
				r.m.closeProxies()
			}
		})
	}
	reservations[c][m.name] = &reservation{m: m, altPort: alt}
	reserveMu.Unlock()
	return m.name, m.PeerURL()
}

// AltPeerURL returns the second peer URL a member reserved by ReservePeer
// listens on (not through a proxy), or "" for another member.
func (c *Cluster) AltPeerURL(name string) string {
	reserveMu.Lock()
	defer reserveMu.Unlock()
	if r := reservations[c][name]; r != nil {
		return "http://127.0.0.1:" + strconv.Itoa(r.altPort)
	}
	for _, r := range joined[c] {
		if r.m.name == name {
			return "http://127.0.0.1:" + strconv.Itoa(r.altPort)
		}
	}
	return ""
}

// joined keeps the reservations StartJoined has started, for AltPeerURL.
var joined = map[*Cluster][]*reservation{}

// StartJoined starts the member reserved as name, whose ID the cluster
// gave when it was added, with --initial-cluster-state=existing and an
// --initial-cluster made of peers (what the cluster's member list says,
// the new member included under name). It then waits until the member's
// /health answers 200, adds it to Members, and returns it. Cluster methods
// (Leader, WaitHealthy, RemoveMember, Close) treat it like any member.
// Failure is fatal to tb.
func (c *Cluster) StartJoined(tb testing.TB, name, id string, peers []Peer) *Member {
	tb.Helper()
	reserveMu.Lock()
	r := reservations[c][name]
	delete(reservations[c], name)
	if r != nil {
		joined[c] = append(joined[c], r)
	}
	reserveMu.Unlock()
	if r == nil {
		tb.Fatalf("testbed: StartJoined: %q was not reserved with ReservePeer", name)
	}
	m := r.m
	m.setID(id)
	var parts []string
	for _, p := range peers {
		for _, u := range p.PeerURLs {
			parts = append(parts, p.Name+"="+u)
		}
	}
	args := m.buildArgs(strings.Join(parts, ","), "existing")
	for i, a := range args {
		if strings.HasPrefix(a, "--listen-peer-urls=") {
			args[i] += ",http://127.0.0.1:" + strconv.Itoa(r.altPort)
		}
	}
	m.args = args
	c.mu.Lock()
	c.members = append(c.members, m)
	c.mu.Unlock()
	if err := m.start(); err != nil {
		tb.Fatalf("testbed: StartJoined: start %s: %v", m.name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout(1))
	defer cancel()
	if err := m.waitServing(ctx, "/health"); err != nil {
		tb.Fatalf("testbed: StartJoined: %s: %v\n%s", m.name, err, m.LogTail(30))
	}
	return m
}
