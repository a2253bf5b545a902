package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/clock"
)

// clusterClient is a client of fake members on loopback, with a fake clock
// for the health machinery (real time still drives attempt timeouts).
func clusterClient(t *testing.T, ms []*member, cfg Config) (*httpClusterClient, *clock.Fake, chan error) {
	t.Helper()
	clk := clock.NewFake()
	c, probed := clusterClientWith(t, ms, cfg, clk)
	return c, clk, probed
}

func clusterClientWith(t *testing.T, ms []*member, cfg Config, clk clock.Clock) (*httpClusterClient, chan error) {
	t.Helper()
	cfg.Endpoints = urlsOf(ms)
	c := newClockedClient(t, cfg, clk)
	c.backoffBase = 0
	probed := make(chan error, 64)
	c.testHookProbeDone = func(_ string, err error) { probed <- err }
	return c, probed
}

func TestKillRefusedNoFailedReads(t *testing.T) {
	ms := startMembers(t, 3)
	c, _, _ := clusterClient(t, ms, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The default policy pins the head of the shuffled list: kill that one.
	victim := memberAt(ms, c.Endpoints()[0])

	const readers, perReader = 16, 200
	var (
		done    atomic.Int64
		failed  atomic.Int64
		wg      sync.WaitGroup
		halfway = make(chan struct{})
		once    sync.Once
	)
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perReader; i++ {
				if _, err := read(ctx, c); err != nil {
					failed.Add(1)
					t.Errorf("read failed: %v", err)
				}
				if done.Add(1) == readers*perReader/4 {
					once.Do(func() { close(halfway) })
				}
			}
		}()
	}
	<-halfway
	victim.kill()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d reads failed", failed.Load())
	}
	v := stateOf(c, victim.url)
	if v.State != StateEjected || v.Ejections != 1 {
		t.Errorf("killed member: %+v, want ejected once", v)
	}
	// Only requests in flight at the kill (and those racing the ejection)
	// may have reached it after the kill.
	if v.Failures > readers {
		t.Errorf("%d failed attempts at the killed member, want ≤ %d", v.Failures, readers)
	}
}

func TestHungMemberStickyTimesOutOnce(t *testing.T) {
	ms := startMembers(t, 3)
	// Generous timeouts: the test machine may be loaded, and a spurious
	// timeout at a healthy member would move the pin.
	c, _, _ := clusterClient(t, ms, Config{HeaderTimeoutPerRequest: time.Second})
	hung := memberAt(ms, c.Endpoints()[0]) // the default policy's first pin
	hung.mode.Store(modeHung)
	ctx := context.Background()
	start := time.Now()
	if ep, err := read(ctx, c); err != nil || ep == hung.url {
		t.Fatalf("first read: %v at %s", err, ep)
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("first read took %v, want one attempt timeout (1 s) plus an answer", d)
	}
	for i := 0; i < 50; i++ {
		if ep, err := read(ctx, c); err != nil || ep == hung.url {
			t.Fatalf("read %d: %v at %s", i, err, ep)
		}
	}
	if n := hung.keys(); n != 1 {
		t.Errorf("hung member got %d requests, want 1; stats %+v", n, c.Stats())
	}
}

func TestHungMemberEjectedUntilReadmitted(t *testing.T) {
	ms := startMembers(t, 3)
	c, clk, probed := clusterClient(t, ms, Config{HeaderTimeoutPerRequest: 500 * time.Millisecond, Selector: RoundRobin()})
	hung := ms[1]
	hung.mode.Store(modeHung)
	ctx := context.Background()
	for i := 0; i < 60; i++ {
		if _, err := read(ctx, c); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	// K = 2 timeouts, then nothing until readmission.
	if n := hung.keys(); n != 2 {
		t.Errorf("hung member got %d requests, want 2", n)
	}
	if s := stateOf(c, hung.url); s.State != StateEjected {
		t.Fatalf("hung member is %v", s.State)
	}
	// Its probe times out: still ejected, no request reaches it.
	if err := probeNow(t, c, clk, probed); err == nil {
		t.Fatal("probe of a hung member succeeded")
	}
	for i := 0; i < 10; i++ {
		if _, err := read(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if n := hung.keys(); n != 2 {
		t.Errorf("hung member got %d requests while ejected, want 2", n)
	}
	// It recovers: the next probe readmits it and it gets its share.
	hung.mode.Store(modeOK)
	if err := probeNow(t, c, clk, probed); err != nil {
		t.Fatalf("probe after recovery: %v", err)
	}
	for i := 0; i < 30; i++ {
		if _, err := read(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if n := hung.keys(); n < 2+8 {
		t.Errorf("readmitted member got %d requests in total, want its share of the last 30", n)
	}
	if s := stateOf(c, hung.url); s.State != StateHealthy || s.Probes != 2 || s.ProbeFailures != 1 {
		t.Errorf("readmitted member: %+v", s)
	}
	waitNoProber(t, c)
}

func TestSlowMemberAvoidedByLeastLatency(t *testing.T) {
	ms := startMembers(t, 3)
	slow := ms[2]
	slow.delay.Store(int64(50 * time.Millisecond))
	// The real clock, so that the latency average decays as it would.
	c, _ := clusterClientWith(t, ms, Config{Selector: LeastLatency()}, clock.Real{})
	ctx := context.Background()
	const n = 300
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/4; i++ {
				if _, err := read(ctx, c); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := slow.keys(); got > n/10 {
		t.Errorf("slow member got %d of %d reads, want ≤ 10%%", got, n)
	}
}

func TestCloseEndsProber(t *testing.T) {
	ms := startMembers(t, 2)
	c, _, _ := clusterClient(t, ms, Config{})
	ms[0].kill()
	ms[1].kill()
	if _, err := read(context.Background(), c); err == nil {
		t.Fatal("read succeeded with every member dead")
	}
	if countGoroutines("probeLoop") != 1 {
		t.Fatal("no prober with endpoints ejected")
	}
	c.Close()
	for i := 0; i < 500 && countGoroutines("probeLoop") != 0; i++ {
		time.Sleep(2 * time.Millisecond) // polling for a goroutine's exit
	}
	if countGoroutines("probeLoop") != 0 {
		t.Error("prober outlived Close")
	}
}

// write makes a Set through the request loop (an unconditional one when
// replayable) and returns the endpoint that answered.
func write(ctx context.Context, c *httpClusterClient, replayable bool) (string, error) {
	resp, err := c.do(ctx, &request{method: http.MethodPut, path: "/v2/keys/k", body: []byte("value=v"),
		contentType: "application/x-www-form-urlencoded", kind: KindWrite, replayable: replayable})
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.endpoint, nil
}

// TestWriteStalledByRaft: a member that holds writes while it answers
// /version at once is what members look like while the cluster elects a
// leader. A write waits for it (the liveness check finds it alive); an
// unconditional Set gives up after the raft patience and moves on, without
// counting toward ejecting the member.
func TestWriteStalledByRaft(t *testing.T) {
	ms := startMembers(t, 2)
	c, _, _ := clusterClient(t, ms, Config{Selector: preferOrder(ms[0].url, ms[1].url)})
	c.health.SetTimeout(100 * time.Millisecond) // as after many fast answers
	ms[0].delay.Store(int64(600 * time.Millisecond))

	// A stall shorter than the patience is waited out, for both kinds.
	for _, replayable := range []bool{true, false} {
		start := time.Now()
		ep, err := write(context.Background(), c, replayable)
		if err != nil || ep != ms[0].url {
			t.Fatalf("write (replayable %v): %v at %s, want success at the busy member", replayable, err, ep)
		}
		if d := time.Since(start); d < 600*time.Millisecond {
			t.Errorf("write took %v, less than the member held it", d)
		}
	}
	if n := ms[0].version(); n == 0 {
		t.Errorf("the busy member's liveness was never checked")
	}

	// A longer one: the unconditional Set moves on after the patience.
	c.raftPatience = 300 * time.Millisecond
	for i := 0; i < 3; i++ {
		start := time.Now()
		ep, err := write(context.Background(), c, true)
		if err != nil || ep != ms[1].url {
			t.Fatalf("write %d: %v at %s, want success at the other member", i, err, ep)
		}
		if d := time.Since(start); d > 590*time.Millisecond {
			t.Errorf("write %d took %v: it waited past the patience", i, d)
		}
	}
	// After the first stall the member counts as leaderless, so the
	// next writes go to the other one first.
	if s := stateOf(c, ms[0].url); s.State != StateHealthy || s.Ejections != 0 || s.Failures != 1 || s.HasLeader {
		t.Errorf("stalled member: %+v, want one failure, no leader, healthy, never ejected", s)
	}
}

// TestWriteLeavesHungMember: a member that answers nothing, not even
// /version, is given up on after the liveness check, and that counts
// toward ejecting it.
func TestWriteLeavesHungMember(t *testing.T) {
	for _, replayable := range []bool{true, false} {
		ms := startMembers(t, 2)
		c, _, _ := clusterClient(t, ms, Config{Selector: preferOrder(ms[0].url, ms[1].url)})
		c.health.SetTimeout(100 * time.Millisecond)
		ms[0].mode.Store(modeHung)
		start := time.Now()
		ep, err := write(context.Background(), c, replayable)
		if replayable {
			if err != nil || ep != ms[1].url {
				t.Fatalf("write: %v at %s, want success at the other member", err, ep)
			}
		} else {
			var te *AttemptTimeoutError
			if !errors.Is(err, ErrOutcomeUnknown) || !errors.As(err, &te) || te.MemberAlive {
				t.Fatalf("write that cannot be resent: %v, want an unknown outcome after a timeout at a dead member", err)
			}
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("write took %v; the liveness check should have ended it after about 200 ms", d)
		}
		if s := stateOf(c, ms[0].url); s.Failures != 1 {
			t.Errorf("hung member: %+v, want one failure", s)
		}
	}
}

// TestDeadlineSqueezedTimeoutIsNotTheMembersFault: when the caller's
// deadline cuts an attempt's timeout short, the timeout does not count
// against the endpoint (a queue of callers near their deadlines must not
// get healthy members ejected).
func TestDeadlineSqueezedTimeoutIsNotTheMembersFault(t *testing.T) {
	ms := startMembers(t, 2)
	c, _, _ := clusterClient(t, ms, Config{Selector: preferOrder(ms[0].url, ms[1].url), Rounds: 1})
	ms[0].delay.Store(int64(400 * time.Millisecond)) // slower than the caller can wait
	ms[1].delay.Store(int64(400 * time.Millisecond))
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := read(ctx, c)
		cancel()
		if err == nil {
			t.Fatalf("read %d succeeded within a deadline shorter than the members' delay", i)
		}
	}
	for _, m := range ms {
		if s := stateOf(c, m.url); s.Failures != 0 || s.State != StateHealthy {
			t.Errorf("member %s: %+v, want no failure counted and healthy", m.url, s)
		}
	}
}
