package client

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/v2fake"
)

// newFake starts a fake v2 member for the test, closed at its end.
func newFake(t testing.TB) *v2fake.Server {
	t.Helper()
	return v2fake.Start(t, v2fake.Options{})
}

// lastRequest returns the last request s received; it fails the test if
// none came.
func lastRequest(t testing.TB, s *v2fake.Server) v2fake.Request {
	t.Helper()
	r, ok := s.Last()
	if !ok {
		t.Fatal("the server received no request")
	}
	return r
}

// newAPIClient makes a client of the given servers (a selection that keeps
// the given order, so tests are deterministic).
func newAPIClient(t testing.TB, cfg Config, servers ...*v2fake.Server) Client {
	t.Helper()
	for _, s := range servers {
		cfg.Endpoints = append(cfg.Endpoints, s.URL)
	}
	if cfg.Selector == nil {
		order := map[string]int{}
		for i, e := range cfg.Endpoints {
			order[e] = i
		}
		cfg.Selector = SelectorFunc(func(_ RequestInfo, cands []Endpoint) int {
			best := 0
			for i, c := range cands {
				if order[c.URL] < order[cands[best].URL] {
					best = i
				}
			}
			return best
		})
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantContains(t testing.TB, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q does not contain %q", s, sub)
	}
}
