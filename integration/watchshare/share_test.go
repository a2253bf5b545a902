package watchshare_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// watchRecord runs Next on w in a goroutine until ctx ends or pause says
// stop, recording the events' indexes.
type watchRecord struct {
	mu   sync.Mutex
	got  []uint64
	errs []error
	done chan struct{}
}

func startRecord(ctx context.Context, w client.Watcher, hold <-chan struct{}) *watchRecord {
	r := &watchRecord{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if hold != nil {
			select {
			case <-hold:
			case <-ctx.Done():
				return
			}
		}
		for {
			res, err := w.Next(ctx)
			if ctx.Err() != nil {
				return
			}
			r.mu.Lock()
			if err != nil {
				// A watcher keeps its cursor after an error: call
				// Next again, as a program would.
				r.errs = append(r.errs, err)
			} else {
				r.got = append(r.got, res.Node.ModifiedIndex)
			}
			r.mu.Unlock()
			if err != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
	}()
	return r
}

func (r *watchRecord) events() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitIndex waits until r has an event at index or later.
func (r *watchRecord) waitIndex(t *testing.T, index uint64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if got := r.events(); len(got) > 0 && got[len(got)-1] >= index {
			return
		}
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("no event at %d or later after %s: got %d events, last %v, errors %v", index, d, len(r.got), last(r.got), r.errs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func last(s []uint64) any {
	if len(s) == 0 {
		return "none"
	}
	return s[len(s)-1]
}

// writer writes keys under dir and records the indexes of the acknowledged
// writes; a write whose outcome is unknown is not resent, only noted.
type writer struct {
	k     client.KeysAPI
	dir   string
	acked []uint64
	n     int
}

func (w *writer) write(t *testing.T, count int) {
	t.Helper()
	for i := 0; i < count; i++ {
		w.n++
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			res, err := w.k.Set(ctx, fmt.Sprintf("%s/k%d", w.dir, w.n%7), fmt.Sprint(w.n), nil)
			cancel()
			if err == nil {
				w.acked = append(w.acked, res.Node.ModifiedIndex)
				break
			}
			if errors.Is(err, client.ErrOutcomeUnknown) {
				break // maybe applied: not resent, not counted
			}
			// Not applied (no quorum during an election): again.
			if attempt == 40 {
				t.Fatalf("write %d: %v", w.n, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

func newClient(t *testing.T, eps []string) client.KeysAPI {
	t.Helper()
	c, err := client.New(client.Config{Endpoints: eps})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return client.NewKeysAPI(c)
}

// faults reports whether the long fault suite runs.
func faults() bool { return os.Getenv("ETCDV2_FAULTS") == "1" }

// TestSharedMatchOwn: shared watchers of a directory (some with the
// starting cursor, some without one, one that stops calling Next for more
// than a queue's worth of events) get exactly the events a watcher with a
// poll of its own gets (the recorder, on a client of its own), while the
// members are killed in turn (each under writes, the leader among them)
// and watch answers are cut after their headers. The recorder's events are
// every acknowledged write, in order.
func TestSharedMatchOwn(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3, ProxyClients: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	eps := cl.ClientURLs()
	dir := "/share/dir"
	wk := newClient(t, eps)
	start, err := wk.Set(ctx, "/share/start", "x", nil)
	require.NoError(t, err)
	w := &writer{k: wk, dir: dir}

	shared := newClient(t, eps) // one client: its watchers share
	opts := &client.WatcherOptions{AfterIndex: start.Node.ModifiedIndex, Recursive: true, ProbeInterval: time.Second}
	own := startRecord(ctx, newClient(t, eps).Watcher(dir, &client.WatcherOptions{
		AfterIndex: opts.AfterIndex, Recursive: true, ProbeInterval: time.Second, OwnPoll: true}), nil)
	nShared, nNow := 12, 3
	if faults() {
		nShared, nNow = 100, 20
	}
	var recs, nows []*watchRecord
	for i := 0; i < nShared; i++ {
		recs = append(recs, startRecord(ctx, shared.Watcher(dir, opts), nil))
	}
	// slow joins the share, takes one event, then stops calling Next
	// until 300 more have come (more than it may queue).
	hold := make(chan struct{})
	slowW := shared.Watcher(dir, opts)
	first := make(chan error, 1)
	go func() { _, err := slowW.Next(ctx); first <- err }()
	w.write(t, 1)
	require.NoError(t, <-first)
	slow := startRecord(ctx, slowW, hold)
	for i := 0; i < nNow; i++ {
		nows = append(nows, startRecord(ctx, shared.Watcher(dir, &client.WatcherOptions{Recursive: true, ProbeInterval: time.Second}), nil))
	}

	w.write(t, 300)
	close(hold)
	members := cl.Members()
	rounds := 1
	if faults() {
		rounds = 3
	}
	for r := 0; r < rounds; r++ {
		for _, m := range members {
			for _, o := range members {
				o.Proxy().CutAfterHeaders("wait=true", 2)
			}
			w.write(t, 10)
			m.Kill(t)
			w.write(t, 20)
			m.Restart(t)
			require.NoError(t, cl.WaitHealthy(ctx))
		}
	}
	cuts := 0
	for _, m := range members {
		cuts += m.Proxy().Cuts()
		m.Proxy().CutAfterHeaders("wait=true", 0)
	}
	end, err := wk.Set(ctx, dir+"/end", "x", nil)
	require.NoError(t, err)
	own.waitIndex(t, end.Node.ModifiedIndex, time.Minute)
	want := own.events()
	for _, r := range append(append(slices.Clone(recs), slow), nows...) {
		r.waitIndex(t, end.Node.ModifiedIndex, time.Minute)
	}
	cancel()
	for _, r := range append(append(slices.Clone(recs), slow, own), nows...) {
		<-r.done
	}
	t.Logf("%d events, %d acknowledged writes, %d watch answers cut after their headers", len(want), len(w.acked), cuts)
	require.Positive(t, cuts, "no watch answer was cut")

	// The recorder: increasing, every acknowledged write.
	require.True(t, slices.IsSorted(want) && len(slices.Compact(slices.Clone(want))) == len(want), "recorder's events not strictly increasing")
	for _, a := range w.acked {
		_, found := slices.BinarySearch(want, a)
		require.True(t, found, "acknowledged write %d missing from the recorder's events", a)
	}
	want = append([]uint64{}, want...)
	slowWant := want[1:] // slow took the first event itself
	require.Equal(t, want[0], w.acked[0])
	for i, r := range recs {
		require.Equal(t, want, r.events(), "shared watcher %d", i)
	}
	require.Equal(t, slowWant, slow.events(), "the slow watcher")
	for i, r := range nows {
		got := r.events()
		require.NotEmpty(t, got)
		j, found := slices.BinarySearch(want, got[0])
		require.True(t, found, "from-now watcher %d: first event %d not the recorder's", i, got[0])
		require.Equal(t, want[j:], got, "from-now watcher %d", i)
	}
}

// TestSharedIndexCleared: watchers whose shared cursor fell out of the
// server's history all get the server's 401 (index cleared), as the
// watcher with a poll of its own does, and again on the next Next.
func TestSharedIndexCleared(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eps := cl.ClientURLs()
	wk := newClient(t, eps)
	start, err := wk.Set(ctx, "/cleared/start", "x", nil)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < 1010; i += 8 {
				if _, err := wk.Set(ctx, fmt.Sprintf("/cleared/other/%d", i), "x", nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	shared := newClient(t, eps)
	opts := &client.WatcherOptions{AfterIndex: start.Node.ModifiedIndex}
	ws := []client.Watcher{shared.Watcher("/cleared/key", opts), shared.Watcher("/cleared/key", opts), shared.Watcher("/cleared/key", opts),
		newClient(t, eps).Watcher("/cleared/key", &client.WatcherOptions{AfterIndex: opts.AfterIndex, OwnPoll: true})}
	for round := 0; round < 2; round++ {
		errs := make([]error, len(ws))
		var wg sync.WaitGroup
		for i, w := range ws {
			wg.Add(1)
			go func() { defer wg.Done(); _, errs[i] = w.Next(ctx) }()
		}
		wg.Wait()
		for i, err := range errs {
			var e client.Error
			require.True(t, errors.As(err, &e), "round %d watcher %d: %v", round, i, err)
			require.Equal(t, client.ErrorCodeEventIndexCleared, e.Code, "round %d watcher %d", round, i)
		}
	}
}

// TestSharedSlowWatcherIndexCleared: a shared watcher that was not in Next
// while its events were queued and more than 1000 other events happened
// gets the server's 401, as the watcher with a poll of its own does; a
// shared watcher that kept up gets every event.
func TestSharedSlowWatcherIndexCleared(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eps := cl.ClientURLs()
	wk := newClient(t, eps)
	start, err := wk.Set(ctx, "/slow/start", "x", nil)
	require.NoError(t, err)
	shared := newClient(t, eps)
	opts := &client.WatcherOptions{AfterIndex: start.Node.ModifiedIndex}
	slow := shared.Watcher("/slow/key", opts)
	own := newClient(t, eps).Watcher("/slow/key", &client.WatcherOptions{AfterIndex: opts.AfterIndex, OwnPoll: true})

	// slow's first Next starts the shared poll (no other watcher of the
	// key is in Next yet) and stays in it.
	e1, err := wk.Set(ctx, "/slow/key", "1", nil)
	require.NoError(t, err)
	var fast *watchRecord
	for _, w := range []client.Watcher{slow, own} {
		res, err := w.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, e1.Node.ModifiedIndex, res.Node.ModifiedIndex)
		if fast == nil {
			fast = startRecord(ctx, shared.Watcher("/slow/key", opts), nil)
		}
	}
	// slow and own are not in Next from here on.
	e2, err := wk.Set(ctx, "/slow/key", "2", nil)
	require.NoError(t, err)
	fast.waitIndex(t, e2.Node.ModifiedIndex, 30*time.Second)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < 1100; i += 8 {
				if _, err := wk.Set(ctx, fmt.Sprintf("/slow/other/%d", i), "x", nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	e3, err := wk.Set(ctx, "/slow/key", "3", nil)
	require.NoError(t, err)
	fast.waitIndex(t, e3.Node.ModifiedIndex, 30*time.Second)
	require.Equal(t, []uint64{e1.Node.ModifiedIndex, e2.Node.ModifiedIndex, e3.Node.ModifiedIndex}, fast.events())
	for i, w := range []client.Watcher{slow, own} {
		_, err := w.Next(ctx)
		var e client.Error
		require.True(t, errors.As(err, &e), "watcher %d: %v", i, err)
		require.Equal(t, client.ErrorCodeEventIndexCleared, e.Code, "watcher %d", i)
	}
	cancel()
	<-fast.done
}
