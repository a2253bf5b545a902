package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Default raft timings. 100 ms heartbeats and a 1 s election timeout elect a
// leader within a couple of seconds and survive a loaded 2-core machine
// running tests under -race without spurious elections.
const (
	// DefaultHeartbeatMS is the default --heartbeat-interval in ms.
	DefaultHeartbeatMS = 100
	// DefaultElectionMS is the default --election-timeout in ms.
	DefaultElectionMS = 1000
)

// Options configures NewCluster. The zero value is a single member with the
// default timings and no proxies.
type Options struct {
	// Size is the number of members; 0 means 1.
	Size int
	// ProxyClients puts a fault Proxy in front of each member's client
	// port. Members then advertise the proxy URL as their client URL, and
	// ClientURLs and Member.URL return proxy URLs.
	ProxyClients bool
	// ProxyPeers puts a Proxy in front of each member's peer port and makes
	// the member advertise it as its peer URL, so that all peer traffic
	// into a member passes its proxy. Required by Member.Isolate.
	ProxyPeers bool
	// HeartbeatMS is etcd's --heartbeat-interval; 0 means
	// DefaultHeartbeatMS.
	HeartbeatMS int
	// ElectionMS is etcd's --election-timeout; 0 means DefaultElectionMS.
	ElectionMS int
	// ExtraArgs are appended to every member's command line.
	ExtraArgs []string
	// ClientTLS, when set, serves the client URLs over https (see
	// TLSOptions); Cluster.ClientTLS then has what clients need. nil means
	// plain http, unless ETCDV2_TLS=1 (TLSFromEnv).
	ClientTLS *TLSOptions
	// PeerTLS, when set, serves the peer URLs over https. nil means plain
	// http, unless ETCDV2_TLS=1.
	PeerTLS *TLSOptions
	// Plain keeps both plain http even when ETCDV2_TLS=1.
	Plain bool
	// Version selects the etcd server: "" is the integration module's
	// pinned 3.5 (EtcdBinary, v2 API enabled); "3.6" and "3.7" are built by
	// EtcdBinaryVersion and serve only the v3 API (no v2 store and no
	// /v2/members: the test bed then uses the v3 gRPC gateway, and
	// AddMember and RemoveMember are not available).
	Version string
}

// Cluster is a set of etcd member processes started by NewCluster. Its
// methods may be called from the test goroutine; the query methods (Leader,
// WaitHealthy, Members, ClientURLs) are also safe from other goroutines.
type Cluster struct {
	tb    testing.TB
	opts  Options
	bin   string
	dir   string
	token string
	httpc *http.Client
	// tlsInfo is the client TLS material, or nil (plain http).
	tlsInfo *ClientTLSInfo

	mu       sync.Mutex
	members  []*Member
	removed  []*Member
	nextIdx  int
	closed   bool
	isolated map[*Member]bool
	v3api    bool // members run without the v2 API (DisableV2, Upgrade)
}

// startTimeout bounds waiting for a newly started cluster to be healthy.
func startTimeout(size int) time.Duration {
	return 30*time.Second + time.Duration(size)*5*time.Second
}

// NewCluster starts opts.Size etcd members as separate OS processes (binary
// from EtcdBinary, v2 API enabled, data under tb.TempDir, free loopback
// ports), waits until WaitHealthy succeeds and registers a tb.Cleanup that
// dumps the tail of every member's log when the test failed and then calls
// Close. If a member cannot bind its port the whole cluster is started
// again on new ports (up to 3 attempts). Any other failure is fatal to tb.
func NewCluster(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	if opts.Size <= 0 {
		opts.Size = 1
	}
	if opts.HeartbeatMS <= 0 {
		opts.HeartbeatMS = DefaultHeartbeatMS
	}
	if opts.ElectionMS <= 0 {
		opts.ElectionMS = DefaultElectionMS
	}
	setupTLS(tb, &opts)
	bin := EtcdBinaryVersion(tb, opts.Version)
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		start := time.Now()
		var c *Cluster
		c, err = tryStartCluster(tb, opts, bin)
		if err == nil {
			tb.Logf("testbed: %d-member cluster healthy in %s", opts.Size, time.Since(start).Round(time.Millisecond))
			return c
		}
		if !errors.Is(err, errBind) {
			break
		}
		tb.Logf("testbed: attempt %d: %v; retrying on new ports", attempt, err)
	}
	tb.Fatalf("testbed: starting %d-member cluster: %v", opts.Size, err)
	return nil
}

var errBind = errors.New("member could not bind its port")

func tryStartCluster(tb testing.TB, opts Options, bin string) (*Cluster, error) {
	c := &Cluster{
		tb:       tb,
		opts:     opts,
		bin:      bin,
		dir:      tb.TempDir(),
		token:    randomToken(),
		httpc:    &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}},
		isolated: map[*Member]bool{},
	}
	if opts.ClientTLS != nil {
		c.tlsInfo = clusterClientTLS(tb, opts)
		c.httpc.Transport.(*http.Transport).TLSClientConfig = bedTransportTLS(c.tlsInfo)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			c.DumpLogs()
		}
		c.Close()
	})
	for i := 0; i < opts.Size; i++ {
		m, err := c.newMember()
		if err != nil {
			c.Close()
			return nil, err
		}
		c.members = append(c.members, m)
	}
	initial := c.initialCluster(nil)
	for _, m := range c.members {
		m.args = m.buildArgs(initial, "new")
		if err := m.start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout(opts.Size))
	defer cancel()
	if err := c.waitHealthy(ctx, true); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.refreshIDs(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func randomToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "testbed-" + hex.EncodeToString(b)
}

// newMember allocates ports, proxies and directories for the next member.
func (c *Cluster) newMember() (*Member, error) {
	c.mu.Lock()
	idx := c.nextIdx
	c.nextIdx++
	c.mu.Unlock()
	m := &Member{c: c, name: fmt.Sprintf("m%d", idx)}
	var err error
	if m.clientPort, err = freePort(); err != nil {
		return nil, err
	}
	if m.peerPort, err = freePort(); err != nil {
		return nil, err
	}
	dir := filepath.Join(c.dir, m.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m.dataDir = filepath.Join(dir, "data")
	m.logPath = filepath.Join(dir, "etcd.log")
	m.setupTLS(c.tb, dir)
	if c.opts.ProxyClients {
		if m.clientProxy, err = newProxy(c.tb, m.clientAddr()); err != nil {
			return nil, err
		}
		m.clientProxy.https = c.opts.ClientTLS != nil
	}
	if c.opts.ProxyPeers {
		if m.peerProxy, err = newProxy(c.tb, m.peerAddr()); err != nil {
			if m.clientProxy != nil {
				m.clientProxy.Close()
			}
			return nil, err
		}
		m.peerProxy.https = c.opts.PeerTLS != nil
	}
	return m, nil
}

// initialCluster renders --initial-cluster for the current members plus
// extra.
func (c *Cluster) initialCluster(extra *Member) string {
	c.mu.Lock()
	ms := append([]*Member(nil), c.members...)
	c.mu.Unlock()
	if extra != nil {
		ms = append(ms, extra)
	}
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		parts = append(parts, m.name+"="+m.PeerURL())
	}
	return strings.Join(parts, ",")
}

// Members returns the current members: the initial ones and added ones,
// without removed ones, whether their process runs or not.
func (c *Cluster) Members() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Member(nil), c.members...)
}

// ClientURLs returns the URL a client should be configured with for each
// current member (Member.URL: proxy URLs when Options.ProxyClients).
func (c *Cluster) ClientURLs() []string {
	ms := c.Members()
	urls := make([]string, len(ms))
	for i, m := range ms {
		urls[i] = m.URL()
	}
	return urls
}

// running returns the members whose process is alive and not SIGSTOPped.
func (c *Cluster) running() []*Member {
	var out []*Member
	for _, m := range c.Members() {
		if m.alive() && !m.isStopped() {
			out = append(out, m)
		}
	}
	return out
}

// memberJSON is a member as the /v2/members API renders it.
type memberJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// do performs one HTTP request with its own timeout (bounded by ctx) and
// returns the status and body.
func (c *Cluster) do(ctx context.Context, method, url string, body []byte, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// memberHealth checks GET /health on m (direct URL) and returns the leader
// id from GET /v2/members/leader.
func (c *Cluster) memberHealth(ctx context.Context, m *Member) (string, error) {
	st, b, err := c.do(ctx, http.MethodGet, m.ClientURL()+"/health", nil, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("%s /health: %w", m.name, err)
	}
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &h) != nil || h.Health != "true" {
		return "", fmt.Errorf("%s /health: %d %s", m.name, st, bytes.TrimSpace(b))
	}
	return c.memberLeader(ctx, m)
}

func (c *Cluster) memberLeader(ctx context.Context, m *Member) (string, error) {
	if c.v3only() {
		return c.memberLeaderV3(ctx, m)
	}
	st, b, err := c.do(ctx, http.MethodGet, m.ClientURL()+"/v2/members/leader", nil, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("%s leader: %w", m.name, err)
	}
	var lj memberJSON
	if st != http.StatusOK || json.Unmarshal(b, &lj) != nil || lj.ID == "" {
		return "", fmt.Errorf("%s leader: %d %s", m.name, st, bytes.TrimSpace(b))
	}
	return lj.ID, nil
}

// WaitHealthy waits until every running member (process alive and not
// SIGSTOPped, isolated ones included) answers GET /health with 200
// {"health":"true"} and all of them name the same leader in
// GET /v2/members/leader. It polls every 50 ms until ctx is done and then
// returns an error describing the last failed check.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	return c.waitHealthy(ctx, false)
}

func (c *Cluster) waitHealthy(ctx context.Context, failOnExit bool) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		if failOnExit {
			for _, m := range c.Members() {
				if !m.alive() {
					return m.exitError()
				}
			}
		}
		last = c.checkHealthy(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not healthy: %w (last: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

func (c *Cluster) checkHealthy(ctx context.Context) error {
	ms := c.running()
	if len(ms) == 0 {
		return errors.New("no running member")
	}
	type res struct {
		leader string
		err    error
	}
	out := make([]res, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := c.memberHealth(ctx, m)
			out[i] = res{l, err}
		}()
	}
	wg.Wait()
	var errs []error
	for _, r := range out {
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for i := range out {
		if out[i].leader != out[0].leader {
			return fmt.Errorf("members disagree on the leader: %s says %s, %s says %s",
				ms[0].name, out[0].leader, ms[i].name, out[i].leader)
		}
	}
	return nil
}

// refreshIDs reads GET /v2/members from a running member and records each
// member's id by name.
func (c *Cluster) refreshIDs(ctx context.Context) error {
	if c.v3only() {
		return c.refreshIDsV3(ctx)
	}
	var last error
	for _, m := range c.running() {
		st, b, err := c.do(ctx, http.MethodGet, m.ClientURL()+"/v2/members", nil, 2*time.Second)
		if err != nil {
			last = err
			continue
		}
		var ml struct {
			Members []memberJSON `json:"members"`
		}
		if st != http.StatusOK || json.Unmarshal(b, &ml) != nil {
			last = fmt.Errorf("GET /v2/members on %s: %d %s", m.name, st, bytes.TrimSpace(b))
			continue
		}
		byName := map[string]string{}
		byPeer := map[string]string{}
		for _, j := range ml.Members {
			byName[j.Name] = j.ID
			for _, u := range j.PeerURLs {
				byPeer[u] = j.ID
			}
		}
		for _, mm := range c.Members() {
			id := byName[mm.name]
			if id == "" {
				id = byPeer[mm.PeerURL()]
			}
			if id != "" {
				mm.setID(id)
			}
		}
		return nil
	}
	if last == nil {
		last = errors.New("no running member")
	}
	return last
}

// Leader asks the running members (GET /v2/members/leader, direct URLs)
// which member leads and returns the one named by most of those that
// answered. It retries every 50 ms until ctx is done (e.g. during an
// election).
func (c *Cluster) Leader(ctx context.Context) (*Member, error) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		m, err := c.leaderOnce(ctx)
		if err == nil {
			return m, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no leader: %w (last: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

func (c *Cluster) leaderOnce(ctx context.Context) (*Member, error) {
	votes := map[string]int{}
	var errs []error
	for _, m := range c.running() {
		id, err := c.memberLeader(ctx, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		votes[id]++
	}
	if len(votes) == 0 {
		if len(errs) == 0 {
			return nil, errors.New("no running member")
		}
		return nil, errors.Join(errs...)
	}
	ids := make([]string, 0, len(votes))
	for id := range votes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return votes[ids[i]] > votes[ids[j]] })
	if len(ids) > 1 && votes[ids[0]] == votes[ids[1]] {
		return nil, fmt.Errorf("members disagree on the leader: %v", votes)
	}
	if m := c.byID(ids[0]); m != nil {
		return m, nil
	}
	if err := c.refreshIDs(ctx); err != nil {
		return nil, err
	}
	if m := c.byID(ids[0]); m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("leader %s is not a known member", ids[0])
}

func (c *Cluster) byID(id string) *Member {
	for _, m := range c.Members() {
		if m.ID() == id {
			return m
		}
	}
	return nil
}

// pickOther returns a running member other than not, for admin requests.
func (c *Cluster) pickOther(not *Member) *Member {
	for _, m := range c.running() {
		if m != not {
			return m
		}
	}
	return nil
}

// adminTimeout bounds AddMember/RemoveMember membership requests,
// including retries.
const adminTimeout = 30 * time.Second

// AddMember adds a member: it allocates ports (and proxies per Options),
// sends POST /v2/members {"peerURLs":[peer URL]} to a running member
// (retrying on 5xx and network errors), starts the process with
// --initial-cluster-state=existing and --initial-cluster listing every
// current member plus the new one, and waits until the new member's
// /health is 200. Failure is fatal to tb.
func (c *Cluster) AddMember(tb testing.TB) *Member {
	tb.Helper()
	if c.v3only() {
		tb.Fatalf("testbed: AddMember is not available on etcd %s", c.opts.Version)
	}
	m, err := c.newMember()
	if err != nil {
		tb.Fatalf("testbed: AddMember: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	body, _ := json.Marshal(map[string][]string{"peerURLs": {m.PeerURL()}})
	var last error
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for m.ID() == "" {
		via := c.pickOther(nil)
		if via == nil {
			last = errors.New("no running member")
		} else {
			st, b, err := c.do(ctx, http.MethodPost, via.ClientURL()+"/v2/members", body, 10*time.Second)
			switch {
			case err != nil:
				last = err
			case st == http.StatusCreated:
				var j memberJSON
				if err := json.Unmarshal(b, &j); err != nil || j.ID == "" {
					tb.Fatalf("testbed: AddMember: bad answer %s", b)
				}
				m.setID(j.ID)
			case st == http.StatusConflict:
				// An earlier attempt that timed out may have applied.
				_ = c.refreshIDsWith(ctx, m)
				last = fmt.Errorf("POST /v2/members: %d %s", st, bytes.TrimSpace(b))
				if m.ID() == "" && st == http.StatusConflict && !bytes.Contains(b, []byte("peerURL exists")) {
					tb.Fatalf("testbed: AddMember: %v", last)
				}
			case st >= 500:
				last = fmt.Errorf("POST /v2/members via %s: %d %s", via.name, st, bytes.TrimSpace(b))
			default:
				tb.Fatalf("testbed: AddMember: POST /v2/members via %s: %d %s", via.name, st, bytes.TrimSpace(b))
			}
		}
		if m.ID() != "" {
			break
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("testbed: AddMember: %v (last: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
	m.args = m.buildArgs(c.initialCluster(m), "existing")
	c.mu.Lock()
	c.members = append(c.members, m)
	c.mu.Unlock()
	if err := m.start(); err != nil {
		tb.Fatalf("testbed: AddMember: start %s: %v", m.name, err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), startTimeout(1))
	defer wcancel()
	if err := m.waitServing(wctx, "/health"); err != nil {
		tb.Fatalf("testbed: AddMember: %s: %v\n%s", m.name, err, m.LogTail(30))
	}
	return m
}

// refreshIDsWith is refreshIDs including a member not yet in c.members.
func (c *Cluster) refreshIDsWith(ctx context.Context, extra *Member) error {
	via := c.pickOther(extra)
	if via == nil {
		return errors.New("no running member")
	}
	st, b, err := c.do(ctx, http.MethodGet, via.ClientURL()+"/v2/members", nil, 2*time.Second)
	if err != nil {
		return err
	}
	var ml struct {
		Members []memberJSON `json:"members"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &ml) != nil {
		return fmt.Errorf("GET /v2/members: %d", st)
	}
	for _, j := range ml.Members {
		for _, u := range j.PeerURLs {
			if u == extra.PeerURL() {
				extra.setID(j.ID)
			}
		}
	}
	return nil
}

// RemoveMember sends DELETE /v2/members/<id> for m to another running
// member (retrying on 5xx and network errors; 404 and 410 count as done),
// then kills m's process (etcd may already have exited by itself), closes
// m's proxies and drops m from Members. Failure is fatal to tb.
func (c *Cluster) RemoveMember(tb testing.TB, m *Member) {
	tb.Helper()
	if c.v3only() {
		tb.Fatalf("testbed: RemoveMember is not available on etcd %s", c.opts.Version)
	}
	if m.ID() == "" {
		tb.Fatalf("testbed: RemoveMember: %s has no known id", m.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var last error
	for done := false; !done; {
		via := c.pickOther(m)
		if via == nil {
			last = errors.New("no other running member")
		} else {
			st, b, err := c.do(ctx, http.MethodDelete, via.ClientURL()+"/v2/members/"+m.ID(), nil, 10*time.Second)
			switch {
			case err != nil:
				last = err
			case st == http.StatusNoContent || st == http.StatusGone || st == http.StatusNotFound:
				done = true
			case st >= 500:
				last = fmt.Errorf("DELETE via %s: %d %s", via.name, st, bytes.TrimSpace(b))
			default:
				tb.Fatalf("testbed: RemoveMember %s: DELETE via %s: %d %s", m.name, via.name, st, bytes.TrimSpace(b))
			}
		}
		if done {
			break
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("testbed: RemoveMember %s: %v (last: %v)", m.name, ctx.Err(), last)
		case <-t.C:
		}
	}
	if err := m.kill(); err != nil {
		tb.Fatalf("testbed: RemoveMember %s: %v", m.name, err)
	}
	m.closeProxies()
	c.mu.Lock()
	for i, mm := range c.members {
		if mm == m {
			c.members = append(c.members[:i:i], c.members[i+1:]...)
			break
		}
	}
	c.removed = append(c.removed, m)
	delete(c.isolated, m)
	c.mu.Unlock()
	c.applyIsolation()
}

// applyIsolation installs, on the peer proxy of every non-isolated member,
// a filter resetting connections opened by an isolated member's process.
func (c *Cluster) applyIsolation() {
	c.mu.Lock()
	var iso []*Member
	for m := range c.isolated {
		iso = append(iso, m)
	}
	ms := append([]*Member(nil), c.members...)
	c.mu.Unlock()
	var f func(net.Conn) bool
	if len(iso) > 0 {
		f = func(conn net.Conn) bool {
			// The connecting socket's local end is our remote end.
			inode, err := tcpInode(conn.RemoteAddr().String(), conn.LocalAddr().String())
			if err != nil {
				return false
			}
			for _, m := range iso {
				if pid := m.PID(); pid > 0 && pidOwnsInode(pid, inode) {
					return true
				}
			}
			return false
		}
	}
	for _, m := range ms {
		if m.peerProxy == nil {
			continue
		}
		if c.isIsolated(m) {
			m.peerProxy.setDrop(nil)
		} else {
			m.peerProxy.setDrop(f)
		}
	}
}

func (c *Cluster) isIsolated(m *Member) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isolated[m]
}

// DumpLogs writes the last 40 lines of every member's log (removed members
// included) with tb.Logf. The cleanup registered by NewCluster calls it when
// the test failed.
func (c *Cluster) DumpLogs() {
	c.mu.Lock()
	ms := append(append([]*Member(nil), c.members...), c.removed...)
	c.mu.Unlock()
	for _, m := range ms {
		c.tb.Logf("testbed: ---- tail of %s (%s) ----\n%s", m.name, m.logPath, m.LogTail(40))
	}
}

// Close kills every member process (removed ones included), waits for them
// to exit and closes every proxy. It is idempotent and safe to call from
// any goroutine.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	ms := append(append([]*Member(nil), c.members...), c.removed...)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.kill(); err != nil {
				c.tb.Logf("testbed: Close: %v", err)
			}
			m.closeProxies()
		}()
	}
	wg.Wait()
	c.httpc.CloseIdleConnections()
}
