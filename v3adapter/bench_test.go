package v3adapter_test

import (
	"context"
	"fmt"
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
