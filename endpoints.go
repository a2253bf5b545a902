package client

import (
	"math/rand/v2"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/etcdv2/client/internal/health"
)

// endpointSet is an immutable snapshot of the endpoints.
type endpointSet struct {
	list []*endpoint
	// leader is the URL of the leader's endpoint, or "".
	leader string
}

// endpoint is one endpoint and what the client knows about it.
type endpoint struct {
	url  *url.URL
	raw  string // as given, normalized (no trailing slash)
	view Endpoint
	// st is the live health state, shared by every snapshot that has this
	// endpoint. It is nil for an endpoint made outside the list (doAt).
	st *health.Endpoint
	// verified is set once a response from this endpoint carried the
	// cluster ID the client knows.
	verified atomic.Bool
}

func parseEndpoints(eps []string) ([]*endpoint, error) {
	if len(eps) == 0 {
		return nil, ErrNoEndpoints
	}
	out := make([]*endpoint, 0, len(eps))
	seen := make(map[string]bool, len(eps))
	for _, s := range eps {
		u, err := url.Parse(s)
		if err != nil {
			return nil, endpointParseError(s, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, endpointParseError(s, nil)
		}
		raw := normalize(u)
		if seen[raw] {
			continue
		}
		seen[raw] = true
		out = append(out, &endpoint{url: u, raw: raw})
	}
	return out, nil
}

// SetEndpoints implements Client.
func (c *httpClusterClient) SetEndpoints(eps []string) error {
	list, err := parseEndpoints(eps)
	if err != nil {
		return err
	}
	shuffle(list)
	c.setMu.Lock()
	defer c.setMu.Unlock()
	leader := ""
	if old := c.eps.Load(); old != nil {
		leader = old.leader
		shared := false
		for _, e := range list {
			for _, o := range old.list {
				shared = shared || o.raw == e.raw
			}
		}
		if !shared {
			// Another cluster, or the same one rebuilt: the cluster
			// ID is learnt again from the first answer.
			c.clusterID.Store(nil)
			leader = ""
		}
	}
	c.storeLocked(list, leader)
	return nil
}

// storeLocked publishes a new snapshot. c.setMu must be held. What is
// known about endpoints that stay is carried over by URL: their health
// state (the tracker keeps it; it marks the endpoints that go as removed,
// which closes their down channels) and whether they were seen answering
// for this cluster.
func (c *httpClusterClient) storeLocked(list []*endpoint, leader string) {
	old := c.eps.Load()
	urls := make([]string, len(list))
	for i, e := range list {
		urls[i] = e.raw
	}
	states := c.health.SetEndpoints(urls)
	for i, e := range list {
		e.view = Endpoint{URL: e.raw, Index: i, Leader: leader != "" && e.raw == leader}
		e.st = states[i]
		if old != nil {
			for _, o := range old.list {
				if o.raw == e.raw && o.verified.Load() {
					e.verified.Store(true)
				}
			}
		}
	}
	c.eps.Store(&endpointSet{list: list, leader: leader})
}

// setLeader records the client URLs of the leader. Only one that matches an
// endpoint of the client is kept.
func (c *httpClusterClient) setLeader(clientURLs []string) {
	c.setMu.Lock()
	defer c.setMu.Unlock()
	set := c.eps.Load()
	leader := ""
	for _, cu := range clientURLs {
		n := normalizeURL(cu)
		for _, e := range set.list {
			if e.raw == n {
				leader = n
			}
		}
	}
	if leader == set.leader {
		return
	}
	list := make([]*endpoint, len(set.list))
	for i, e := range set.list {
		list[i] = &endpoint{url: e.url, raw: e.raw}
	}
	c.storeLocked(list, leader)
}

// normalizeURL is the form of the URL s that endpoints are known by; s
// itself if it does not parse.
func normalizeURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return normalize(u)
}

// normalize drops u's trailing slashes and returns it as a string.
func normalize(u *url.URL) string {
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String()
}

// Endpoints implements Client.
func (c *httpClusterClient) Endpoints() []string {
	set := c.eps.Load()
	out := make([]string, len(set.list))
	for i, e := range set.list {
		out[i] = e.raw
	}
	return out
}

func shuffle(list []*endpoint) {
	rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
}
