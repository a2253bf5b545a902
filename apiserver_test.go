package client

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiServer is a scriptable fake etcd member for the members, auth and
// health APIs: each "METHOD /path" answers what the test says, and every
// request is recorded.
type apiServer struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	reqs   []apiRequest
}

// apiRequest is a request the fake server received.
type apiRequest struct {
	Method, Path, ContentType, Authorization string
	Body                                     string
}

func newAPIServer(t testing.TB) *apiServer {
	t.Helper()
	s := &apiServer{routes: map[string]http.HandlerFunc{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.reqs = append(s.reqs, apiRequest{
		Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
		Authorization: r.Header.Get("Authorization"), Body: string(b),
	})
	h := s.routes[r.Method+" "+r.URL.Path]
	s.mu.Unlock()
	if h == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"Not found"}`)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	h(w, r)
}

// answer makes "METHOD /path" answer status with a JSON body.
func (s *apiServer) answer(route string, status int, body string) {
	s.handle(route, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

func (s *apiServer) handle(route string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[route] = h
}

func (s *apiServer) requests() []apiRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]apiRequest(nil), s.reqs...)
}

// last returns the last request received; it fails the test if none came.
func (s *apiServer) last(t testing.TB) apiRequest {
	t.Helper()
	r := s.requests()
	if len(r) == 0 {
		t.Fatal("the server received no request")
	}
	return r[len(r)-1]
}

// newAPIClient makes a client of the given servers (a selection that keeps
// the given order, so tests are deterministic).
func newAPIClient(t testing.TB, cfg Config, servers ...*apiServer) Client {
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
