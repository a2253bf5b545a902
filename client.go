package client

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcdv2/client/internal/clock"
	"github.com/etcdv2/client/internal/health"
	"github.com/etcdv2/client/internal/retry"
)

// DefaultRequestTimeout is the overall timeout a caller may use for one
// call; the client itself does not apply it. It is kept from the original
// client for compatibility.
var DefaultRequestTimeout = 5 * time.Second

// DefaultHeaderTimeoutPerRequest bounds the adaptive per-attempt timeout
// used when Config.HeaderTimeoutPerRequest is zero (and is that timeout
// until the client has seen enough answers): an endpoint that has not sent
// the response headers by then is given up on and the next one is tried.
// It is what makes a hung member (stopped, or on a black-holed network)
// cost one timeout instead of the caller's whole deadline. It is also the
// budget of a new connection's dial and TLS handshake under the adaptive
// timeout, and of a health probe.
const DefaultHeaderTimeoutPerRequest = 2 * time.Second

// DefaultWriteHeaderTimeout is the per-attempt timeout of a request that
// cannot be resent to another member (a create, a compare-and-swap, an
// in-order create, a delete, a membership or auth change) when
// Config.HeaderTimeoutPerRequest is zero. It is above the time an etcd
// server takes to give up on a proposal itself (5 s plus two election
// timeouts), so that a slow commit is reported as what it was rather than
// as an unknown outcome.
const DefaultWriteHeaderTimeout = 8 * time.Second

// DefaultRounds is the number of passes over the endpoints a request may
// make when Config.Rounds is zero.
const DefaultRounds = 3

// DefaultMaxResponseBytes is the largest response body read when
// Config.MaxResponseBytes is zero: 256 MiB.
//
// A listing costs about 60 bytes per node on top of its keys and values
// (measured: a recursive read of 100,000 keys of 20 bytes with 1-byte
// values is 8.2 MB, 81 bytes a key), and values are JSON-escaped. The
// largest listings users of the v2 API have are registries of JSON objects,
// such as Kubernetes' /registry/pods on etcd 2 (tens of thousands of pods
// of 2 to 4 KiB each): about 200 MiB. The default leaves room for those,
// and no more: a larger answer is far more likely a mistake, or a hostile
// server, than a listing. Reading and decoding an answer allocates about
// 4 times its size for a listing as etcd writes it (measured on 10,000
// keys), and at most about 17 times, 11 times of it live, whatever its
// content, since nodes without a key (etcd sends none but its root) are
// refused; lower the cap where memory is tight.
const DefaultMaxResponseBytes = 256 << 20

// DefaultTransport is the transport used when Config.Transport is nil.
// Unlike the original client's, it keeps enough idle connections per member
// for many concurrent callers and long-poll watches, so that a busy client
// reuses connections instead of dialing (and leaving TIME_WAIT sockets) for
// most requests; and it does not ask for gzip-compressed answers
// (DisableCompression), which etcd never sends: the header would only
// cost every request. A deployment whose proxy compresses answers can
// pass a transport that asks for them.
var DefaultTransport CancelableTransport = newDefaultTransport()

// Dialer settings of DefaultTransport.
const (
	dialTimeout   = 30 * time.Second
	dialKeepAlive = 30 * time.Second
)

// newDefaultTransport returns a new transport tuned like DefaultTransport.
func newDefaultTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: dialKeepAlive,
		}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// CancelableTransport mimics net/http.Transport, but requires that the
// object also support request cancellation. *http.Transport implements it.
// Requests are cancelled through their context; CancelRequest is kept in the
// interface for compatibility and is not called.
type CancelableTransport interface {
	http.RoundTripper
	CancelRequest(req *http.Request)
}

// CheckRedirectFunc decides whether a redirect is followed. Its argument is
// the number of requests already made for this attempt; a non-nil error
// ends the call at once, with a *ClusterError holding that error (as in
// the original client with one endpoint): the answer would be the same at
// every endpoint, so no other is tried.
type CheckRedirectFunc func(via int) error

// DefaultCheckRedirect follows up to 10 redirects, but no more.
var DefaultCheckRedirect CheckRedirectFunc = func(via int) error {
	if via > 10 {
		return ErrTooManyRedirects
	}
	return nil
}

// maxRedirects bounds redirects whatever CheckRedirect says.
const maxRedirects = 100

// EndpointSelectionMode is the original client's way of choosing a policy;
// Config.Selector is the general one.
type EndpointSelectionMode int

const (
	// EndpointSelectionRandom is the default value of the 'SelectionMode'.
	// The client pins one endpoint picked at random and stays on it while
	// it answers, moving to the next one when it fails (the Sticky policy).
	EndpointSelectionRandom EndpointSelectionMode = iota

	// EndpointSelectionPrioritizeLeader sends requests to the raft leader's
	// endpoint, saving the follower's forwarding hop for writes (the
	// PreferLeader policy). The client learns the leader at Sync and, unlike
	// the original client, also refreshes it by itself when a response
	// shows a new raft term, so AutoSync is recommended but not required.
	EndpointSelectionPrioritizeLeader
)

// Config configures a Client. Its zero value is not usable: Endpoints is
// required. Every other field documents its zero value. The Config is
// copied by New; changing it afterwards has no effect.
type Config struct {
	// Endpoints defines a set of URLs (schemes, hosts and ports only)
	// that can be used to communicate with a logical etcd cluster. For
	// example, a three-node cluster could be provided like so:
	//
	// 	Endpoints: []string{
	//		"http://node1.example.com:2379",
	//		"http://node2.example.com:2379",
	//		"http://node3.example.com:2379",
	//	}
	//
	// If multiple endpoints are provided, the Client will attempt to
	// use them all in the event that one or more of them are unusable.
	//
	// If Client.Sync is ever called, the Client may cache an alternate
	// set of endpoints to continue operation.
	Endpoints []string

	// Transport is used by the Client to drive HTTP requests. If not
	// provided, DefaultTransport will be used.
	//
	// The client learns that a write was not sent (and may go to another
	// endpoint) from net/http's httptrace hooks. With a transport that
	// runs none, a failed write that cannot be resent (see
	// OutcomeUnknownError) is taken to have possibly been sent, unless
	// its error is a dial error (*net.OpError with Op "dial").
	Transport CancelableTransport

	// CheckRedirect specifies the policy for handling HTTP redirects.
	// If CheckRedirect is not nil, the Client calls it before
	// following an HTTP redirect. The sole argument is the number of
	// requests that have already been made. If CheckRedirect returns
	// an error, the call ends with that error (in a *ClusterError), and
	// no other endpoint is tried.
	//
	// If CheckRedirect is nil, the Client uses its default policy,
	// which is to stop after 10 consecutive requests. A relative
	// Location is resolved against the request's URL. Whatever
	// CheckRedirect says, a redirect to another origin (scheme, host or
	// port) than the endpoint's is not followed: the call ends with an
	// error matching ErrCrossOriginRedirect, so that credentials and
	// request bodies go nowhere else (the original client followed it).
	CheckRedirect CheckRedirectFunc

	// Username specifies the user credential to add as an authorization
	// header to every request. Empty means no authorization header.
	Username string

	// Password is the password for the specified user to add as an
	// authorization header to the request. It never appears in logs,
	// debug output or errors, and printing the Config or the Client
	// (fmt's %v, %+v, %#v, or slog: both are slog.LogValuers) shows it,
	// and the Authorization header, as "[redacted]" or not at all.
	Password string

	// HeaderTimeoutPerRequest specifies the time limit to wait for the
	// response headers of one attempt at one endpoint. The timeout
	// includes connection time, any redirects, and header wait time.
	// When it expires the next endpoint is tried (for requests that are
	// safe to resend; see OutcomeUnknownError).
	//
	// For a watch, it bounds the wait for the headers, which an etcd
	// server sends as soon as the watch is registered; it does not
	// bound the wait for the event.
	//
	// One API call may send multiple requests to different etcd servers
	// until it succeeds. Use the context of the call to specify the
	// overall timeout.
	//
	// Zero means an adaptive timeout (the original client had no timeout
	// then, which made a hung member hang its callers): three times the
	// 99th percentile of recent header latencies of this client, clamped to
	// [MinAdaptiveHeaderTimeout, DefaultHeaderTimeoutPerRequest] (250 ms to
	// 2 s), and DefaultHeaderTimeoutPerRequest until 100 answers have been
	// seen. Writes and quorum reads wait for raft, which stalls while the
	// cluster elects a leader, so once one has waited the adaptive timeout
	// the client asks its member for /version, which a member answers from
	// memory: if that goes unanswered too, the member is hung and the
	// attempt is given up at once; if it answers, the attempt goes on
	// waiting, up to 3 s for a request that can be resent (longer than an
	// election with etcd's default timings; a follower drops the proposals
	// it gets during one, so the retry must come after it) and up to
	// DefaultWriteHeaderTimeout for one that cannot (so that a slow commit
	// is not reported as of unknown outcome), and its timeout does not
	// count toward ejecting the live member. A plain read is not given up
	// on at the adaptive timeout either, since a member builds a large
	// listing before it sends the headers: at half the timeout the client
	// asks the member for /version, allowing it the other half; if that
	// goes unanswered the member is hung and the read goes elsewhere (so a
	// hung member still costs about one adaptive timeout), and while it
	// answers the read goes on waiting, checked again every adaptive
	// timeout, bounded only by the caller's deadline (a check does not ask
	// when the member answered another request meanwhile). An attempt
	// with a timeout that has to make a new connection (with a
	// *http.Transport) gets DefaultHeaderTimeoutPerRequest for dialing and
	// the TLS handshake, and its timeout and liveness check count from the
	// connection: the adaptive value is learnt on warm connections, and a
	// member that never completes a handshake is still left after that
	// bound (after a plain read's check time plus that bound: its check
	// asks over a new connection of its own). A positive value is used as it is for every request. A negative value means no
	// per-attempt timeout at all.
	//
	// Unless the value is negative, while endpoints remain untried an
	// attempt gets at most half of the time left before the deadline of
	// the call's context, so that a hung endpoint leaves time to try
	// another.
	//
	// The body of every answer but a watch's is read within its attempt,
	// and a server that sends no data of it for the body's idle timeout
	// (this value, at least DefaultHeaderTimeoutPerRequest; none when the
	// value is negative) fails the attempt with ErrResponseStalled, which
	// then fails over like any other failure.
	//
	// A write that cannot be resent (see OutcomeUnknownError)
	// gets that share only until its request is written: then there is
	// nowhere else to send it, and it keeps its whole timeout, up to the
	// deadline.
	HeaderTimeoutPerRequest time.Duration

	// Rounds is how many passes over the endpoints one request may make.
	// A pass tries each endpoint at most once, one after the other without
	// waiting; the next pass starts only after every endpoint has failed,
	// after a pause drawn uniformly from [0, min(1 s, 50 ms × 2^(pass-1)))
	// (full jitter), and only if the call's deadline leaves time for it and
	// the retry budget allows. Zero means DefaultRounds; 1 is the original
	// client's single pass.
	Rounds int

	// RetryBudget limits the attempts after the first across all requests
	// of the client. The zero value means 20% of requests plus 10 a second.
	RetryBudget RetryBudget

	// Ejection tunes when a failing endpoint is left out of selection and
	// for how long. The zero value means the defaults of EjectionConfig.
	Ejection EjectionConfig

	// MonotonicReads, when set, makes sure that a plain read never returns
	// older data than the client has already returned: a plain read
	// answered with an X-Etcd-Index below the highest index any answer of
	// this client carried is discarded and sent again, once, as a quorum
	// read, preferably to another endpoint; reads under a context from
	// WithoutMonotonicReads are left alone. False means plain reads
	// return whatever the chosen member has, as in the original client.
	MonotonicReads bool

	// SelectionMode is an EndpointSelectionMode enum that specifies the
	// policy for choosing the etcd cluster node to which requests are
	// sent. It is used when Selector is nil.
	SelectionMode EndpointSelectionMode

	// Selector chooses the endpoint of each attempt among the candidates
	// the client's health machinery leaves (see Selector). Nil means the
	// policy of SelectionMode: Sticky(RebalanceEvery(DefaultRebalanceEvery))
	// for EndpointSelectionRandom, PreferLeader of that for
	// EndpointSelectionPrioritizeLeader.
	Selector Selector

	// Logger receives debug records of every attempt (endpoint, method,
	// path, status, duration, error) and warnings from background work
	// such as AutoSync. Nil means no logging. Credentials are never
	// logged.
	Logger *slog.Logger

	// ResendUnconditionalSets, when set, lets a Set without conditions
	// (no PrevExist, PrevValue, PrevIndex, Dir or Refresh) be sent again
	// to another member after it may have reached a server and no answer
	// came back, instead of failing with an error matching
	// ErrOutcomeUnknown. The original client did so. If the first request
	// was applied, the value is then applied twice: the second apply
	// returns the first as PrevNode, the index moves twice, watchers see
	// two events, a TTL starts again, and if another client set the key
	// between the two applies, its newer value is overwritten with this
	// older one (a reader may see v1, v2, v1). False (the default) resends
	// a Set, like every other write, only when it provably never reached
	// a server.
	ResendUnconditionalSets bool

	// MaxResponseBytes caps the size of a response body; a larger one
	// fails with an error matching ErrResponseTooLarge. Zero means
	// DefaultMaxResponseBytes; a negative value means no cap.
	MaxResponseBytes int64

	// Hooks, when set, is told of every call to the cluster and of each
	// of its attempts, for metrics and tracing (see Hooks; JoinHooks
	// combines several). Nil means none, at no cost.
	Hooks Hooks
}

// Client is a connection to an etcd cluster. Create it with New and pass
// it to NewKeysAPI, NewMembersAPI and the auth constructors. It is safe for
// concurrent use.
//
// Client is sealed: only this package implements it, so that methods can be
// added. Wrappers may embed it.
type Client interface {
	// Sync updates the internal cache of the etcd cluster's membership:
	// the endpoints become the client URLs the members advertise. If no
	// member advertises any, the endpoints are kept and ErrNoEndpoints is
	// returned.
	Sync(context.Context) error

	// AutoSync periodically calls Sync() every given interval.
	// The recommended sync interval is 10 seconds to 1 minute, which does
	// not bring too much overhead to server and makes client catch up the
	// cluster change in time.
	//
	// Unlike the original client's, it does not stop at the first failed
	// Sync: failures are logged (Config.Logger) and retried at the next
	// tick. It returns the context's error when the context ends, and
	// context.Canceled once the client is closed, so the loop below
	// ends in both cases:
	//
	//  for {
	//      err := client.AutoSync(ctx, 10*time.Second)
	//      if err == context.DeadlineExceeded || err == context.Canceled {
	//          break
	//      }
	//      log.Print(err)
	//  }
	AutoSync(context.Context, time.Duration) error

	// Endpoints returns a copy of the current set of API endpoints used
	// by Client to resolve HTTP requests. If Sync has ever been called,
	// this may differ from the initial Endpoints provided in the Config.
	Endpoints() []string

	// SetEndpoints sets the set of API endpoints used by Client to resolve
	// HTTP requests. If the given endpoints are not valid, an error will be
	// returned and the endpoints are not changed. The list is shuffled so
	// that clients spread over the members. A list that shares no
	// endpoint with the current one may be another cluster (or the same
	// one rebuilt): the client then forgets the cluster ID it knew and
	// takes the one of the first answer (see ClusterIDMismatchError); Sync
	// never does.
	SetEndpoints(eps []string) error

	// GetVersion retrieves the current etcd server and cluster version.
	GetVersion(ctx context.Context) (*Versions, error)

	// Close stops every background goroutine of the client (AutoSync
	// loops, leader refreshes, health probes), cancels requests in flight
	// and closes idle connections. Calls in flight and calls made
	// afterwards fail with ErrClosed; a write in flight that may have
	// reached a server fails with an error matching both ErrClosed and
	// ErrOutcomeUnknown. Close is idempotent and returns nil.
	Close() error

	// do sends a request to the cluster; it seals the interface.
	do(ctx context.Context, r *request) (*response, error)
	// probe checks that one endpoint answers.
	probe(ctx context.Context, endpoint string) error
	// endpointDown is closed when the endpoint is ejected or removed.
	endpointDown(endpoint string) <-chan struct{}
	// doAt sends a request to one given endpoint (health probes).
	doAt(ctx context.Context, endpoint string, r *request) (*response, error)
}

// Versions is the answer of GetVersion.
type Versions struct {
	// Server is the version of the member that answered.
	Server string `json:"etcdserver"`
	// Cluster is the version the cluster runs at ("not_decided" early on).
	Cluster string `json:"etcdcluster"`
}

// New creates a Client from cfg. It checks the configuration and does no
// I/O; the first request contacts the cluster.
func New(cfg Config) (Client, error) {
	return newClient(cfg, clock.Real{}, rand.Int64N)
}

// newClient is New with the clock and the randomness (rnd(n) is uniform
// in [0, n)) of the health machinery injected.
func newClient(cfg Config, clk clock.Clock, rnd func(int64) int64) (Client, error) {
	c := &httpClusterClient{
		clk:           clk,
		rnd:           rnd,
		rounds:        cfg.Rounds,
		budget:        newRetryBudget(cfg.RetryBudget, clk.Now()),
		backoffBase:   roundBackoffBase,
		transport:     cfg.Transport,
		checkRedirect: cfg.CheckRedirect,
		creds:         newCredentials(cfg.Username, cfg.Password),
		headerTimeout: cfg.HeaderTimeoutPerRequest,
		selector:      cfg.Selector,
		logger:        cfg.Logger,
		maxBody:       cfg.MaxResponseBytes,
		resendSets:    cfg.ResendUnconditionalSets,
		hooks:         newHookSet(cfg.Hooks),
	}
	c.mono.on = cfg.MonotonicReads
	if c.transport == nil {
		c.transport = DefaultTransport
	}
	if c.checkRedirect == nil {
		c.checkRedirect = DefaultCheckRedirect
	}
	if c.rounds <= 0 {
		c.rounds = DefaultRounds
	}
	c.health = newTracker(c, cfg.Ejection)
	if c.selector == nil {
		c.selector = selectorFor(cfg.SelectionMode)
	}
	c.observer, _ = c.selector.(Observer)
	c.wantLeader = wantsLeader(c.selector)
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	c.raftPatience = raftPatience
	if _, ok := c.transport.(*http.Transport); ok {
		c.headers = newSharedHeaders(c.creds.header)
	}
	c.transport = tlsExplainer{c.transport}
	c.closeCtx, c.closeFn = context.WithCancel(context.Background())
	if err := c.SetEndpoints(cfg.Endpoints); err != nil {
		return nil, err
	}
	return c, nil
}

// httpClusterClient is the Client.
type httpClusterClient struct {
	transport     CancelableTransport
	checkRedirect CheckRedirectFunc
	// creds are the credentials; printing them shows no secret.
	creds credentials
	// headerTimeout is Config.HeaderTimeoutPerRequest: 0 adaptive, <0 none.
	headerTimeout time.Duration
	selector      Selector
	observer      Observer
	wantLeader    bool
	logger        *slog.Logger
	maxBody       int64
	resendSets    bool
	hooks         *hookSet // nil: none

	// eps is the current endpoint list; replaced whole, never modified.
	eps atomic.Pointer[endpointSet]
	// setMu serializes writers of eps.
	setMu sync.Mutex

	// clusterID is the X-Etcd-Cluster-Id first seen, or nil.
	clusterID atomic.Pointer[string]
	// leader is the leader tracker's state (leader.go).
	leader leaderTracker

	// health owns the endpoints' health: states, ejection, probes,
	// latency estimates, the adaptive timeout (health.go wires it).
	health *health.Tracker
	// The request loop's time, randomness, rounds and retry budget
	// (request.go).
	clk         clock.Clock
	rnd         func(int64) int64
	rounds      int
	backoffBase time.Duration
	budget      *retry.Budget
	// mono is the monotonic-read guard's state (monotonic_reads.go).
	mono                        monotonicFloor
	nRequests, nRetries, nStale atomic.Uint64
	bufs                        sync.Pool // *selectBuf
	chunks                      sync.Pool // *[bodyChunk]byte
	// testHookProbeDone, when set (by tests, before use), is called after
	// each readmission probe.
	testHookProbeDone func(url string, err error)

	// headers are shared by requests when the transport is net/http's
	// own; zero otherwise.
	headers sharedHeaders
	// raftPatience is raftPatience; tests shorten it.
	raftPatience time.Duration
	// inflight holds the attempts in flight, for Close to cancel, but for
	// the plain reads, which the watchdog holds.
	inflight inflightSet
	watchdog watchdog
	closeCtx context.Context
	closeFn  context.CancelFunc
	bg       sync.WaitGroup
	closed   atomic.Bool
	// watches are the shared watch polls (watch_share.go).
	watches watchHub
}

// Close implements Client.
func (c *httpClusterClient) Close() error {
	c.setMu.Lock()
	already := c.closed.Swap(true)
	c.setMu.Unlock()
	if already {
		return nil
	}
	c.closeFn()
	c.watchdog.stop()
	c.inflight.cancelAll(ErrClosed)
	c.watchdog.set.cancelAll(ErrClosed)
	c.health.Close()
	c.bg.Wait()
	if t, ok := c.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	return nil
}

// goBackground runs f in a goroutine that Close waits for. It returns
// false, without running f, once the client is closed.
func (c *httpClusterClient) goBackground(f func(ctx context.Context)) bool {
	c.setMu.Lock()
	defer c.setMu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		f(c.closeCtx)
	}()
	return true
}
