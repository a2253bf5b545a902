package client

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/clock"
	"github.com/etcdv2/client/internal/health"
	"github.com/etcdv2/client/internal/retry"
)

// preferOrder returns a selector that takes the first candidate in the
// order of urls.
func preferOrder(urls ...string) Selector {
	return SelectorFunc(func(_ RequestInfo, c []Endpoint) int {
		for _, u := range urls {
			for i := range c {
				if c[i].URL == u {
					return i
				}
			}
		}
		return 0
	})
}

const (
	ua = "http://a:2379"
	ub = "http://b:2379"
	uc = "http://c:2379"
)

// healthClient is a client over a fake transport with hosts a, b and c.
func healthClient(t *testing.T, rt *fakeRT, cfg Config) (*httpClusterClient, *clock.Fake, chan error) {
	t.Helper()
	clk := clock.NewFake()
	cfg.Endpoints = []string{ua, ub, uc}
	cfg.Transport = rt
	if cfg.Selector == nil {
		cfg.Selector = preferOrder(ua, ub, uc)
	}
	c := newClockedClient(t, cfg, clk)
	c.backoffBase = 0
	probed := make(chan error, 64)
	c.testHookProbeDone = func(_ string, err error) { probed <- err }
	return c, clk, probed
}

// probeNow advances the fake clock to the end of the earliest ejection,
// waits for the prober's probe, and returns its error. If the prober armed
// its timer just after the clock moved (and so missed it), it advances
// again; the probe hook runs before the prober re-arms, so a timer armed
// after a probe is never mistaken for a missed one.
func probeNow(t *testing.T, c *httpClusterClient, clk *clock.Fake, probed chan error) error {
	t.Helper()
	due := func() time.Duration {
		d := time.Duration(-1)
		for _, e := range c.Stats().Endpoints {
			if e.State == StateEjected && (d < 0 || e.EjectedFor < d) {
				d = e.EjectedFor
			}
		}
		if d < 0 {
			t.Fatal("nothing is ejected")
		}
		return d
	}
	for drained := false; !drained; {
		select {
		case <-clk.Added():
		default:
			drained = true
		}
	}
	clk.Advance(due())
	for i := 0; i < 100; i++ {
		select {
		case err := <-probed:
			return err
		case <-clk.Added():
			select {
			case err := <-probed:
				return err
			default:
			}
			clk.Advance(due())
		case <-time.After(10 * time.Second):
			t.Fatal("no probe ran")
		}
	}
	t.Fatal("no probe ran after 100 advances")
	return nil
}

func TestHardFailureEjectsAtOnceAndProbeReadmits(t *testing.T) {
	rt := newFakeRT()
	rt.set("b:2379", okHandler(5))
	rt.set("c:2379", okHandler(5))
	c, clk, probed := healthClient(t, rt, Config{})
	down := c.endpointDown(ua)
	ctx := context.Background()

	if ep, err := read(ctx, c); err != nil || ep != ub {
		t.Fatalf("read: %v at %s, want success at b", err, ep)
	}
	a := stateOf(c, ua)
	if a.State != StateEjected || a.Ejections != 1 || a.Failures != 1 {
		t.Fatalf("a after a refused connection: %+v", a)
	}
	if a.EjectedFor < 500*time.Millisecond || a.EjectedFor > time.Second {
		t.Errorf("first ejection %v, want in [0.5 s, 1 s]", a.EjectedFor)
	}
	select {
	case <-down:
	default:
		t.Error("down channel of a not closed on ejection")
	}
	for i := 0; i < 20; i++ {
		if _, err := read(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if n := rt.count("a:2379", "/v2/keys/k"); n != 1 {
		t.Errorf("a got %d key requests while ejected, want only the first", n)
	}

	// The probe fails: ejected again, for longer.
	if err := probeNow(t, c, clk, probed); err == nil {
		t.Fatal("probe of a refusing endpoint succeeded")
	}
	a = stateOf(c, ua)
	if a.State != StateEjected || a.ProbeFailures != 1 || a.EjectedFor < time.Second || a.EjectedFor > 2*time.Second {
		t.Errorf("after a failed probe: %+v, want ejected for [1 s, 2 s]", a)
	}
	if rt.count("a:2379", "/v2/keys/k") != 1 {
		t.Error("a request went to a while ejected")
	}

	// a comes back: the probe readmits it on probation, a request makes it healthy.
	rt.set("a:2379", okHandler(5))
	if err := probeNow(t, c, clk, probed); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if s := stateOf(c, ua).State; s != StateProbation {
		t.Fatalf("after a good probe a is %v, want probation", s)
	}
	down2 := c.endpointDown(ua)
	if down2 == down {
		t.Error("endpointDown returned the closed channel after readmission")
	}
	if ep, err := read(ctx, c); err != nil || ep != ua {
		t.Fatalf("read after readmission: %v at %s", err, ep)
	}
	if s := stateOf(c, ua).State; s != StateHealthy {
		t.Errorf("a is %v after an answer, want healthy", s)
	}
	waitNoProber(t, c)
}

func TestSoftFailuresEjectAfterK(t *testing.T) {
	rt := newFakeRT()
	rt.set("a:2379", unavailableHandler)
	rt.set("b:2379", okHandler(5))
	rt.set("c:2379", okHandler(5))
	c, clk, probed := healthClient(t, rt, Config{})
	ctx := context.Background()
	if ep, err := read(ctx, c); err != nil || ep != ub {
		t.Fatalf("read: %v at %s", err, ep)
	}
	a := stateOf(c, ua)
	if a.State != StateHealthy || a.ConsecutiveFailures != 1 || a.HasLeader {
		t.Fatalf("after one no-leader answer: %+v, want healthy, 1 failure, no leader", a)
	}
	// A write avoids an endpoint without a leader; a plain read does not.
	w := &request{method: http.MethodPut, path: "/v2/keys/k", kind: KindWrite, replayable: true}
	resp, err := c.do(ctx, w)
	if err != nil || resp.endpoint != ub {
		t.Fatalf("write: %v", err)
	}
	resp.Body.Close()
	if ep, err := read(ctx, c); err != nil || ep != ub {
		t.Fatalf("read: %v at %s", err, ep)
	}
	a = stateOf(c, ua)
	if a.State != StateEjected || a.Ejections != 1 {
		t.Fatalf("after two no-leader answers: %+v, want ejected", a)
	}
	// On probation, one failure ejects again.
	rt.set("a:2379", okHandler(5))
	if err := probeNow(t, c, clk, probed); err != nil {
		t.Fatal(err)
	}
	rt.set("a:2379", unavailableHandler)
	if _, err := read(ctx, c); err != nil {
		t.Fatal(err)
	}
	if a = stateOf(c, ua); a.State != StateEjected || a.Ejections != 2 {
		t.Errorf("failure on probation: %+v, want ejected again", a)
	}
}

func TestNeverZeroCandidates(t *testing.T) {
	rt := newFakeRT() // every host refuses
	c, _, _ := healthClient(t, rt, Config{Rounds: 1})
	ctx := context.Background()
	_, err := read(ctx, c)
	var ce *ClusterError
	if !errors.As(err, &ce) || len(ce.Errors) != 3 {
		t.Fatalf("total outage: %v, want a ClusterError of 3 attempts", err)
	}
	for _, e := range c.Stats().Endpoints {
		if e.State != StateEjected {
			t.Fatalf("%s is %v, want ejected", e.URL, e.State)
		}
	}
	// Everything is ejected, yet requests are still sent, least bad first.
	rt.set("b:2379", okHandler(5))
	ep, err := read(ctx, c)
	if err != nil {
		t.Fatalf("read with every endpoint ejected: %v", err)
	}
	if ep != ub {
		t.Errorf("answered by %s", ep)
	}
	if s := stateOf(c, ub).State; s != StateHealthy {
		t.Errorf("b answered while ejected and is %v, want healthy", s)
	}
}

func TestRetryBudgetCapsAttemptsInOutage(t *testing.T) {
	const n = 1000
	for _, disabled := range []bool{false, true} {
		rt := newFakeRT()
		for _, h := range []string{"a:2379", "b:2379", "c:2379"} {
			rt.set(h, unavailableHandler) // soft failures: retries are not free
		}
		c, _, _ := healthClient(t, rt, Config{Rounds: 3, RetryBudget: RetryBudget{Disabled: disabled}})
		ctx := context.Background()
		for i := 0; i < n; i++ {
			if _, err := read(ctx, c); err == nil {
				t.Fatal("read succeeded in an outage")
			}
		}
		attempts := rt.total("/v2/keys/k")
		if disabled {
			if attempts != 9*n {
				t.Errorf("without budget: %d attempts, want %d", attempts, 9*n)
			}
			continue
		}
		// The clock does not move: the bank of 100 plus 20% of requests.
		if limit := n + retry.Max + n/5 + 1; attempts > limit {
			t.Errorf("%d attempts for %d requests, want ≤ %d", attempts, n, limit)
		}
		if s := c.Stats(); s.RetriesDenied == 0 || s.Requests != n {
			t.Errorf("stats %+v", s)
		}
	}
}

func TestBackoffBetweenRoundsOnly(t *testing.T) {
	rt := newFakeRT()
	for _, h := range []string{"a:2379", "b:2379", "c:2379"} {
		rt.set(h, unavailableHandler)
	}
	c, clk, _ := healthClient(t, rt, Config{Rounds: 2})
	c.backoffBase = roundBackoffBase
	done := make(chan error, 1)
	go func() { _, err := read(context.Background(), c); done <- err }()
	// The first round makes three attempts without waiting; then the
	// request waits on a timer of the injected clock.
	waitTimer(t, clk)
	if n := rt.total("/v2/keys/k"); n != 3 {
		t.Errorf("%d attempts before the backoff, want 3", n)
	}
	for i := 0; i < 100; i++ {
		clk.Advance(roundBackoffMax)
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("succeeded")
			}
			if n := rt.total("/v2/keys/k"); n != 6 {
				t.Errorf("%d attempts in 2 rounds, want 6", n)
			}
			return
		case <-clk.Added():
		}
	}
	t.Fatal("request did not end")
}

func TestBackoffRespectsDeadline(t *testing.T) {
	rt := newFakeRT()
	c, _, _ := healthClient(t, rt, Config{Rounds: 5})
	c.backoffBase = roundBackoffBase
	c.rnd = func(n int64) int64 { return n - 1 } // the longest pause: ~100 ms, then 200 ms, ...
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := read(ctx, c)
	var ce *ClusterError
	if !errors.As(err, &ce) || len(ce.Errors) != 3 {
		t.Fatalf("got %v, want a ClusterError after one round", err)
	}
}

func TestEndpointDownOnRemoval(t *testing.T) {
	rt := newFakeRT()
	c, _, _ := healthClient(t, rt, Config{})
	ch := c.endpointDown(ub)
	select {
	case <-ch:
		t.Fatal("closed before anything happened")
	default:
	}
	if err := c.SetEndpoints([]string{ua, uc}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Error("not closed when b was removed")
	}
	select {
	case <-c.endpointDown("http://unknown:1"):
	default:
		t.Error("not closed for an unknown endpoint")
	}
}

// laggingB is a client with MonotonicReads over members a and c at index
// 100 and b at 50 (quorum reads answer 120, at the hosts it appends to
// quorumAt), whose floor a read at a raised to 100, and whose reads now go
// to b, then c.
func laggingB(t *testing.T) (c *httpClusterClient, quorumAt *[]string) {
	t.Helper()
	rt := newFakeRT()
	quorumAt = new([]string)
	plain := func(index uint64) func(*http.Request) (*http.Response, error) {
		return func(req *http.Request) (*http.Response, error) {
			if strings.Contains(req.URL.RawQuery, "quorum=true") {
				*quorumAt = append(*quorumAt, req.URL.Host)
				return answer(req, 200, 120, `{}`), nil
			}
			return answer(req, 200, index, `{}`), nil
		}
	}
	rt.set("a:2379", plain(100))
	rt.set("b:2379", plain(50)) // lagging
	rt.set("c:2379", plain(100))
	order := []string{ua}
	sel := SelectorFunc(func(i RequestInfo, cs []Endpoint) int { return preferOrder(order...).Select(i, cs) })
	c, _, _ = healthClient(t, rt, Config{MonotonicReads: true, Selector: sel})
	if _, err := read(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	order = []string{ub, uc}
	return c, quorumAt
}

func TestMonotonicReadsUpgradeToQuorum(t *testing.T) {
	c, qa := laggingB(t)
	ctx := context.Background()
	ep, err := read(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if ep != uc || len(*qa) != 1 || (*qa)[0] != "c:2379" {
		t.Errorf("stale answer at b: returned from %s, quorum reads at %v; want a quorum read at c", ep, *qa)
	}
	if s := c.Stats(); s.StaleReads != 1 {
		t.Errorf("StaleReads = %d", s.StaleReads)
	}
	if b := stateOf(c, ub); b.IndexLag != 50 || b.State != StateHealthy {
		t.Errorf("b: lag %d state %v, want lag 100-50 and healthy", b.IndexLag, b.State)
	}
}

// TestWithoutMonotonicReads: a read under WithoutMonotonicReads returns
// the lagging member's answer as it is, where the same read without it is
// sent again as a quorum read.
func TestWithoutMonotonicReads(t *testing.T) {
	c, qa := laggingB(t)
	ctx := context.Background()
	ep, err := read(WithoutMonotonicReads(ctx), c)
	if err != nil {
		t.Fatal(err)
	}
	if ep != ub || len(*qa) != 0 || c.Stats().StaleReads != 0 {
		t.Errorf("answered from %s, quorum reads at %v, %d stale reads; want b's answer as it is", ep, *qa, c.Stats().StaleReads)
	}
	// The guard still holds for the reads that do not ask to be left alone.
	if ep, err = read(ctx, c); err != nil || ep != uc || len(*qa) != 1 {
		t.Errorf("without it: answered from %s (%v), quorum reads at %v; want a quorum read at c", ep, err, *qa)
	}
}

func TestAttemptTimeoutDefaults(t *testing.T) {
	// The adaptive timeout's bounds are those of internal/health.
	if MinAdaptiveHeaderTimeout != health.MinTimeout || DefaultHeaderTimeoutPerRequest != health.MaxTimeout {
		t.Fatalf("bounds %v..%v, internal/health has %v..%v", MinAdaptiveHeaderTimeout, DefaultHeaderTimeoutPerRequest, health.MinTimeout, health.MaxTimeout)
	}

	c := &httpClusterClient{health: health.NewTracker(health.Config{})}
	replayable := &request{replayable: true}
	if got := c.attemptTimeout(context.Background(), replayable, true); got != DefaultHeaderTimeoutPerRequest {
		t.Errorf("adaptive without data: %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if got := c.attemptTimeout(ctx, replayable, true); got > 500*time.Millisecond {
		t.Errorf("1 s deadline with endpoints left: %v, want ≤ 500 ms", got)
	}
	if got := c.attemptTimeout(ctx, replayable, false); got != DefaultHeaderTimeoutPerRequest {
		t.Errorf("last endpoint: %v, want the full timeout", got)
	}
	c.headerTimeout = -1
	if got := c.attemptTimeout(context.Background(), replayable, true); got != 0 {
		t.Errorf("disabled: %v", got)
	}
	if got := c.attemptTimeout(ctx, replayable, true); got != 0 {
		t.Errorf("disabled, with a deadline: %v, want no timeout", got)
	}
	c.headerTimeout = 0
	c.health.SetTimeout(300 * time.Millisecond)
	if got := c.attemptTimeout(context.Background(), &request{}, true); got != DefaultWriteHeaderTimeout {
		t.Errorf("non-replayable: %v, want the fixed write default", got)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want health.Class
	}{
		{nil, health.Success},
		{context.Canceled, health.Ignore},
		{ErrClosed, health.Ignore},
		{refused("x"), health.Hard},
		{&ClusterIDMismatchError{}, health.Hard},
		{&AttemptTimeoutError{After: time.Second}, health.Soft},
		{Error{Code: ErrorCodeRaftInternal}, health.NoLeader},
		{Error{Code: ErrorCodeLeaderElect}, health.NoLeader},
		{&HTTPError{StatusCode: 503}, health.NoLeader},
		{&HTTPError{StatusCode: 500}, health.Soft},
		{errors.New("unexpected EOF"), health.Soft},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestEjectionLengthGrowsAndCaps(t *testing.T) {
	c := newTracker(&httpClusterClient{rnd: detRand(2)}, EjectionConfig{})
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		for i := 0; i < 100; i++ {
			if d := c.EjectionLength(n + 1); d < want/2 || d > want {
				t.Fatalf("ejection %d lasted %v, want in [%v, %v]", n+1, d, want/2, want)
			}
		}
	}
}

// waitNoProber waits for the prober goroutine to end, as it must once
// nothing is ejected.
func waitNoProber(t *testing.T, c *httpClusterClient) {
	t.Helper()
	for i := 0; i < 500; i++ {
		running := c.health.ProberRunning()
		if !running && countGoroutines("probeLoop") == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond) // polling for a goroutine's exit
	}
	t.Fatal("prober goroutine still running with nothing ejected")
}

func countGoroutines(marker string) int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, marker) {
			n++
		}
	}
	return n
}
