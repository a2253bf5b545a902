package v3adapter_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// BenchmarkAdapter compares, in one run on one machine, the native v2
// client on etcd 3.5 (v2 API) with the adapter on etcd 3.7 (1-member
// clusters on loopback): a Get of one key, a Set, a sorted recursive Get of
// a directory of 10,000 keys, and watch latency (a Set until a watcher that
// was already waiting has its event). docs/benchmarks.md has the figures.
func BenchmarkAdapter(b *testing.B) {
	c35 := testbed.NewCluster(b, testbed.Options{})
	c37 := testbed.NewCluster(b, testbed.Options{Version: "3.7"})
	type contender struct {
		name string
		k    client.KeysAPI
	}
	cs := []contender{
		{"v2@3.5", newV2(b, c35)},
		{"adapter@3.7", v3adapter.NewKeysAPI(newV3(b, c37))},
	}
	ctx := context.Background()
	const listSize = 10000
	for _, c := range cs {
		fill(b, ctx, c.k, "/list", listSize)
		if _, err := c.k.Set(ctx, "/get", "0123456789abcdef0123456789abcdef", nil); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range cs {
		b.Run("Get/"+c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := c.k.Get(ctx, "/get", nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, c := range cs {
		b.Run("Set/"+c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := c.k.Set(ctx, "/set", "0123456789abcdef0123456789abcdef", nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, c := range cs {
		b.Run("List10k/"+c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r, err := c.k.Get(ctx, "/list", &client.GetOptions{Recursive: true, Sort: true})
				if err != nil {
					b.Fatal(err)
				}
				if len(r.Node.Nodes) != listSize {
					b.Fatalf("%d nodes", len(r.Node.Nodes))
				}
			}
		})
	}
	for _, c := range cs {
		b.Run("WatchLatency/"+c.name, func(b *testing.B) {
			r, err := c.k.Set(ctx, "/watch", "start", nil)
			if err != nil {
				b.Fatal(err)
			}
			w := c.k.Watcher("/watch", &client.WatcherOptions{AfterIndex: r.Index})
			wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			defer cancel()
			got := make(chan error)
			go func() {
				for i := 0; i < b.N; i++ {
					_, err := w.Next(wctx)
					got <- err
					if err != nil {
						return
					}
				}
			}()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.k.Set(ctx, "/watch", fmt.Sprint(i), nil); err != nil {
					b.Fatal(err)
				}
				if err := <-got; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAdapterInterleaved runs the same operations as BenchmarkAdapter
// with the two contenders taking turns call by call (v2@3.5, then
// adapter@3.7, then again), and reports the median latency of each and the
// median of the per-pair ratios, so that a change of the machine's load
// falls on both alike.
func BenchmarkAdapterInterleaved(b *testing.B) {
	c35 := testbed.NewCluster(b, testbed.Options{})
	c37 := testbed.NewCluster(b, testbed.Options{Version: "3.7"})
	v2 := newV2(b, c35)
	ad := v3adapter.NewKeysAPI(newV3(b, c37))
	ks := []client.KeysAPI{v2, ad}
	ctx := context.Background()
	const listSize = 10000
	for _, k := range ks {
		fill(b, ctx, k, "/list", listSize)
		if _, err := k.Set(ctx, "/get", "0123456789abcdef0123456789abcdef", nil); err != nil {
			b.Fatal(err)
		}
	}
	// Made afresh by each WatchLatency run (n == 0): a v2 watcher must stay
	// within the server's last 1000 events.
	watchers := make([]client.Watcher, 2)
	ops := []struct {
		name string
		do   func(i, n int) error
	}{
		{"Get", func(i, n int) error { _, err := ks[i].Get(ctx, "/get", nil); return err }},
		{"Set", func(i, n int) error {
			_, err := ks[i].Set(ctx, "/set", "0123456789abcdef0123456789abcdef", nil)
			return err
		}},
		{"List10k", func(i, n int) error {
			r, err := ks[i].Get(ctx, "/list", &client.GetOptions{Recursive: true, Sort: true})
			if err == nil && len(r.Node.Nodes) != listSize {
				err = fmt.Errorf("%d nodes", len(r.Node.Nodes))
			}
			return err
		}},
		{"WatchLatency", func(i, n int) error {
			// Set plus delivery to a Next started just before it.
			if n == 0 {
				r, err := ks[i].Set(ctx, "/watch", "start", nil)
				if err != nil {
					return err
				}
				watchers[i] = ks[i].Watcher("/watch", &client.WatcherOptions{AfterIndex: r.Index})
			}
			got := make(chan error, 1)
			go func() {
				_, err := watchers[i].Next(ctx)
				got <- err
			}()
			if _, err := ks[i].Set(ctx, "/watch", fmt.Sprint(n), nil); err != nil {
				return err
			}
			return <-got
		}},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			var d [2][]time.Duration
			ratios := make([]float64, 0, b.N)
			for n := 0; n < b.N; n++ {
				var pair [2]time.Duration
				for i := range ks {
					start := time.Now()
					if err := op.do(i, n); err != nil {
						b.Fatal(err)
					}
					pair[i] = time.Since(start)
					d[i] = append(d[i], pair[i])
				}
				ratios = append(ratios, float64(pair[1])/float64(pair[0]))
			}
			b.ReportMetric(float64(median(d[0]).Microseconds()), "v2-µs")
			b.ReportMetric(float64(median(d[1]).Microseconds()), "adapter-µs")
			sort.Float64s(ratios)
			b.ReportMetric(ratios[len(ratios)/2], "adapter/v2")
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// fill writes n keys under dir with 16 writers.
func fill(b *testing.B, ctx context.Context, k client.KeysAPI, dir string, n int) {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if _, err := k.Set(ctx, fmt.Sprintf("%s/k%05d", dir, i), "0123456789abcdef0123456789abcdef", nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}
