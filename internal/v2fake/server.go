// Package v2fake is a scriptable in-memory etcd v2 member for tests: the
// keys API (get, set, create, update, compare-and-swap, compare-and-delete,
// directories, recursive and sorted listings, TTLs, in-order keys, hidden
// keys, long-poll watches with a 1000-event history), the members API, the
// auth API with basic-auth checks, /version and /health, answered in the
// byte shapes of etcd 3.5. Fault hooks (see On) change what chosen requests
// get: delays, hangs, canned answers, dropped connections, answers cut or
// stalled mid-body, redirects; HoldEvents holds the watches' events back
// and Options.History shortens the event history.
//
// The package internal/v2fake/parity holds scenarios that the integration
// tests run against both this server and a real etcd 3.5 member, comparing
// the results, so that the fake stays honest.
//
// # Where it differs from etcd
//
//   - Listings are always sorted (etcd's unsorted order is a map's).
//   - Expired keys go within 100 ms (etcd: 500 ms), by Options.Now.
//   - Without a leader (SetLeader("")), writes and quorum reads fail at
//     once; etcd fails them after its request timeout.
//   - Auth compares passwords in the clear and knows no client
//     certificates; /v2/stats/leader and /v2/stats/store are not served.
package v2fake

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure a Server; the zero value is a member of a one-member
// cluster answering as etcd 3.5.35 with the real clock.
type Options struct {
	// ClusterID is sent as X-Etcd-Cluster-Id; "" means "cdf818194e3a8c32".
	ClusterID string
	// MemberID is this member's ID; "" means "8e9e05c52164694d".
	MemberID string
	// Name is this member's name; "" means "default".
	Name string
	// Version is the body of GET /version; "" means etcd 3.5.35's.
	Version string
	// Now is the clock of TTLs; nil means time.Now.
	Now func() time.Time
	// Index is the store's initial index; 0 means 3.
	Index uint64
	// NoCounts leaves out the request log (a benchmark sets it so that the
	// log does not grow); Count and Requests then return nothing.
	NoCounts bool
	// History is how many events a watch can reach back; 0 means 1000, as
	// in etcd. A test of a cleared index sets a few.
	History int
}

// Request is a request the server received (before any fault hook).
type Request struct {
	Method, Path, RawQuery, ContentType, Authorization string
	Body                                               string
}

// Server is one fake etcd v2 member. Its methods are safe for concurrent
// use.
type Server struct {
	// URL is the base URL once started, as "http://127.0.0.1:port".
	URL string
	// HTTP is the underlying test server; a test may set HTTP.TLS or
	// HTTP.Config before StartTLS or Start.
	HTTP *httptest.Server

	opts   Options
	closed context.Context // cancelled by Close: ends hangs and watches
	cancel context.CancelFunc

	expiring sync.WaitGroup // the expiry goroutine

	mu        sync.Mutex
	clusterID string
	term      uint64
	store     *store
	members   []*member
	leader    string // member ID; "" means no leader
	start     time.Time
	auth      authState
	rules     []*Rule
	log       []Request
	watches   int           // watches open now
	held      chan struct{} // non-nil while watches hold their events; closed on release
}

// Watches returns how many watches (long polls) are open now: answered
// with their headers, or about to be, and not ended.
func (s *Server) Watches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watches
}

// HoldEvents makes the open watches, and those to come, send no event
// while hold is set (a watch is still answered with its headers, and may
// end as usual); once it is cleared, each sends what it would have sent.
// A test uses it to have an event written while a watch is open but not
// yet answered.
func (s *Server) HoldEvents(hold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case hold && s.held == nil:
		s.held = make(chan struct{})
	case !hold && s.held != nil:
		close(s.held)
		s.held = nil
	}
}

// waitHeld waits while events are held; it returns false if the request
// ended first.
func (s *Server) waitHeld(r *http.Request) bool {
	s.mu.Lock()
	held := s.held
	s.mu.Unlock()
	if held == nil {
		return true
	}
	select {
	case <-held:
		return true
	case <-r.Context().Done():
		return false
	}
}

// New returns a server that is not started yet: set HTTP.TLS or
// HTTP.Config if needed, then call Start or StartTLS, and Close.
func New(opts Options) *Server {
	if opts.ClusterID == "" {
		opts.ClusterID = "cdf818194e3a8c32"
	}
	if opts.MemberID == "" {
		opts.MemberID = "8e9e05c52164694d"
	}
	if opts.Name == "" {
		opts.Name = "default"
	}
	if opts.Version == "" {
		opts.Version = `{"etcdserver":"3.5.35","etcdcluster":"3.5.0"}`
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Index == 0 {
		opts.Index = 3
	}
	if opts.History <= 0 {
		opts.History = historySize
	}
	s := &Server{opts: opts, clusterID: opts.ClusterID, term: 2, leader: opts.MemberID, start: opts.Now()}
	s.closed, s.cancel = context.WithCancel(context.Background())
	s.store = newStore(opts.Index, opts.Now, opts.History)
	s.auth = newAuthState()
	s.members = []*member{{ID: opts.MemberID, Name: opts.Name, PeerURLs: []string{"http://localhost:2380"}}}
	s.HTTP = httptest.NewUnstartedServer(s)
	return s
}

// Start starts a server with the given options on loopback (plain HTTP)
// and closes it at the end of the test.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := New(opts)
	s.Start()
	tb.Cleanup(s.Close)
	return s
}

// Start serves plain HTTP on a loopback port.
func (s *Server) Start() {
	s.HTTP.Start()
	s.started()
}

// StartTLS serves HTTPS on a loopback port (HTTP.TLS, if set, is used).
func (s *Server) StartTLS() {
	s.HTTP.StartTLS()
	s.started()
}

func (s *Server) started() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.URL = s.HTTP.URL
	s.members[0].ClientURLs = []string{s.HTTP.URL}
	s.expiring.Add(1)
	go s.expireLoop()
}

// expireTick is how often keys whose TTL ran out are deleted, so that a
// watch sees their expiry without another request; etcd does it every
// 500 ms.
const expireTick = 100 * time.Millisecond

func (s *Server) expireLoop() {
	defer s.expiring.Done()
	t := time.NewTicker(expireTick)
	defer t.Stop()
	for {
		select {
		case <-s.closed.Done():
			return
		case <-t.C:
			s.mu.Lock()
			s.store.expire()
			s.mu.Unlock()
		}
	}
}

// TLSConfig returns a client configuration that trusts a server started
// with StartTLS.
func (s *Server) TLSConfig() *tls.Config {
	return s.HTTP.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
}

// Close ends every hanging request and watch, then stops the server.
// Calling it again does nothing.
func (s *Server) Close() {
	s.cancel()
	s.HTTP.Close()
	s.expiring.Wait()
}

// Kill makes the member refuse new connections and drops the open ones,
// as a killed process would. Close still has to be called.
func (s *Server) Kill() {
	s.cancel()
	s.HTTP.Listener.Close()
	s.HTTP.CloseClientConnections()
}

// SetClusterID changes the cluster ID the member reports.
func (s *Server) SetClusterID(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clusterID = id
}

// SetTerm sets the raft term reported in X-Raft-Term.
func (s *Server) SetTerm(term uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.term = term
}

// Term returns the raft term reported in X-Raft-Term.
func (s *Server) Term() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term
}

// SetLeader sets the member ID reported as leader; "" means no leader:
// GET /v2/members/leader answers 503, /health reports no leader, and key
// writes and quorum reads fail as they do once etcd's request timeout
// has passed (but at once: add a Delay rule for the wait).
func (s *Server) SetLeader(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leader = id
}

// Index returns the store's current index (X-Etcd-Index).
func (s *Server) Index() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store.index
}

// SetIndex advances the store's index to i (as writes to etcd's internal
// keys do) without an event; it does nothing if i is not above the index.
func (s *Server) SetIndex(i uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i > s.store.index {
		s.store.index = i
	}
}

// Set writes key=value directly (as a PUT without conditions would), for
// setting up a test. It panics on a store error.
func (s *Server) Set(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.store.set(cleanPath(key), false, value, time.Time{}, false); err != nil {
		panic(err)
	}
}

// Requests returns the requests received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// Count returns how many requests matching route were received; route is
// as in On.
func (s *Server) Count(route string) int {
	m := parseRoute(route)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.log {
		if m.match(r.Method, r.Path) {
			n++
		}
	}
	return n
}

// CountFunc returns how many of the requests received so far f accepts.
func (s *Server) CountFunc(f func(Request) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.log {
		if f(r) {
			n++
		}
	}
	return n
}

// Last returns the last request received, and false if none came.
func (s *Server) Last() (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.log) == 0 {
		return Request{}, false
	}
	return s.log[len(s.log)-1], true
}

// ServeHTTP answers one request: it is logged, then the first fault rule
// that matches it (if any) decides, else the member answers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.closed, cancel)
	defer stop()
	r = r.WithContext(ctx)

	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	s.mu.Lock()
	if !s.opts.NoCounts {
		s.log = append(s.log, Request{
			Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			ContentType: r.Header.Get("Content-Type"), Authorization: r.Header.Get("Authorization"),
			Body: string(body),
		})
	}
	rule := s.ruleFor(r)
	id := s.clusterID
	s.mu.Unlock()
	if rule != nil {
		if strings.HasPrefix(r.URL.Path, "/v2/") {
			// etcd's v2 handlers send the cluster ID before anything can
			// go wrong; a fault's answer may override it.
			w.Header().Set("X-Etcd-Cluster-Id", id)
		}
		rule.fault(w, r, http.HandlerFunc(s.serve))
		return
	}
	s.serve(w, r)
}

// serve answers as the member would, with no fault.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/version":
		if !allowMethod(w, r, "GET", "HEAD") {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, s.opts.Version)
	case p == "/health":
		s.health(w, r)
	case p == "/v2/keys" || strings.HasPrefix(p, "/v2/keys/"):
		s.keys(w, r)
	case p == "/v2/members" || strings.HasPrefix(p, "/v2/members/"):
		s.membersAPI(w, r)
	case strings.HasPrefix(p, "/v2/auth/"):
		s.authAPI(w, r)
	case p == "/v2/stats/self":
		s.selfStats(w, r)
	case p == "/v2/machines":
		s.mu.Lock()
		var urls []string
		for _, m := range s.members {
			urls = append(urls, m.ClientURLs...)
		}
		s.mu.Unlock()
		io.WriteString(w, strings.Join(urls, ", "))
	default:
		http.NotFound(w, r)
	}
}

// selfStats answers GET /v2/stats/self as etcd does, with no traffic
// counted.
func (s *Server) selfStats(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET") {
		return
	}
	s.mu.Lock()
	state, leader := "StateFollower", s.leader
	switch leader {
	case s.opts.MemberID:
		state = "StateLeader"
	case "":
		leader = "0"
	}
	st := struct {
		Name       string    `json:"name"`
		ID         string    `json:"id"`
		State      string    `json:"state"`
		StartTime  time.Time `json:"startTime"`
		LeaderInfo struct {
			Name      string    `json:"leader"`
			Uptime    string    `json:"uptime"`
			StartTime time.Time `json:"startTime"`
		} `json:"leaderInfo"`
		RecvAppendRequestCnt uint64 `json:"recvAppendRequestCnt"`
		SendAppendRequestCnt uint64 `json:"sendAppendRequestCnt"`
	}{Name: s.opts.Name, ID: s.opts.MemberID, State: state, StartTime: s.start}
	st.LeaderInfo.Name = leader
	st.LeaderInfo.StartTime = s.start
	st.LeaderInfo.Uptime = s.opts.Now().Sub(s.start).String()
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	b, _ := json.Marshal(st)
	w.Write(b)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET") {
		return
	}
	s.mu.Lock()
	ok := s.leader != ""
	s.mu.Unlock()
	if !ok {
		http.Error(w, `{"health":"false","reason":"RAFT NO LEADER"}`, http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, `{"health":"true","reason":""}`)
}

// allowMethod answers 405 as etcd does unless the method is one of ms.
func allowMethod(w http.ResponseWriter, r *http.Request, ms ...string) bool {
	for _, m := range ms {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(ms, ","))
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

// httpError writes etcd's non-keys error body: {"message":"..."} with no
// trailing newline.
func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Write(b)
}

func (s *Server) setClusterHeader(w http.ResponseWriter) {
	s.mu.Lock()
	id := s.clusterID
	s.mu.Unlock()
	w.Header().Set("X-Etcd-Cluster-Id", id)
}

func (s *Server) String() string { return fmt.Sprintf("v2fake(%s)", s.URL) }
