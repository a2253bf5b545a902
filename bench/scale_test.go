package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	client "github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// The scale curves run only when asked: ETCDV2_BENCH_SCALE=1 runs every
// size below (1M-key listing only with ETCDV2_BENCH_1M=1 as well);
// ETCDV2_BENCH_SCALE=small runs the smaller sizes of each curve, to check
// the harness in a few minutes.
func scaleMode(b *testing.B) string {
	b.Helper()
	m := os.Getenv("ETCDV2_BENCH_SCALE")
	if m == "" {
		b.Skip("scale curves run with ETCDV2_BENCH_SCALE=1 (or =small)")
	}
	return m
}

// scaleSizes returns full, or small when the mode is "small", plus extra
// when its switch is set.
func scaleSizes(mode string, full, small []int, extraEnv string, extra int) []int {
	s := full
	if mode == "small" {
		s = small
	}
	if extraEnv != "" && os.Getenv(extraEnv) != "" {
		s = append(slices.Clone(s), extra)
	}
	return s
}

var populated sync.Map // dir -> struct{}

// populate writes n 32-byte keys under dir on the leader, once per binary,
// from 64 concurrent writers, and returns the recursive listing's size.
func populate(b *testing.B, e *env, dir string, n int) {
	b.Helper()
	if _, ok := populated.Load(dir); ok {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	hc := &http.Client{Transport: rawTransport(64)}
	defer hc.CloseIdleConnections()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for failed.Load() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				// A loaded cluster times some proposals out (500, "request
				// timed out"): setting the key again is harmless.
				var err error
				for try := 0; try < 5; try++ {
					if _, err = rawPut(ctx, hc, fmt.Sprintf("%s/v2/keys%s/k%07d", e.leader, dir, i), keyValue); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil {
					failed.Store(&err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		b.Fatalf("populating %s: %v", dir, *p)
	}
	size, err := bodySize(ctx, hc, e.leader+"/v2/keys"+dir+"?recursive=true")
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("# scale-list-bytes: %d %d (populated in %s)\n", n, size, time.Since(start).Round(time.Millisecond))
	populated.Store(dir, struct{}{})
}

// BenchmarkScaleList is a recursive Get of a directory of n keys, by ours
// (decoded into its Response) and raw net/http (the bytes read, the floor),
// against the shared cluster's leader. B/op is the memory allocated per
// listing; B/body-B is that divided by the body's size.
func BenchmarkScaleList(b *testing.B) {
	mode := scaleMode(b)
	e := sharedEnv(b)
	cs := latencyContenders(b, e)
	cs = []*contender{cs[0], cs[2]} // ours, raw
	for _, n := range scaleSizes(mode, []int{1000, 10_000, 100_000}, []int{1000, 10_000}, "ETCDV2_BENCH_1M", 1_000_000) {
		dir := "/bench/scale/n" + strconv.Itoa(n)
		populate(b, e, dir, n)
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			for _, c := range cs {
				b.Run(c.name, func(b *testing.B) {
					sequential(b, func(ctx context.Context) error { return c.get(ctx, dir, getOpts{recursive: true}) })
				})
			}
		})
	}
}

// BenchmarkScaleCallers is Get throughput against the number of callers
// sharing one client: ours and the official client with their defaults,
// raw net/http with an idle pool sized to the callers. Failed Gets do not
// stop it: gets/s counts the successful ones and fails/1kgets the others.
func BenchmarkScaleCallers(b *testing.B) {
	mode := scaleMode(b)
	e := sharedEnv(b)
	seed(b, e)
	for _, n := range scaleSizes(mode, []int{1, 4, 16, 64, 256, 1024}, []int{1, 16, 256, 1024}, "", 0) {
		b.Run("c="+strconv.Itoa(n), func(b *testing.B) {
			for _, c := range parallelContenders(b, e, n) {
				if c.name != nameOurs && c.name != nameOfficial && c.name != nameRawTuned {
					continue
				}
				b.Run(c.name, func(b *testing.B) {
					op := func(ctx context.Context) error { return c.get(ctx, getKey, getOpts{}) }
					if err := op(context.Background()); err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					b.ResetTimer()
					elapsed, fails, first := parallelCounting(b.N, n, op)
					b.StopTimer()
					if fails > 0 {
						// Reported, not fatal: a failed Get is a point of
						// the curve (the first error is logged).
						b.Logf("%d of %d Gets failed; first: %v", fails, b.N, first)
					}
					b.ReportMetric(float64(int64(b.N)-fails)/elapsed.Seconds(), "gets/s")
					b.ReportMetric(float64(fails)*1000/float64(b.N), "fails/1kgets")
				})
			}
		})
	}
}

// parallelCounting runs total calls of op from n goroutines and returns
// the wall time, the number of calls that failed and the first error.
func parallelCounting(total, n int, op func(ctx context.Context) error) (time.Duration, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var next, fails atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				if err := op(ctx); err != nil {
					fails.Add(1)
					first.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var err error
	if p := first.Load(); p != nil {
		err = *p
	}
	return elapsed, fails.Load(), err
}

// BenchmarkScaleEndpoints is a sequential Get by ours configured with
// every member of a cluster of n members (its own cluster), against raw
// net/http to one member of the same cluster.
func BenchmarkScaleEndpoints(b *testing.B) {
	mode := scaleMode(b)
	for _, n := range scaleSizes(mode, []int{3, 5, 9}, []int{3, 5}, "", 0) {
		b.Run("endpoints="+strconv.Itoa(n), func(b *testing.B) {
			cl := testbed.NewCluster(b, testbed.Options{Size: n})
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			l, err := cl.Leader(ctx)
			if err != nil {
				b.Fatal(err)
			}
			hc := &http.Client{Transport: rawTransport(0)}
			defer hc.CloseIdleConnections()
			if _, err := rawPut(ctx, hc, l.URL()+"/v2/keys"+getKey, keyValue); err != nil {
				b.Fatal(err)
			}
			ours, err := newOurs(nameOurs, cl.ClientURLs(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer ours.close()
			raw := newRaw(nameRaw, l.URL(), nil, false)
			defer raw.close()
			for _, c := range []*contender{ours, raw} {
				b.Run(c.name, func(b *testing.B) {
					sequential(b, func(ctx context.Context) error { return c.get(ctx, getKey, getOpts{}) })
				})
			}
		})
	}
}

// BenchmarkScaleWatchers starts n watchers of one key on one client of
// ours (connected to a follower), then times b.N Sets on the leader: each
// event's latency is from the start of its Set to its arrival at each
// watcher (p50-ns, p99-ns over all deliveries). It runs each size twice, in
// the same run: "own", every watcher with a poll of its own
// (WatcherOptions.OwnPoll), and "shared", the default, where the watchers
// share one poll. It reports, per watcher, the connections dialed, the
// goroutines (besides the caller's own) and the heap bytes the watchers
// added, the errors their Next returned (a watcher calls Next again after
// one, as a program would), and the latency of a Get on the same client
// while they are active.
func BenchmarkScaleWatchers(b *testing.B) {
	mode := scaleMode(b)
	e := sharedEnv(b)
	seed(b, e)
	for _, n := range scaleSizes(mode, []int{1, 100, 10_000}, []int{1, 100, 1000}, "", 0) {
		b.Run("watchers="+strconv.Itoa(n), func(b *testing.B) {
			for _, own := range []bool{true, false} {
				name := "shared"
				if own {
					name = "own"
				}
				b.Run(name, func(b *testing.B) { watchersAt(b, e, n, own) })
			}
		})
	}
}

func watchersAt(b *testing.B, e *env, n int, own bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	key := fmt.Sprintf("/bench/watchers/%d-%v-%d", n, own, time.Now().UnixNano())
	setter := &http.Client{Transport: rawTransport(0)}
	defer setter.CloseIdleConnections()
	idx, err := rawPut(ctx, setter, e.leader+"/v2/keys"+key, "start")
	if err != nil {
		b.Fatal(err)
	}
	tr := newDialCounter(client.DefaultTransport.(*http.Transport).Clone())
	defer tr.base.(*http.Transport).CloseIdleConnections()
	c, err := client.New(client.Config{Endpoints: []string{e.follower}, Transport: tr})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	kapi := client.NewKeysAPI(c)
	if _, err := kapi.Get(ctx, getKey, nil); err != nil {
		b.Fatal(err)
	}

	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	g0, d0 := runtime.NumGoroutine(), tr.n.Load()

	// arrivals[i] receives watcher i's events.
	type arrival struct {
		index uint64
		at    time.Time
	}
	arrivals := make(chan arrival, n)
	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var errs atomic.Int64
	var firstErr atomic.Pointer[error]
	for i := 0; i < n; i++ {
		w := kapi.Watcher(key, &client.WatcherOptions{AfterIndex: idx, OwnPoll: own})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := w.Next(wctx)
				if wctx.Err() != nil {
					return
				}
				if err != nil {
					// Counted, and Next again after a pause (the
					// watcher keeps its cursor).
					errs.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					select {
					case <-wctx.Done():
						return
					case <-time.After(100 * time.Millisecond):
					}
					continue
				}
				select {
				case arrivals <- arrival{r.Node.ModifiedIndex, time.Now()}:
				case <-wctx.Done():
					return
				}
			}
		}()
	}
	defer func() { wcancel(); wg.Wait() }()

	// set writes a value and waits until all n watchers have its event,
	// returning the latencies.
	set := func(v string, lat []time.Duration) []time.Duration {
		t0 := time.Now()
		want, err := rawPut(ctx, setter, e.leader+"/v2/keys"+key, v)
		if err != nil {
			b.Fatal(err)
		}
		deadline := time.After(3 * time.Minute)
		for got := 0; got < n; {
			select {
			case a := <-arrivals:
				if a.index != want {
					b.Fatalf("event index %d, want %d", a.index, want)
				}
				lat = append(lat, a.at.Sub(t0))
				got++
			case <-deadline:
				var first error
				if p := firstErr.Load(); p != nil {
					first = *p
				}
				b.Fatalf("%d of %d watchers had event %d after 3m (%d errors from Next, %d connections dialed; first error: %v)",
					got, n, want, errs.Load(), tr.n.Load()-d0, first)
			}
		}
		return lat
	}
	// The first event proves every watcher's poll is in place.
	set("warm-up", nil)
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	g1, d1 := runtime.NumGoroutine(), tr.n.Load()

	lat := make([]time.Duration, 0, b.N*n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lat = set(strconv.Itoa(i), lat)
	}
	b.StopTimer()

	// A Get's latency with the watchers active (median of 50).
	gets := make([]time.Duration, 0, 50)
	for i := 0; i < 50; i++ {
		t0 := time.Now()
		if _, err := kapi.Get(ctx, getKey, nil); err != nil {
			b.Fatal(err)
		}
		gets = append(gets, time.Since(t0))
	}
	slices.Sort(gets)
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 50)), "p50-ns")
	b.ReportMetric(float64(percentile(lat, 99)), "p99-ns")
	b.ReportMetric(float64(d1-d0)/float64(n), "conns/watcher")
	// Less the caller's own goroutine per watcher (the one calling Next).
	b.ReportMetric(float64(g1-g0-n)/float64(n), "goroutines/watcher")
	b.ReportMetric(float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/float64(n), "heap-B/watcher")
	b.ReportMetric(float64(errs.Load())/float64(n), "errors/watcher")
	b.ReportMetric(float64(percentile(gets, 50)), "get-p50-ns")
	if p := firstErr.Load(); p != nil {
		b.Logf("%d errors from Next; first: %v", errs.Load(), *p)
	}
}
