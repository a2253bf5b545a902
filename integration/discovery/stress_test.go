package discovery_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/backend"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/registry"
)

// TestRegistryUnderMemberFaults registers many instances of several
// services in one process, watches every service with several watchers,
// kills and restarts members (and deregisters and registers instances)
// meanwhile, and checks that no registration was lost and that every
// watcher's last snapshot equals a quorum read. The full size (1,000
// instances of 10 services, 20 watchers) runs with ETCDV2_FAULTS=1; a
// smaller one always runs.
func TestRegistryUnderMemberFaults(t *testing.T) {
	instances, services, watchers, rounds := 40, 4, 4, 1
	ttl := 10 * time.Second
	if faults() {
		// 1,000 instances refresh ~100 times a second with a 30 s TTL.
		instances, services, watchers, rounds = 1000, 10, 20, 4
		ttl = 30 * time.Second
	}
	c := newCluster(t, testbed.Options{Size: 3})
	urls := c.ClientURLs()
	// Hundreds of refreshes a second on a shared 2-core machine: writes
	// may wait longer than the adaptive per-attempt timeout allows.
	r := registry.New(backend.FromEnv(t).KeysAPI(t, urls, client.Config{HeaderTimeoutPerRequest: 5 * time.Second}), "/svc")
	ctx := context.Background()

	var mu sync.Mutex
	regs := map[string]*registry.Registration{}
	register := func(svc, id string) {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		g, err := r.Register(rctx, registry.Instance{Service: svc, ID: id, Addr: id + ":1"}, registry.WithTTL(ttl))
		if err != nil {
			t.Errorf("register %s/%s: %v", svc, id, err)
			return
		}
		mu.Lock()
		regs[svc+"/"+id] = g
		mu.Unlock()
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, g := range regs {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_ = g.Deregister(dctx)
			cancel()
		}
	})
	svcName := func(i int) string { return fmt.Sprintf("s%02d", i%services) }
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				register(svcName(i), fmt.Sprintf("i%04d", i))
			}
		}()
	}
	for i := 0; i < instances; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d instances registered", instances)

	ws := make([]*watchRecorder, watchers)
	for i := range ws {
		ws[i] = startWatch(t, registry.New(newKAPI(t, urls), "/svc"), svcName(i))
	}

	rng := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	next := instances
	for round := 0; round < rounds; round++ {
		m := c.Members()[rng.IntN(3)]
		t.Logf("%s kill %s", time.Now().Format("15:04:05.000"), m.Name())
		m.Kill(t)
		// Churn while a member is down: some leave, some come.
		for k := 0; k < 5; k++ {
			mu.Lock()
			var key string
			var g *registry.Registration
			for key, g = range regs {
				break
			}
			delete(regs, key)
			mu.Unlock()
			dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			require.NoError(t, g.Deregister(dctx))
			cancel()
			register(svcName(next), fmt.Sprintf("i%04d", next))
			next++
		}
		time.Sleep(time.Second)
		m.Restart(t)
		t.Logf("%s restarted %s", time.Now().Format("15:04:05.000"), m.Name())
		hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		require.NoError(t, c.WaitHealthy(hctx))
		cancel()
	}

	mu.Lock()
	for k, g := range regs {
		select {
		case <-g.Done():
			t.Errorf("registration %s lost: %v", k, g.Err())
		default:
		}
	}
	total := len(regs)
	mu.Unlock()
	for i, w := range ws {
		svc := svcName(i)
		want, _, err := r.Instances(ctx, svc)
		require.NoError(t, err)
		w.waitFor(t, 20*time.Second, "equal to a quorum read of "+svc, func(ins []registry.Instance) bool {
			return sameIDs(ins, want)
		})
	}
	all := 0
	for s := 0; s < services; s++ {
		ins, _, err := r.Instances(ctx, svcName(s))
		require.NoError(t, err)
		all += len(ins)
	}
	require.Equal(t, total, all, "instances listed vs registrations held")
}

func sameIDs(a, b []registry.Instance) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Status != b[i].Status || a[i].CreateIndex != b[i].CreateIndex {
			return false
		}
	}
	return true
}
