package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/cache"
)

// The 100,000-key prefix of BenchmarkCache100k.
const (
	bigDir  = "/bench/big"
	bigSize = 100000
)

var bigOnce sync.Once

// populateBig writes bigSize keys under bigDir (in 100 directories of
// 1,000), once per binary.
func populateBig(b *testing.B, e *env) {
	b.Helper()
	var err error
	bigOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		err = putKeys(ctx, e, bigSize, func(i int64) string { return fmt.Sprintf("%s/d%02d/k%05d", bigDir, i%100, i) })
	})
	if err != nil {
		b.Fatalf("populating %s: %v", bigDir, err)
	}
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkCache100k measures, on a prefix of 100,000 keys (100
// directories of 1,000), with this client's default Config on the
// leader's URL:
//
//   - get: a recursive quorum Get of the prefix with the plain client (the
//     baseline: what a program that re-reads the prefix pays each time);
//   - cache-list: a new cache.Cache from Run to WaitSynced (its listing,
//     flattened into the map);
//   - cache-resync: a synced cache held back while 1,100 writes outside
//     the prefix pass, from its release to the end of the resync that the
//     resulting 401 causes (listing, diff against the previous content,
//     one Resync event for the one key changed meanwhile).
//
// retained-MB is the live heap the result keeps (the Response, or the
// cache) after a collection; B/op and allocs/op are per operation.
//
// Writing the 100,000 keys takes about a minute per binary, so run.sh
// leaves this benchmark out unless ETCDV2_BENCH_100K=1 is set:
//
//	ETCDV2_BENCH_100K=1 go test -run '^$' -bench Cache100k -benchtime 3x -count 3 ./bench
func BenchmarkCache100k(b *testing.B) {
	if os.Getenv("ETCDV2_BENCH_100K") != "1" {
		b.Skip("set ETCDV2_BENCH_100K=1 to run it")
	}
	e := sharedEnv(b)
	populateBig(b, e)
	cc, err := client.New(client.Config{Endpoints: []string{e.leader}})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	kapi := client.NewKeysAPI(cc)
	ctx := context.Background()

	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		b.StopTimer()
		var retained uint64
		for i := 0; i < b.N; i++ {
			before := heapInUse()
			b.StartTimer()
			resp, err := kapi.Get(ctx, bigDir, &client.GetOptions{Recursive: true, Quorum: true})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			retained += heapInUse() - before
			runtime.KeepAlive(resp)
		}
		b.ReportMetric(float64(retained)/float64(b.N)/(1<<20), "retained-MB")
	})

	b.Run("cache-list", func(b *testing.B) {
		b.ReportAllocs()
		b.StopTimer()
		var retained uint64
		for i := 0; i < b.N; i++ {
			before := heapInUse()
			c := cache.New(kapi, bigDir)
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			b.StartTimer()
			go func() { done <- c.Run(rctx) }()
			err := c.WaitSynced(ctx)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if n := c.Len(); n != bigSize+100 {
				b.Fatalf("cache holds %d nodes, want %d", n, bigSize+100)
			}
			cancel()
			<-done
			retained += heapInUse() - before
			runtime.KeepAlive(c)
		}
		b.ReportMetric(float64(retained)/float64(b.N)/(1<<20), "retained-MB")
	})

	b.Run("cache-resync", func(b *testing.B) {
		b.ReportAllocs()
		b.StopTimer()
		var (
			mu      sync.Mutex
			gate    chan struct{}
			entered = make(chan struct{}, 1)
		)
		handler := func(ev cache.Event) {
			mu.Lock()
			g := gate
			mu.Unlock()
			if g != nil && !ev.Resync {
				entered <- struct{}{}
				<-g
			}
		}
		c := cache.New(kapi, bigDir, cache.WithEventHandler(handler))
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- c.Run(rctx) }()
		defer func() { cancel(); <-done }()
		if err := c.WaitSynced(ctx); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			mu.Lock()
			gate = make(chan struct{})
			g := gate
			mu.Unlock()
			if _, err := kapi.Set(ctx, bigDir+"/d00/k00000", fmt.Sprint("v", i), nil); err != nil {
				b.Fatal(err)
			}
			<-entered
			if _, err := kapi.Set(ctx, bigDir+"/d01/k00001", fmt.Sprint("w", i), nil); err != nil {
				b.Fatal(err)
			}
			var last uint64
			for j := 0; j < 1100; j++ {
				r, err := kapi.Set(ctx, fmt.Sprintf("/bench/flood/%d", j%50), "x", nil)
				if err != nil {
					b.Fatal(err)
				}
				last = r.Index
			}
			mu.Lock()
			gate = nil
			mu.Unlock()
			b.StartTimer()
			close(g)
			deadline := time.Now().Add(5 * time.Minute)
			for c.Index() < last {
				if time.Now().After(deadline) {
					b.Fatal(errors.New("no resync within 5 minutes"))
				}
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
		}
	})
}
