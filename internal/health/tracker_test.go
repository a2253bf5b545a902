package health

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/clock"
	"github.com/etcdv2/client/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// probeResult is one readmission probe as the tracker reported it.
type probeResult struct {
	url string
	err error
}

// fixture is a tracker on a fake clock whose probes answer what the test
// says: probeErr for the liveness probe, leaderErr for the leader probe.
type fixture struct {
	clk  *clock.Fake
	tr   *Tracker
	done chan probeResult

	mu        sync.Mutex
	probeErr  error
	leaderErr error
	probes    int
	leaders   int
	block     chan struct{} // when set, probes wait on it or the context
}

func newFixture(t *testing.T, after int32) *fixture {
	t.Helper()
	f := &fixture{clk: clock.NewFake(), done: make(chan probeResult, 16)}
	f.tr = NewTracker(Config{
		After: after, Base: time.Second, Max: 30 * time.Second,
		Clock: f.clk,
		Rand:  func(n int64) int64 { return n - 1 }, // the longest length: d
		Probe: func(ctx context.Context, e *Endpoint) error {
			f.mu.Lock()
			f.probes++
			err, block := f.probeErr, f.block
			f.mu.Unlock()
			if block != nil {
				select {
				case <-block:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return err
		},
		ProbeLeader: func(context.Context, *Endpoint) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.leaders++
			return f.leaderErr
		},
		ProbeDone: func(_ context.Context, e *Endpoint, err error) { f.done <- probeResult{e.URL, err} },
	})
	t.Cleanup(f.tr.Close)
	return f
}

func (f *fixture) set(probeErr, leaderErr error) {
	f.mu.Lock()
	f.probeErr, f.leaderErr = probeErr, leaderErr
	f.mu.Unlock()
}

// waitTimer waits until the prober has armed a timer on the fake clock.
func (f *fixture) waitTimer(t *testing.T) {
	t.Helper()
	select {
	case <-f.clk.Added():
	case <-time.After(10 * time.Second):
		t.Fatal("the prober armed no timer")
	}
}

func (f *fixture) waitProbe(t *testing.T) probeResult {
	t.Helper()
	select {
	case r := <-f.done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no probe ended")
	}
	return probeResult{}
}

// waitProberGone waits for the prober goroutine to end.
func waitProberGone(t *testing.T, tr *Tracker) {
	t.Helper()
	for i := 0; i < 1000 && tr.ProberRunning(); i++ {
		time.Sleep(time.Millisecond) // polling for a goroutine's exit
	}
	if tr.ProberRunning() {
		t.Fatal("the prober still runs with nothing ejected")
	}
}

var errDown = errors.New("down")

func TestSoftFailuresEjectAfterAfterAndSuccessResets(t *testing.T) {
	f := newFixture(t, 3)
	e := f.tr.SetEndpoints([]string{"a"})[0]
	now := f.clk.Now()
	down := e.Down()
	f.tr.Record(e, Soft, false, false, time.Millisecond, now, false)
	f.tr.Record(e, Soft, false, false, time.Millisecond, now, false)
	f.tr.Record(e, Success, false, false, time.Millisecond, now, false)
	if e.ConsecutiveFailures() != 0 {
		t.Fatalf("a success left %d failures in a row", e.ConsecutiveFailures())
	}
	f.tr.Record(e, Soft, false, false, time.Millisecond, now, false)
	f.tr.Record(e, Soft, false, false, time.Millisecond, now, false)
	if e.State() != Healthy {
		t.Fatalf("ejected after 2 soft failures in a row, want 3")
	}
	f.tr.Record(e, Soft, false, false, time.Millisecond, now, false)
	if e.State() != Ejected {
		t.Fatalf("state %d after 3 soft failures in a row, want ejected", e.State())
	}
	select {
	case <-down:
	default:
		t.Fatal("ejection left the down channel open")
	}
	if got := e.EjectedUntil() - now; got != int64(time.Second) {
		t.Errorf("first ejection lasts %v, want Base", time.Duration(got))
	}
	n := e.Counters(now)
	if n.Failures != 5 || n.Ejections != 1 || n.EjectedFor != time.Second {
		t.Errorf("counters %+v", n)
	}
}

func TestHardFailureEjectsAtOnce(t *testing.T) {
	f := newFixture(t, 3)
	e := f.tr.SetEndpoints([]string{"a"})[0]
	f.tr.Record(e, Hard, false, false, time.Millisecond, f.clk.Now(), false)
	if e.State() != Ejected {
		t.Fatal("a hard failure did not eject")
	}
}

func TestStalledMarksNoLeaderWithoutEjecting(t *testing.T) {
	f := newFixture(t, 1)
	e := f.tr.SetEndpoints([]string{"a"})[0]
	f.tr.Record(e, Stalled, true, false, time.Second, f.clk.Now(), false)
	if e.State() != Healthy || e.HasLeader() {
		t.Fatalf("stalled: state %d, has leader %v; want healthy without leader", e.State(), e.HasLeader())
	}
	f.tr.Record(e, Success, false, false, time.Millisecond, f.clk.Now(), false)
	if e.HasLeader() {
		t.Fatal("a plain read's success showed a leader")
	}
	f.tr.Record(e, Success, true, false, time.Millisecond, f.clk.Now(), false)
	if !e.HasLeader() {
		t.Fatal("a success through raft did not show a leader")
	}
}

func TestProbeReadmitsOnProbationThenSuccessHeals(t *testing.T) {
	f := newFixture(t, 1)
	e := f.tr.SetEndpoints([]string{"a"})[0]
	f.tr.Record(e, Hard, false, false, time.Millisecond, f.clk.Now(), false)
	f.waitTimer(t)
	f.clk.Advance(time.Second)
	if r := f.waitProbe(t); r.url != "a" || r.err != nil {
		t.Fatalf("probe %+v", r)
	}
	if e.State() != Probation {
		t.Fatalf("state %d after a good probe, want probation", e.State())
	}
	waitProberGone(t, f.tr)
	f.tr.Record(e, Success, false, false, time.Millisecond, f.clk.Now(), false)
	if e.State() != Healthy {
		t.Fatalf("state %d after a success on probation, want healthy", e.State())
	}
	n := e.Counters(f.clk.Now())
	if n.Probes != 1 || n.ProbeFailures != 0 || n.TimeEjected != time.Second {
		t.Errorf("counters %+v", n)
	}
}

func TestFailedProbeEjectsForLonger(t *testing.T) {
	f := newFixture(t, 1)
	f.set(errDown, nil)
	e := f.tr.SetEndpoints([]string{"a"})[0]
	f.tr.Record(e, Hard, false, false, time.Millisecond, f.clk.Now(), false)
	f.waitTimer(t)
	f.clk.Advance(time.Second)
	if r := f.waitProbe(t); !errors.Is(r.err, errDown) {
		t.Fatalf("probe %+v", r)
	}
	if e.State() != Ejected {
		t.Fatal("a failed probe readmitted the endpoint")
	}
	if got := time.Duration(e.EjectedUntil() - f.clk.Now()); got != 2*time.Second {
		t.Errorf("second ejection lasts %v, want 2 × Base", got)
	}
	// The next probe is not due before the new ejection ends.
	f.waitTimer(t)
	f.clk.Advance(2*time.Second - 1)
	select {
	case r := <-f.done:
		t.Fatalf("probed before the ejection ended: %+v", r)
	case <-time.After(20 * time.Millisecond): // nothing may happen: a short look
	}
	f.set(nil, nil)
	f.clk.Advance(1)
	if r := f.waitProbe(t); r.err != nil {
		t.Fatalf("probe %+v", r)
	}
	if e.State() != Probation {
		t.Fatalf("state %d, want probation", e.State())
	}
	if n := e.Counters(f.clk.Now()); n.Probes != 2 || n.ProbeFailures != 1 {
		t.Errorf("counters %+v", n)
	}
}

func TestProbationFailureEjectsAgainForLonger(t *testing.T) {
	f := newFixture(t, 5)
	e := f.tr.SetEndpoints([]string{"a"})[0]
	f.tr.Record(e, Hard, false, false, time.Millisecond, f.clk.Now(), false)
	f.waitTimer(t)
	f.clk.Advance(time.Second)
	f.waitProbe(t)
	f.tr.Record(e, Soft, false, false, time.Millisecond, f.clk.Now(), false)
	if e.State() != Ejected {
		t.Fatal("one soft failure on probation did not eject")
	}
	if got := time.Duration(e.EjectedUntil() - f.clk.Now()); got != 2*time.Second {
		t.Errorf("ejection after probation lasts %v, want 2 × Base", got)
	}
}

func TestEjectionCountResetsAfterMaxInUse(t *testing.T) {
	f := newFixture(t, 1)
	e := f.tr.SetEndpoints([]string{"a"})[0]
	f.tr.Record(e, Hard, false, false, time.Millisecond, f.clk.Now(), false)
	f.waitTimer(t)
	f.clk.Advance(time.Second)
	f.waitProbe(t)
	waitProberGone(t, f.tr)
	f.clk.Advance(30 * time.Second) // in use for Max
	f.tr.Record(e, Hard, false, false, time.Millisecond, f.clk.Now(), false)
	if got := time.Duration(e.EjectedUntil() - f.clk.Now()); got != time.Second {
		t.Errorf("ejection after Max in use lasts %v, want Base again", got)
	}
}

func TestLeaderProbeOnlyWithoutLeader(t *testing.T) {
	f := newFixture(t, 1)
	e := f.tr.SetEndpoints([]string{"a"})[0]
	f.tr.Record(e, NoLeader, false, false, time.Millisecond, f.clk.Now(), false)
	if e.State() != Ejected || e.HasLeader() {
		t.Fatal("a no-leader failure did not eject and mark the endpoint")
	}
	f.waitTimer(t)
	f.clk.Advance(time.Second)
	f.waitProbe(t)
	f.mu.Lock()
	leaders := f.leaders
	f.mu.Unlock()
	if leaders != 1 || !e.HasLeader() {
		t.Fatalf("leader probes %d, has leader %v; want 1 and true", leaders, e.HasLeader())
	}
	waitProberGone(t, f.tr)
	f.tr.Record(e, Hard, false, false, time.Millisecond, f.clk.Now(), false)
	f.waitTimer(t)
	f.clk.Advance(10 * time.Second)
	f.waitProbe(t)
	f.mu.Lock()
	leaders = f.leaders
	f.mu.Unlock()
	if leaders != 1 {
		t.Fatalf("an endpoint with a leader got a leader probe")
	}
}

func TestSuccessReadmitsOnlyWhenPickedEjected(t *testing.T) {
	f := newFixture(t, 1)
	f.set(errDown, nil)
	e := f.tr.SetEndpoints([]string{"a"})[0]
	f.tr.Record(e, Hard, false, false, time.Millisecond, f.clk.Now(), false)
	f.tr.Record(e, Success, false, false, time.Millisecond, f.clk.Now(), false)
	if e.State() != Ejected {
		t.Fatal("an answer to a request sent before the ejection readmitted it")
	}
	f.tr.Record(e, Success, false, false, time.Millisecond, f.clk.Now(), true)
	if e.State() != Healthy {
		t.Fatalf("state %d after an answer to a request sent while ejected, want healthy", e.State())
	}
	waitProberGone(t, f.tr)
}

func TestSetEndpointsCarriesStateAndRemoves(t *testing.T) {
	f := newFixture(t, 1)
	l := f.tr.SetEndpoints([]string{"a", "b"})
	a, b := l[0], l[1]
	f.tr.Record(a, Soft, false, false, time.Millisecond, f.clk.Now(), false)
	downB := f.tr.Down("b")
	l2 := f.tr.SetEndpoints([]string{"c", "a"})
	if l2[1] != a || l2[0] == b {
		t.Fatal("the state of a kept URL was not carried over")
	}
	if a.State() != Ejected {
		t.Fatal("carried-over state lost")
	}
	select {
	case <-downB:
	default:
		t.Fatal("removing b left its down channel open")
	}
	select {
	case <-f.tr.Down("unknown"):
	default:
		t.Fatal("the down channel of an unknown URL is open")
	}
	if f.tr.Lookup("a") != a || f.tr.Lookup("b") != nil {
		t.Fatal("Lookup")
	}
	f.tr.Record(b, Hard, false, false, time.Millisecond, f.clk.Now(), false)
	if b.State() == Ejected {
		t.Fatal("a removed endpoint was ejected")
	}
}

func TestLatencyAndAdaptiveTimeout(t *testing.T) {
	f := newFixture(t, 1)
	e := f.tr.SetEndpoints([]string{"a"})[0]
	now := f.clk.Now()
	f.tr.Record(e, Success, false, true, time.Minute, now, false)
	if e.Latency(now) != 0 {
		t.Fatal("a watch's latency was sampled")
	}
	for i := 0; i < 2*Every; i++ {
		f.tr.Record(e, Success, false, false, time.Millisecond, now, false)
	}
	if e.Latency(now) != time.Millisecond || f.tr.Timeout() != MinTimeout {
		t.Fatalf("latency %v, timeout %v", e.Latency(now), f.tr.Timeout())
	}
	f.tr.Record(e, Soft, false, false, time.Millisecond, now, false)
	if e.Latency(now) != FailurePenalty {
		t.Fatalf("a fast failure counts %v, want FailurePenalty", e.Latency(now))
	}
}

func TestEjectionLengthGrowsAndCaps(t *testing.T) {
	var mu sync.Mutex
	draws := []int64{0, 1}
	i := 0
	tr := NewTracker(Config{After: 1, Base: time.Second, Max: 30 * time.Second, Clock: clock.NewFake(),
		Rand: func(n int64) int64 {
			mu.Lock()
			defer mu.Unlock()
			i++
			return draws[i%2] * (n - 1)
		}})
	defer tr.Close()
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		lo, hi := tr.EjectionLength(n+1), tr.EjectionLength(n+1)
		if lo > hi {
			lo, hi = hi, lo
		}
		if lo != want/2 || hi != want {
			t.Errorf("ejection %d: range [%v, %v], want [%v, %v]", n+1, lo, hi, want/2, want)
		}
	}
}

func TestCloseStopsProberAndProbes(t *testing.T) {
	f := newFixture(t, 1)
	f.block = make(chan struct{}) // probes hang until Close
	e := f.tr.SetEndpoints([]string{"a"})[0]
	f.tr.Record(e, Hard, false, false, time.Millisecond, f.clk.Now(), false)
	f.waitTimer(t)
	f.clk.Advance(time.Second)
	for i := 0; i < 1000; i++ {
		f.mu.Lock()
		n := f.probes
		f.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond) // polling for the probe to start
	}
	f.tr.Close() // waits for the prober and the hung probe
	if f.tr.ProberRunning() {
		t.Fatal("the prober runs after Close")
	}
	select {
	case r := <-f.done:
		t.Fatalf("a probe cut off by Close was reported: %+v", r)
	default:
	}
	if e.State() != Ejected {
		t.Fatal("a probe cut off by Close changed the state")
	}
	// Nothing starts any more.
	b := f.tr.SetEndpoints([]string{"b"})[0]
	f.tr.Record(b, Hard, false, false, time.Millisecond, f.clk.Now(), false)
	if f.tr.ProberRunning() {
		t.Fatal("an ejection after Close started the prober")
	}
}
