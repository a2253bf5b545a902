package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	v3conc "go.etcd.io/etcd/client/v3/concurrency"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/concurrency"
	"github.com/etcdv2/client/integration/testbed"
)

// locker is one contender of the lock benchmark: ours or clientv3's.
type locker interface {
	Lock(ctx context.Context) error
	Unlock(ctx context.Context) error
}

// lockImpl makes n contenders of one lock and returns them with a cleanup.
type lockImpl struct {
	name string
	make func(t *testing.T, c *testbed.Cluster, key string, n int) ([]locker, func())
}

var lockImpls = []lockImpl{
	{"ours (v2 API)", func(t *testing.T, c *testbed.Cluster, key string, n int) ([]locker, func()) {
		var ls []locker
		var closers []func()
		for i := 0; i < n; i++ {
			tr := &http.Transport{MaxIdleConnsPerHost: 16}
			cl, err := client.New(client.Config{Endpoints: c.ClientURLs(), Transport: tr})
			if err != nil {
				t.Fatal(err)
			}
			s, err := concurrency.NewSession(client.NewKeysAPI(cl), concurrency.WithTTL(10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			ls = append(ls, concurrency.NewMutex(s, key))
			closers = append(closers, func() { s.Close(); cl.Close(); tr.CloseIdleConnections() })
		}
		return ls, func() {
			for _, f := range closers {
				f()
			}
		}
	}},
	{"clientv3 concurrency.Mutex (v3 API)", func(t *testing.T, c *testbed.Cluster, key string, n int) ([]locker, func()) {
		var ls []locker
		var closers []func()
		for i := 0; i < n; i++ {
			cl, err := clientv3.New(clientv3.Config{Endpoints: c.ClientURLs(), DialTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			s, err := v3conc.NewSession(cl, v3conc.WithTTL(10))
			if err != nil {
				t.Fatal(err)
			}
			ls = append(ls, v3conc.NewMutex(s, key))
			closers = append(closers, func() { s.Close(); cl.Close() })
		}
		return ls, func() {
			for _, f := range closers {
				f()
			}
		}
	}},
}

// lockRun is the outcome of one run: cycles per second and the hand-off
// latencies (an Unlock's start to the next holder's return from Lock).
type lockRun struct {
	cycles   int
	elapsed  time.Duration
	handoffs []time.Duration
}

// runLock has every contender lock and unlock in a loop for d.
func runLock(t *testing.T, ls []locker, d time.Duration) lockRun {
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	var mu sync.Mutex
	var run lockRun
	var lastUnlock time.Time
	stop := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := l.Lock(ctx); err != nil {
					t.Error(err)
					return
				}
				got := time.Now()
				mu.Lock()
				if !lastUnlock.IsZero() && len(ls) > 1 {
					run.handoffs = append(run.handoffs, got.Sub(lastUnlock))
				}
				run.cycles++
				lastUnlock = time.Now()
				mu.Unlock()
				if err := l.Unlock(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	run.elapsed = time.Since(start)
	return run
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

// TestLockHandoff (RECIPES_BENCH=1) measures lock/unlock cycles per second
// with 1 and 16 contenders and the hand-off latency for this module's
// concurrency.Mutex (v2 API) and clientv3's concurrency.Mutex (v3 API), on
// the same 3-member etcd 3.5 cluster, and prints a markdown table.
func TestLockHandoff(t *testing.T) {
	if os.Getenv("RECIPES_BENCH") != "1" {
		t.Skip("benchmark: set RECIPES_BENCH=1")
	}
	c := testbed.NewCluster(t, testbed.Options{Size: 3})
	d := 10 * time.Second
	rounds := 3
	out := "| implementation | contenders | cycles/s | hand-off p50 | hand-off p99 |\n|---|---|---|---|---|\n"
	for r := 0; r < rounds; r++ {
		for _, impl := range lockImpls {
			for _, n := range []int{1, 16} {
				ls, done := impl.make(t, c, fmt.Sprintf("/bench-lock-%d-%d", r, n), n)
				run := runLock(t, ls, d)
				done()
				line := fmt.Sprintf("| %s | %d | %.0f |", impl.name, n, float64(run.cycles)/run.elapsed.Seconds())
				if n > 1 {
					line += fmt.Sprintf(" %.2f ms | %.2f ms |", ms(pct(run.handoffs, 50)), ms(pct(run.handoffs, 99)))
				} else {
					line += " – | – |"
				}
				t.Logf("round %d: %s", r+1, line)
				out += line + "\n"
			}
		}
	}
	fmt.Print(out)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
