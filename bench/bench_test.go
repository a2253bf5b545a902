package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	client "github.com/etcdv2/client"
	official "go.etcd.io/etcd/client/v2"
)

// Keys used on the shared cluster.
const (
	getKey    = "/bench/get"
	setKey    = "/bench/set"
	listDir   = "/bench/list"
	watchKey  = "/bench/watch"
	listSize  = 10000
	keyValue  = "0123456789abcdef0123456789abcdef" // 32 bytes
	opTimeout = 30 * time.Second
)

// latencyContenders are the three contenders with their default settings,
// all given the leader's URL as their only endpoint, so that every one
// talks to the same member (a Set on a follower would add the forwarding
// hop to the leader to one contender and not another).
func latencyContenders(b *testing.B, e *env) []*contender {
	b.Helper()
	eps := []string{e.leader}
	ours, err := cached("ours", func() (*contender, error) { return newOurs(nameOurs, eps, nil) })
	if err != nil {
		b.Fatal(err)
	}
	off, err := cached("official", func() (*contender, error) { return newOfficial(nameOfficial, eps, nil) })
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := cached("raw", func() (*contender, error) { return newRaw(nameRaw, e.leader, nil, false), nil })
	return []*contender{ours, off, raw}
}

var seedOnce sync.Once

// seed writes the keys the read benchmarks read, once per binary.
func seed(b *testing.B, e *env) {
	b.Helper()
	var err error
	seedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		hc := &http.Client{Transport: rawTransport(0)}
		defer hc.CloseIdleConnections()
		for _, k := range []string{getKey, setKey, watchKey} {
			if _, err = rawPut(ctx, hc, e.leader+"/v2/keys"+k, keyValue); err != nil {
				return
			}
		}
	})
	if err != nil {
		b.Fatalf("seeding keys: %v", err)
	}
}

// sequential runs op b.N times one after another after one untimed warm-up
// call (which dials the contender's connection if it has none yet).
func sequential(b *testing.B, op func(ctx context.Context) error) {
	b.Helper()
	ctx := context.Background()
	if err := op(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := op(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet is the latency of a Get of one 32-byte key (ns/op).
func BenchmarkGet(b *testing.B) {
	e := sharedEnv(b)
	seed(b, e)
	for _, c := range latencyContenders(b, e) {
		b.Run(c.name, func(b *testing.B) {
			sequential(b, func(ctx context.Context) error { return c.get(ctx, getKey, getOpts{}) })
		})
	}
}

// BenchmarkQuorumGet is the latency of a quorum Get of the same key: the
// read goes through raft.
func BenchmarkQuorumGet(b *testing.B) {
	e := sharedEnv(b)
	seed(b, e)
	for _, c := range latencyContenders(b, e) {
		b.Run(c.name, func(b *testing.B) {
			sequential(b, func(ctx context.Context) error { return c.get(ctx, getKey, getOpts{quorum: true}) })
		})
	}
}

// BenchmarkSet is the latency of a Set of one 32-byte key on the leader.
func BenchmarkSet(b *testing.B) {
	e := sharedEnv(b)
	seed(b, e)
	for _, c := range latencyContenders(b, e) {
		b.Run(c.name, func(b *testing.B) {
			sequential(b, func(ctx context.Context) error { return c.set(ctx, setKey, keyValue) })
		})
	}
}

// Concurrency levels of BenchmarkGetParallel.
var callers = []int{1, 16, 64, 256}

// parallelContenders count each contender's dials (dialCounter): ours and
// official on a copy of their package's DefaultTransport (so the pool
// settings are their defaults), raw on a transport with net/http's
// defaults, and the tuned ones on a transport whose idle pool holds n
// connections per host.
func parallelContenders(b *testing.B, e *env, n int) []*contender {
	b.Helper()
	eps := []string{e.leader}
	mk := []struct {
		key string
		fn  func() (*contender, error)
	}{
		{"p-ours", func() (*contender, error) {
			return newOurs(nameOurs, eps, newDialCounter(client.DefaultTransport))
		}},
		{"p-official", func() (*contender, error) {
			return newOfficial(nameOfficial, eps, newDialCounter(official.DefaultTransport))
		}},
		{"p-official-tuned-" + strconv.Itoa(n), func() (*contender, error) {
			return newOfficial(nameOfficialTuned, eps, newDialCounter(officialTuned(n)))
		}},
		{"p-raw", func() (*contender, error) {
			return newRaw(nameRaw, e.leader, newDialCounter(rawTransport(0)), false), nil
		}},
		{"p-raw-tuned-" + strconv.Itoa(n), func() (*contender, error) {
			return newRaw(nameRawTuned, e.leader, newDialCounter(rawTransport(n)), false), nil
		}},
	}
	var out []*contender
	for _, m := range mk {
		c, err := cached(m.key, m.fn)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// BenchmarkGetParallel is Get throughput with n concurrent callers sharing
// one client: b.N Gets in all, taken from a shared counter by n
// goroutines. It reports gets/s, new TCP connections per 1000 Gets and
// the client process's CPU time per Get (getrusage).
func BenchmarkGetParallel(b *testing.B) {
	e := sharedEnv(b)
	seed(b, e)
	for _, n := range callers {
		b.Run("c="+strconv.Itoa(n), func(b *testing.B) {
			for _, c := range parallelContenders(b, e, n) {
				b.Run(c.name, func(b *testing.B) {
					op := func(ctx context.Context) error { return c.get(ctx, getKey, getOpts{}) }
					if err := op(context.Background()); err != nil {
						b.Fatal(err)
					}
					d0 := c.dials()
					b.ReportAllocs()
					b.ResetTimer()
					cpu0, srv0 := processCPU(), clusterCPU(e)
					elapsed, err := parallel(b.N, n, op)
					cpu, srv := processCPU()-cpu0, clusterCPU(e)-srv0
					b.StopTimer()
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
					if srv0 != 0 {
						b.ReportMetric(float64(srv)/float64(b.N), "server-cpu-ns/op")
					}
					b.ReportMetric(float64(b.N)/elapsed.Seconds(), "gets/s")
					b.ReportMetric(float64(c.dials()-d0)*1000/float64(b.N), "dials/1kgets")
				})
			}
		})
	}
}

// parallel runs total calls of op from n goroutines and returns the wall
// time; it stops early at the first error.
func parallel(total, n int, op func(ctx context.Context) error) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, n)
	start := time.Now()
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) && !failed.Load() {
				if err := op(ctx); err != nil {
					failed.Store(true)
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errc:
		return elapsed, err
	default:
		return elapsed, nil
	}
}

var listOnce sync.Once

// populateList writes listSize children under listDir, once per binary.
func populateList(b *testing.B, e *env) {
	b.Helper()
	var err error
	listOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		err = putKeys(ctx, e, listSize, func(i int64) string { return fmt.Sprintf("%s/k%05d", listDir, i) })
		if err != nil {
			return
		}
		hc := &http.Client{Transport: rawTransport(1)}
		defer hc.CloseIdleConnections()
		var n int
		if n, err = bodySize(ctx, hc, e.leader+"/v2/keys"+listDir+"?recursive=true"); err == nil {
			// One line the report picks up: the listing's size.
			fmt.Printf("# list-bytes: %d\n", n)
		}
	})
	if err != nil {
		b.Fatalf("populating %s: %v", listDir, err)
	}
}

// putKeys writes n keys, named by key(0) to key(n-1), to the leader with
// raw PUTs from 32 concurrent writers, and returns the first error.
func putKeys(ctx context.Context, e *env, n int64, key func(i int64) string) error {
	start := time.Now()
	hc := &http.Client{Transport: rawTransport(32)}
	defer hc.CloseIdleConnections()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				if _, err := rawPut(ctx, hc, e.leader+"/v2/keys"+key(i), keyValue); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && testing.Verbose() {
		fmt.Printf("# populated %d keys in %s\n", n, time.Since(start).Round(time.Millisecond))
	}
	return firstErr
}

// bodySize returns the length of the body of GET u.
func bodySize(ctx context.Context, hc *http.Client, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return int(n), err
}

// BenchmarkList is a recursive Get of a directory of 10,000 keys: ours and
// official decode it into their Response; raw only reads the bytes (the
// floor); raw-json reads them and decodes them with encoding/json.
func BenchmarkList(b *testing.B) {
	e := sharedEnv(b)
	populateList(b, e)
	cs := latencyContenders(b, e)
	rj, _ := cached("raw-json", func() (*contender, error) { return newRaw(nameRawJSON, e.leader, nil, true), nil })
	cs = append(cs, rj)
	for _, c := range cs {
		b.Run(c.name, func(b *testing.B) {
			sequential(b, func(ctx context.Context) error { return c.get(ctx, listDir, getOpts{recursive: true}) })
		})
	}
}

// BenchmarkWatch is the latency from the start of a Set on the leader to
// the event arriving at a watcher connected to a follower. Each iteration
// waits 1 ms before the Set so that the watcher has re-registered its long
// poll; ns/op therefore includes that pause, and the figures to read are
// the p50-ns and p99-ns metrics (over b.N events: about 250 with
// -benchtime 1s).
func BenchmarkWatch(b *testing.B) {
	e := sharedEnv(b)
	seed(b, e)
	setter := &http.Client{Transport: rawTransport(0)}
	defer setter.CloseIdleConnections()
	for _, c := range watchContenders(b, e) {
		b.Run(c.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			w := startWatcher(ctx, b, e, setter, c, watchKey, b.N)
			defer w.stop()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				lat = append(lat, w.event(ctx, b, i))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(percentile(lat, 50)), "p50-ns")
			b.ReportMetric(float64(percentile(lat, 99)), "p99-ns")
		})
	}
}

// watchContenders are ours, official and raw, connected to a follower.
func watchContenders(b *testing.B, e *env) []*contender {
	b.Helper()
	eps := []string{e.follower}
	ours, err := cached("w-ours", func() (*contender, error) { return newOurs(nameOurs, eps, nil) })
	if err != nil {
		b.Fatal(err)
	}
	off, err := cached("w-official", func() (*contender, error) { return newOfficial(nameOfficial, eps, nil) })
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := cached("w-raw", func() (*contender, error) { return newRaw(nameRaw, e.follower, nil, false), nil })
	return []*contender{ours, off, raw}
}

type event struct {
	index uint64
	at    time.Time
	err   error
}

// watcher is a contender's watch of one key, taking n events, and the
// setter that writes them on the leader.
type watcher struct {
	setter *http.Client
	u      string
	events chan event
	done   chan struct{}
	cancel context.CancelFunc
}

// startWatcher starts c watching key for n events.
func startWatcher(ctx context.Context, b *testing.B, e *env, setter *http.Client, c *contender, key string, n int) *watcher {
	b.Helper()
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{setter: setter, u: e.leader + "/v2/keys" + key, events: make(chan event, 1), done: make(chan struct{}), cancel: cancel}
	idx, err := rawPut(ctx, setter, w.u, "start")
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	next := c.watch(key, idx)
	go func() {
		defer close(w.done)
		for i := 0; i < n; i++ {
			ix, err := next(ctx)
			select {
			case w.events <- event{ix, time.Now(), err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return w
}

// event waits 1 ms, so that the watcher's next long poll reaches the
// member, sets the key to i and returns the time from the start of the
// Set to the event's arrival.
func (w *watcher) event(ctx context.Context, b *testing.B, i int) time.Duration {
	time.Sleep(time.Millisecond)
	t0 := time.Now()
	want, err := rawPut(ctx, w.setter, w.u, strconv.Itoa(i))
	if err != nil {
		b.Fatal(err)
	}
	select {
	case ev := <-w.events:
		if ev.err != nil {
			b.Fatal(ev.err)
		}
		if ev.index != want {
			b.Fatalf("event index %d, want %d", ev.index, want)
		}
		return ev.at.Sub(t0)
	case <-time.After(opTimeout):
		b.Fatalf("no event %d within %s", i, opTimeout)
	}
	return 0
}

// stop ends the watch and waits for its goroutine.
func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

// percentile returns the nearest-rank p-th percentile of sorted d.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := (len(d)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return d[i-1]
}

// BenchmarkInterleaved measures the same calls as BenchmarkGet and
// BenchmarkList, but runs the contenders in turn within one benchmark: each
// iteration makes one call with every contender, starting with a different
// one each time, and times each call. Under a machine whose load changes
// from second to second this pairs the contenders far more tightly than
// separate benchmarks can. It reports each contender's median call
// latency as the metric p50-ns@<contender>; ns/op is the sum over them.
// Watch does the same for BenchmarkWatch (see interleavedWatch), and
// GetParallel/c=64 and c=256 for throughput (see interleavedParallel).
func BenchmarkInterleaved(b *testing.B) {
	e := sharedEnv(b)
	seed(b, e)
	populateList(b, e)
	cs := latencyContenders(b, e)
	rj, _ := cached("raw-json", func() (*contender, error) { return newRaw(nameRawJSON, e.leader, nil, true), nil })
	cases := []struct {
		name string
		cs   []*contender
		op   func(ctx context.Context, c *contender) error
	}{
		{"Get", cs, func(ctx context.Context, c *contender) error { return c.get(ctx, getKey, getOpts{}) }},
		{"List", append(slices.Clone(cs), rj), func(ctx context.Context, c *contender) error {
			return c.get(ctx, listDir, getOpts{recursive: true})
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			for _, c := range tc.cs {
				if err := tc.op(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([][]time.Duration, len(tc.cs))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range tc.cs {
					k := (i + j) % len(tc.cs)
					t0 := time.Now()
					if err := tc.op(ctx, tc.cs[k]); err != nil {
						b.Fatal(err)
					}
					lat[k] = append(lat[k], time.Since(t0))
				}
			}
			b.StopTimer()
			for k, c := range tc.cs {
				slices.Sort(lat[k])
				b.ReportMetric(float64(percentile(lat[k], 50)), "p50-ns@"+c.name)
			}
		})
	}
	b.Run("Watch", func(b *testing.B) { interleavedWatch(b, e) })
	for _, n := range []int{64, 256} {
		b.Run("GetParallel/c="+strconv.Itoa(n), func(b *testing.B) { interleavedParallel(b, e, n) })
	}
}

// interleavedWatch is BenchmarkWatch with the contenders taking turns:
// each watches a key of its own, and each iteration sets every
// contender's key in turn, starting with a different contender each time,
// and times its event. It reports each contender's p50-ns@ and p99-ns@,
// over at least minWatchEvents events each whatever b.N, so that the p99
// is not one or two stragglers (with -benchtime 1s, b.N is about 180).
func interleavedWatch(b *testing.B, e *env) {
	const minWatchEvents = 1000
	events := max(b.N, minWatchEvents)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	setter := &http.Client{Transport: rawTransport(0)}
	defer setter.CloseIdleConnections()
	cs := watchContenders(b, e)
	ws := make([]*watcher, len(cs))
	for k, c := range cs {
		ws[k] = startWatcher(ctx, b, e, setter, c, watchKey+"-"+c.name, events)
		defer ws[k].stop()
	}
	lat := make([][]time.Duration, len(cs))
	b.ResetTimer()
	for i := 0; i < events; i++ {
		for j := range cs {
			k := (i + j) % len(cs)
			lat[k] = append(lat[k], ws[k].event(ctx, b, i))
		}
	}
	b.StopTimer()
	for k, c := range cs {
		slices.Sort(lat[k])
		b.ReportMetric(float64(percentile(lat[k], 50)), "p50-ns@"+c.name)
		b.ReportMetric(float64(percentile(lat[k], 99)), "p99-ns@"+c.name)
	}
}

// interleavedParallel is BenchmarkGetParallel/c=n for ours, official and
// raw-tuned taking turns: each turn runs a batch of 8n Gets with n callers
// with each of them, in every order of the rotation, and measures each
// batch's Gets/s and the client process's CPU per Get; the figures are
// each contender's median batch. Run one after the other,
// the contenders of BenchmarkGetParallel meet a machine whose load has
// moved in between (and a member in another state); taking turns in short
// batches spreads that over all of them.
func interleavedParallel(b *testing.B, e *env, n int) {
	var cs []*contender
	for _, c := range parallelContenders(b, e, n) {
		switch c.name {
		case nameOurs, nameOfficial, nameRawTuned:
			cs = append(cs, c)
		}
	}
	batch := 8 * n
	run := func(c *contender) (getsPerSec, cpuPerGet float64) {
		cpu0 := processCPU()
		elapsed, err := parallel(batch, n, func(ctx context.Context) error { return c.get(ctx, getKey, getOpts{}) })
		cpu := processCPU() - cpu0
		if err != nil {
			b.Fatal(err)
		}
		return float64(batch) / elapsed.Seconds(), float64(cpu) / float64(batch)
	}
	for _, c := range cs {
		run(c) // untimed: each fills its connection pool
	}
	gets := make([][]float64, len(cs))
	cpu := make([][]float64, len(cs))
	b.ResetTimer()
	// Each iteration runs every order of the rotation, so that each
	// contender comes first, second and last (after the official client's
	// garbage, say) as often as the others; at least minTurns iterations,
	// whatever b.N, so that a median has enough batches behind it.
	const minTurns = 8
	for range max(b.N, minTurns) {
		for r := range cs {
			for j := range cs {
				k := (r + j) % len(cs)
				g, c := run(cs[k])
				gets[k] = append(gets[k], g)
				cpu[k] = append(cpu[k], c)
			}
		}
	}
	b.StopTimer()
	for k, c := range cs {
		b.ReportMetric(medianOf(gets[k]), "gets/s@"+c.name)
		b.ReportMetric(medianOf(cpu[k]), "cpu-ns/op@"+c.name)
	}
}

// medianOf returns the median of v (which it sorts).
func medianOf(v []float64) float64 {
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
