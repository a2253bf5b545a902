package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	official "go.etcd.io/etcd/client/v2"
)

// TestMain reaps etcd processes left by an earlier killed run, runs the
// tests and fails the run if any goroutine outlives them.
func TestMain(m *testing.M) { testbed.Main(m) }

// The load and the schedule (see Load in results.go).
const (
	rate        = 200 // requests per second, open loop
	workers     = 64
	writeShare  = 0.2
	numKeys     = 100
	reqTimeout  = 5 * time.Second // the caller's deadline per request
	before      = 4 * time.Second
	faultFor    = 5 * time.Second
	after       = 8 * time.Second
	baselineFor = 10 * time.Second
	// drainLimit bounds waiting for requests still queued or in flight
	// once the schedule is over; the rest count as unserved.
	drainLimit = 12 * time.Second
	pollEvery  = 20 * time.Millisecond
)

type contender struct {
	name   string
	ours   bool
	sticky bool // pins one member: the fault goes to the busiest one
	sel    func() client.Selector
	hto    time.Duration // official only
}

func contenders() []contender {
	return []contender{
		{name: "Sticky (default)", ours: true, sticky: true, sel: func() client.Selector { return nil }},
		{name: "Random", ours: true, sel: client.Random},
		{name: "RoundRobin", ours: true, sel: client.RoundRobin},
		{name: "PreferLeader", ours: true, sel: func() client.Selector { return client.PreferLeader(nil) }},
		{name: "LeastLatency", ours: true, sel: client.LeastLatency},
		{name: "LeastInFlight", ours: true, sel: client.LeastInFlight},
		{name: "official (defaults)", sticky: true},
		{name: "official (HeaderTimeoutPerRequest 1s)", sticky: true, hto: time.Second},
	}
}

// scenario injects a fault into target and restores it.
type scenario struct {
	name     string
	leader   bool // the target is the leader, whatever the contender
	inject   func(t *testing.T, cl *testbed.Cluster, m *testbed.Member)
	restore  func(t *testing.T, cl *testbed.Cluster, m *testbed.Member)
	baseline bool
}

func kill(t *testing.T, _ *testbed.Cluster, m *testbed.Member) {
	// A killed host's port refuses connects; the bed's client proxy would
	// otherwise accept and then close, which no real kill looks like.
	m.Proxy().Refuse(true)
	m.Kill(t)
}

func restart(t *testing.T, _ *testbed.Cluster, m *testbed.Member) {
	m.Proxy().Refuse(false)
	m.Restart(t)
}

func scenarios() []scenario {
	delay := func(d time.Duration) func(*testing.T, *testbed.Cluster, *testbed.Member) {
		return func(_ *testing.T, _ *testbed.Cluster, m *testbed.Member) { m.Proxy().SetDelay(d) }
	}
	return []scenario{
		{name: "baseline", baseline: true},
		{name: "kill9", inject: kill, restore: restart},
		{name: "sigstop", inject: func(t *testing.T, _ *testbed.Cluster, m *testbed.Member) { m.Stop(t) },
			restore: func(t *testing.T, _ *testbed.Cluster, m *testbed.Member) { m.Continue(t) }},
		{name: "delay100ms", inject: delay(100 * time.Millisecond), restore: delay(0)},
		{name: "delay1s", inject: delay(time.Second), restore: delay(0)},
		{name: "leaderkill", leader: true, inject: kill, restore: restart},
		{name: "isolate", inject: func(t *testing.T, _ *testbed.Cluster, m *testbed.Member) { m.Isolate(t) },
			restore: func(t *testing.T, _ *testbed.Cluster, m *testbed.Member) { m.Rejoin(t) }},
	}
}

// TestFaultSuite runs every scenario against every contender, each on a
// fresh 3-member cluster with proxies on client and peer ports, and writes
// the results to ETCDV2_FAULTS_OUT. It takes about 20 minutes, so it runs
// only with ETCDV2_FAULTS=1 (scripts/resilience sets it).
func TestFaultSuite(t *testing.T) {
	if os.Getenv("ETCDV2_FAULTS") != "1" {
		t.Skip("fault suite skipped: it runs ~20 min of load on a real cluster; set ETCDV2_FAULTS=1 (and ETCDV2_FAULTS_OUT=<file.json>) or use scripts/resilience")
	}
	out := os.Getenv("ETCDV2_FAULTS_OUT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "faults.json")
		t.Logf("ETCDV2_FAULTS_OUT not set; writing %s", out)
	}
	la, _ := os.ReadFile("/proc/loadavg")
	res := &Results{
		Started:   time.Now().UTC(),
		GoVersion: runtime.Version(),
		CPUs:      runtime.NumCPU(),
		LoadAvg:   strings.TrimSpace(string(la)),
		Load: Load{
			Rate: rate, Workers: workers, WriteShare: writeShare, Keys: numKeys,
			RequestTimeout: reqTimeout.String(), Before: before.String(), Fault: faultFor.String(),
			After: after.String(), Baseline: baselineFor.String(),
		},
	}
	save := func() {
		b, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = os.WriteFile(out, append(b, '\n'), 0o644)
		}
		if err != nil {
			t.Errorf("writing %s: %v", out, err)
		}
	}
	for _, sc := range scenarios() {
		for _, ct := range contenders() {
			sc, ct := sc, ct
			t.Run(sc.name+"/"+ct.name, func(t *testing.T) {
				r := runOne(t, sc, ct)
				res.Runs = append(res.Runs, r)
				save() // keep what was measured even if a later run dies
			})
		}
	}
	save()
}

// kvClient is the slice of a keys API the load uses.
type kvClient struct {
	get, set func(ctx context.Context, key, val string) (endpoint string, err error)
	stats    func() *client.Stats
	close    func()
}

// attempt is one HTTP request seen by the counting transport.
type attempt struct {
	at   time.Duration // since the load started
	host string
	keys bool
	resp bool // response headers came back
}

// recorder is a CancelableTransport that records every attempt.
type recorder struct {
	base  *http.Transport
	start time.Time
	mu    sync.Mutex
	list  []attempt
}

const maxAttempts = 400_000

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	a := attempt{at: time.Since(r.start), host: req.URL.Host, keys: strings.HasPrefix(req.URL.Path, "/v2/keys")}
	resp, err := r.base.RoundTrip(req)
	a.resp = err == nil
	r.mu.Lock()
	if len(r.list) < maxAttempts {
		r.list = append(r.list, a)
	}
	r.mu.Unlock()
	return resp, err
}

func (r *recorder) CancelRequest(req *http.Request) {
	type canceler interface{ CancelRequest(*http.Request) }
	var c canceler = r.base
	c.CancelRequest(req)
}

func (r *recorder) attempts() []attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]attempt(nil), r.list...)
}

func newKV(t *testing.T, ct contender, urls []string, rec *recorder) kvClient {
	if ct.ours {
		c, err := client.New(client.Config{Endpoints: urls, Transport: rec, Selector: ct.sel()})
		if err != nil {
			t.Fatal(err)
		}
		k := client.NewKeysAPI(c)
		return kvClient{
			get: func(ctx context.Context, key, _ string) (string, error) {
				r, err := k.Get(ctx, key, nil)
				if r != nil {
					return r.Endpoint, err
				}
				return "", err
			},
			set: func(ctx context.Context, key, val string) (string, error) {
				r, err := k.Set(ctx, key, val, nil)
				if r != nil {
					return r.Endpoint, err
				}
				return "", err
			},
			stats: func() *client.Stats {
				s := c.(client.StatsReporter).Stats()
				return &s
			},
			close: func() { c.Close() },
		}
	}
	c, err := official.New(official.Config{Endpoints: urls, Transport: rec, HeaderTimeoutPerRequest: ct.hto})
	if err != nil {
		t.Fatal(err)
	}
	k := official.NewKeysAPI(c)
	// The official Response does not say which member answered, and the
	// client sends its requests without the caller's context, so answers
	// per member are counted at the transport instead (Phase.Answers).
	return kvClient{
		get: func(ctx context.Context, key, _ string) (string, error) {
			_, err := k.Get(ctx, key, nil)
			return "", err
		},
		set: func(ctx context.Context, key, val string) (string, error) {
			_, err := k.Set(ctx, key, val, nil)
			return "", err
		},
		stats: func() *client.Stats { return nil },
		close: func() {},
	}
}

// answered reports whether err is a successful answer for the load: none,
// or key not found (a valid answer; the keys are seeded, so rare).
func answered(err error) bool {
	return err == nil || client.IsKeyNotFound(err) || official.IsKeyNotFound(err)
}

// reqRec is one scheduled request.
type reqRec struct {
	sched    time.Duration // since start
	started  time.Duration // the call began (later than sched when queued)
	done     time.Duration // 0: not finished
	write    bool
	delayed  bool
	unserved bool
	ok       bool
	ep       string
	err      string
	// unknownAt is the endpoint of a failed write whose outcome is
	// unknown (client.OutcomeUnknownError, ours only).
	unknownAt string
}

func runOne(t *testing.T, sc scenario, ct contender) Run {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3, ProxyClients: true, ProxyPeers: true})
	setupCtx, cancelSetup := context.WithTimeout(context.Background(), time.Minute)
	defer cancelSetup()
	members := cl.Members()
	urls := cl.ClientURLs()
	name := map[string]string{} // URL → member name
	names := make([]string, len(members))
	for i, m := range members {
		name[m.URL()] = m.Name()
		names[i] = m.Name()
	}
	memberOf := func(u string) string {
		if n, ok := name[strings.TrimSuffix(u, "/")]; ok {
			return n
		}
		if u == "" {
			return "?"
		}
		return u
	}
	lead, err := cl.Leader(setupCtx)
	if err != nil {
		t.Fatal(err)
	}
	run := Run{Scenario: sc.name, Contender: ct.name, Ours: ct.ours, Members: names, MemberURLs: urls, Leader: lead.Name()}

	base := client.DefaultTransport.(*http.Transport).Clone()
	if !ct.ours {
		base = official.DefaultTransport.(*http.Transport).Clone()
	}
	base.Proxy = nil // loopback only, whatever the environment says
	// https with ETCDV2_TLS=1.
	base.TLSClientConfig = testbed.EnvTLSConfig()
	rec := &recorder{base: base, start: time.Now()}
	kv := newKV(t, ct, urls, rec)
	defer base.CloseIdleConnections()
	defer kv.close()

	// Seed the keys (also warms up connections and the latency data).
	for i := 0; i < numKeys; i++ {
		ctx, cancel := context.WithTimeout(setupCtx, reqTimeout)
		_, err := kv.set(ctx, fmt.Sprintf("/faults/k%d", i), "seed")
		cancel()
		if err != nil {
			t.Fatalf("seeding: %v", err)
		}
	}

	total := before + faultFor + after
	if sc.baseline {
		total = baselineFor
	}
	n := int(total.Seconds() * rate)
	period := time.Second / rate
	recs := make([]reqRec, n)
	rng := rand.New(rand.NewPCG(uint64(len(sc.name)), uint64(len(ct.name))))
	keyOf := make([]int, n)
	for i := range recs {
		recs[i].sched = time.Duration(i) * period
		recs[i].write = rng.Float64() < writeShare
		keyOf[i] = rng.IntN(numKeys)
	}

	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	start := time.Now()
	rec.mu.Lock()
	rec.start = start
	rec.list = rec.list[:0]
	rec.mu.Unlock()

	// Stats poller (ours).
	var polls []statsAt
	pollDone := make(chan struct{})
	stopPoll := make(chan struct{})
	go func() {
		defer close(pollDone)
		if !ct.ours {
			return
		}
		tk := time.NewTicker(pollEvery)
		defer tk.Stop()
		for i := 0; i < int((total+drainLimit)/pollEvery)+1; i++ {
			polls = append(polls, statsAt{time.Since(start), kv.stats()})
			select {
			case <-stopPoll:
				return
			case <-tk.C:
			}
		}
	}()

	// Workers and the open-loop dispatcher.
	jobs := make(chan int, n)
	var busy atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r := &recs[i]
				if runCtx.Err() != nil {
					r.unserved = true
					continue
				}
				busy.Add(1)
				r.started = time.Since(start)
				ctx, cancel := context.WithTimeout(runCtx, reqTimeout)
				key := fmt.Sprintf("/faults/k%d", keyOf[i])
				var ep string
				var err error
				if r.write {
					ep, err = kv.set(ctx, key, fmt.Sprintf("v%d", i))
				} else {
					ep, err = kv.get(ctx, key, "")
				}
				cancel()
				r.done = time.Since(start)
				busy.Add(-1)
				switch {
				case answered(err):
					r.ok, r.ep = true, ep
				case runCtx.Err() != nil:
					r.unserved = true
				default:
					r.err = err.Error()
					var oue *client.OutcomeUnknownError
					if errors.As(err, &oue) {
						r.unknownAt = oue.Endpoint
					}
				}
			}
		}()
	}
	dispatchDone := make(chan struct{})
	go func() {
		defer close(dispatchDone)
		tk := time.NewTicker(period)
		defer tk.Stop()
		next := 0
		for next < n {
			due := int(time.Since(start)/period) + 1
			for ; next < n && next < due; next++ {
				recs[next].delayed = busy.Load() >= workers
				jobs <- next // never blocks: buffered for all n
			}
			if next < n {
				<-tk.C
			}
		}
		close(jobs)
	}()

	// The scenario's schedule on this goroutine.
	var target *testbed.Member
	wait := func(until time.Duration) {
		if d := until - time.Since(start); d > 0 {
			tm := time.NewTimer(d) // the load's schedule, not synchronisation
			<-tm.C
		}
	}
	var faultAt, restoreAt time.Duration
	if !sc.baseline {
		wait(before)
		switch {
		case sc.leader:
			ctx, cancel := context.WithTimeout(setupCtx, 10*time.Second)
			target, err = cl.Leader(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			run.TargetRule = "the leader"
		case ct.sticky:
			target = busiest(rec.attempts(), members, name)
			run.TargetRule = "the member with the most key requests before the fault (the pinned one)"
		default:
			target = members[0]
			run.TargetRule = "member 0"
		}
		run.Target = target.Name()
		if cur, err := cl.Leader(setupCtx); err == nil {
			run.TargetWasLeader = cur == target
		}
		faultAt = time.Since(start)
		sc.inject(t, cl, target)
		wait(before + faultFor)
		restoreAt = time.Since(start)
		sc.restore(t, cl, target)
		run.FaultAt, run.RestoreAt = faultAt.Seconds(), restoreAt.Seconds()
		run.RestoreTook = (time.Since(start) - restoreAt).Seconds()
	}
	<-dispatchDone
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	drainTimer := time.NewTimer(drainLimit)
	select {
	case <-drained:
		drainTimer.Stop()
	case <-drainTimer.C:
		run.Note = fmt.Sprintf("drain limit %s reached; the rest counted as unserved", drainLimit)
		cancelRun()
		<-drained
	}
	close(stopPoll)
	<-pollDone
	atts := rec.attempts()

	// Phases.
	type window struct {
		name     string
		from, to time.Duration
	}
	windows := []window{{"steady", 0, total}}
	if !sc.baseline {
		windows = []window{{"before", 0, faultAt}, {"fault", faultAt, restoreAt}, {"after", restoreAt, total + time.Hour}}
	}
	for _, w := range windows {
		run.Phases = append(run.Phases, phase(w.name, recs, atts, w.from, w.to, memberOf, !ct.ours))
	}
	run.Total = phase("total", recs, atts, 0, total+time.Hour, memberOf, !ct.ours)
	run.Timeline = timeline(recs)
	run.Errors = errorCounts(recs)

	if ct.ours && len(polls) > 0 {
		run.Transitions = transitions(polls, memberOf)
		last := polls[len(polls)-1].st
		run.Final = summarize(last, memberOf)
	}
	if !sc.baseline {
		fm := &FaultMetrics{EjectMs: -1, ReadmitMs: -1, FirstOKReadMs: -1}
		tu := target.URL()
		firstRead := true
		var slow []float64
		for _, r := range recs {
			if r.sched < faultAt || r.write {
				continue
			}
			if firstRead {
				firstRead = false
				fm.FirstReadMs = ms(r.done - r.sched)
				fm.FirstReadOK = r.ok
			}
			if r.ok && r.done > 0 && (fm.FirstOKReadMs < 0 || ms(r.done-faultAt) < fm.FirstOKReadMs) {
				fm.FirstOKReadMs = ms(r.done - faultAt)
			}
		}
		for _, r := range recs {
			if r.sched >= faultAt && r.sched < restoreAt {
				if r.done-r.sched > time.Second || r.done == 0 {
					fm.Over1s++
				}
				if r.ok && memberOf(r.ep) == target.Name() {
					slow = append(slow, ms(r.done-r.sched))
				}
			}
		}
		if strings.HasPrefix(sc.name, "delay") && len(slow) > 0 {
			sort.Float64s(slow)
			fm.SlowAnswerMs = slow[len(slow)/2]
			fm.SlowAnswers = len(slow)
		}
		host := strings.TrimPrefix(tu, "http://")
		for _, a := range atts {
			if a.keys && a.host == host && a.at >= faultAt && a.at < restoreAt {
				fm.KeysToTargetAfterFault++
			}
		}
		if ct.ours {
			ejectMetrics(fm, polls, tu, faultAt, restoreAt, atts, host)
		}
		run.Fault = fm
	}
	if ct.ours && !sc.baseline {
		raftFault := sc.leader || sc.name == "isolate" || run.TargetWasLeader
		run.Unexpected = unexpectedFailures(recs, target.URL(), faultAt, run.Fault, raftFault)
		for _, u := range run.Unexpected {
			t.Errorf("unexpected failure: %s", u)
		}
	}
	t.Logf("%s / %s: target %s; total %d req, read fails %d, write fails %d, p50 %.1f ms, p99 %.1f ms, max %.0f ms",
		sc.name, ct.name, run.Target, run.Total.Requests, run.Total.ReadFails, run.Total.WriteFails, run.Total.P50, run.Total.P99, run.Total.Max)
	return run
}

type statsAt struct {
	at time.Duration
	st *client.Stats
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// busiest returns the member with the most /v2/keys attempts so far.
func busiest(atts []attempt, members []*testbed.Member, name map[string]string) *testbed.Member {
	count := map[string]int{}
	for _, a := range atts {
		if a.keys {
			count[name["http://"+a.host]]++
		}
	}
	best := members[0]
	for _, m := range members {
		if count[m.Name()] > count[best.Name()] {
			best = m
		}
	}
	return best
}

// timeline groups the requests by scheduled time into windows of
// BucketSeconds, with each window's failures and latency percentiles.
func timeline(recs []reqRec) []Bucket {
	width := time.Duration(BucketSeconds * float64(time.Second))
	var out []Bucket
	var lats [][]float64
	for _, r := range recs {
		i := int(r.sched / width)
		for len(out) <= i {
			out = append(out, Bucket{At: float64(len(out)) * BucketSeconds})
			lats = append(lats, nil)
		}
		if r.unserved {
			continue
		}
		out[i].Requests++
		if !r.ok {
			out[i].Fails++
		}
		lats[i] = append(lats[i], ms(r.done-r.sched))
	}
	for i, l := range lats {
		if len(l) == 0 {
			continue
		}
		sort.Float64s(l)
		q := func(f float64) float64 { return l[min(int(f*float64(len(l))), len(l)-1)] }
		out[i].P50, out[i].P99 = q(0.5), q(0.99)
	}
	return out
}

func phase(nm string, recs []reqRec, atts []attempt, from, to time.Duration, memberOf func(string) string, official bool) Phase {
	p := Phase{Name: nm, Answers: map[string]int{}, KeyAttempts: map[string]int{}, OtherAttempts: map[string]int{}}
	var lat []float64
	for _, r := range recs {
		if r.sched < from || r.sched >= to {
			continue
		}
		p.Requests++
		if r.write {
			p.Writes++
		} else {
			p.Reads++
		}
		if r.delayed {
			p.Delayed++
		}
		if r.unserved {
			p.Unserved++
			continue
		}
		if r.ok && r.ep != "" {
			p.Answers[memberOf(r.ep)]++
		}
		if r.ok {
		} else if r.write {
			p.WriteFails++
		} else {
			p.ReadFails++
		}
		lat = append(lat, ms(r.done-r.sched))
	}
	for _, a := range atts {
		if a.at < from || a.at >= to {
			continue
		}
		if a.keys {
			p.KeyAttempts[memberOf("http://"+a.host)]++
			if a.resp && official {
				p.Answers[memberOf("http://"+a.host)]++
			}
		} else {
			p.OtherAttempts[memberOf("http://"+a.host)]++
		}
	}
	if len(lat) > 0 {
		sort.Float64s(lat)
		q := func(f float64) float64 {
			i := int(f * float64(len(lat)))
			if i >= len(lat) {
				i = len(lat) - 1
			}
			return lat[i]
		}
		p.P50, p.P99, p.P999, p.Max = q(0.5), q(0.99), q(0.999), lat[len(lat)-1]
	}
	return p
}

func errorCounts(recs []reqRec) []ErrCount {
	count := map[string]int{}
	for _, r := range recs {
		if r.err != "" {
			count[r.err]++
		}
	}
	var out []ErrCount
	for e, c := range count {
		out = append(out, ErrCount{Err: e, Count: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Err < out[j].Err
	})
	if len(out) > 8 {
		out = out[:8]
	}
	return out
}

func transitions(ps []statsAt, memberOf func(string) string) []Transition {
	var out []Transition
	last := map[string]client.HealthState{}
	for i, p := range ps {
		for _, e := range p.st.Endpoints {
			prev, seen := last[e.URL]
			if i == 0 || !seen || prev != e.State {
				if i > 0 || e.State != client.StateHealthy {
					out = append(out, Transition{At: p.at.Seconds(), Member: memberOf(e.URL), State: e.State.String()})
				}
				last[e.URL] = e.State
			}
		}
	}
	return out
}

func summarize(s *client.Stats, memberOf func(string) string) *StatsSummary {
	out := &StatsSummary{Requests: s.Requests, Retries: s.Retries, RetriesDenied: s.RetriesDenied, AttemptTimeoutMs: ms(s.AttemptTimeout)}
	for _, e := range s.Endpoints {
		out.Endpoints = append(out.Endpoints, EndpointStats{
			Member: memberOf(e.URL), State: e.State.String(), Attempts: e.Attempts, Failures: e.Failures,
			Ejections: e.Ejections, Probes: e.Probes, ProbeFailures: e.ProbeFailures, EjectedMs: ms(e.TimeEjected),
		})
	}
	return out
}

// ejectMetrics fills the ejection and readmission times of the target from
// the polled Stats, and counts key attempts sent to it while ejected.
func ejectMetrics(fm *FaultMetrics, ps []statsAt, url string, faultAt, restoreAt time.Duration, atts []attempt, host string) {
	find := func(s *client.Stats) *client.EndpointStats {
		for i := range s.Endpoints {
			if strings.TrimSuffix(s.Endpoints[i].URL, "/") == url {
				return &s.Endpoints[i]
			}
		}
		return nil
	}
	var ejectedAt, readmitAt time.Duration = -1, -1
	var ejAtFault, ejAtRestore uint64
	haveFault, haveRestore := false, false
	ejectedAtRestore := false
	for _, p := range ps {
		e := find(p.st)
		if e == nil {
			continue
		}
		if p.at >= faultAt && !haveFault {
			haveFault, ejAtFault = true, e.Ejections
		}
		if p.at >= faultAt && ejectedAt < 0 && e.State == client.StateEjected {
			ejectedAt = p.at
		}
		if p.at < restoreAt {
			ejectedAtRestore = e.State == client.StateEjected // the last poll before the restore
		} else if !haveRestore {
			haveRestore, ejAtRestore = true, e.Ejections
		}
		if haveRestore && ejectedAtRestore && readmitAt < 0 && e.State != client.StateEjected {
			readmitAt = p.at
		}
	}
	if ejectedAt >= 0 {
		fm.EjectMs = ms(ejectedAt - faultAt)
	}
	switch {
	case haveRestore && !ejectedAtRestore:
		fm.ReadmitMs = 0
	case readmitAt >= 0:
		fm.ReadmitMs = ms(readmitAt - restoreAt)
	}
	fm.EjectionsDuringFault = int(ejAtRestore - ejAtFault)
	// Key attempts to the target while Stats showed it ejected: walk the
	// polls and count attempts between consecutive ejected polls.
	for i := 1; i < len(ps); i++ {
		a, b := find(ps[i-1].st), find(ps[i].st)
		if a == nil || b == nil || a.State != client.StateEjected || b.State != client.StateEjected || ps[i].at < faultAt {
			continue
		}
		for _, at := range atts {
			if at.keys && at.host == host && at.at >= ps[i-1].at && at.at < ps[i].at {
				fm.KeysToTargetWhileEjected++
			}
		}
	}
}

// raftWindow is how long after a fault of raft (the leader killed, a
// member cut off from its peers) a write may still be sent to a member
// that cannot commit it: about an election with the bed's timings, and the
// client's raft patience, after which it knows the member has no leader.
const raftWindow = 3 * time.Second

// unexpectedFailures checks our client's failures against what may fail
// under a fault of one member: no read, and no write but
//
//   - one whose outcome is unknown (client.ErrOutcomeUnknown) because it
//     was sent to the target before the client gave the target up (its
//     ejection; the end of the fault when it was not ejected): it reached
//     the member as it died or hung;
//   - with raftFault (leaderkill, isolate, and kill9 or sigstop of a target
//     that was the leader: the cluster loses its leader all the same), one
//     in flight at the fault or sent within raftWindow of it, which raft held on a live member that could not commit it
//     (its leader dead, or its peers out of reach) until its outcome was
//     unknown or the caller's deadline passed.
//
// Such writes are not resent (README, "Writes whose outcome is unknown").
// It returns a description of each other failure, at most 10.
func unexpectedFailures(recs []reqRec, target string, faultAt time.Duration, fm *FaultMetrics, raftFault bool) []string {
	givenUp := time.Duration(1<<62 - 1)
	if fm != nil && fm.EjectMs >= 0 {
		givenUp = faultAt + time.Duration(fm.EjectMs*float64(time.Millisecond))
	}
	var out []string
	for _, r := range recs {
		if r.ok || r.unserved || r.err == "" {
			continue
		}
		if r.write && strings.TrimSuffix(r.unknownAt, "/") == target && r.started <= givenUp {
			continue
		}
		held := r.unknownAt != "" || r.err == context.DeadlineExceeded.Error()
		if raftFault && r.write && held && r.done >= faultAt && r.started <= faultAt+raftWindow {
			continue
		}
		if len(out) < 10 {
			kind := "read"
			if r.write {
				kind = "write"
			}
			out = append(out, fmt.Sprintf("%s started at %v (fault at %v): %s", kind, r.started.Round(time.Millisecond), faultAt.Round(time.Millisecond), r.err))
		}
	}
	return out
}
