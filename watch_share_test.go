package client

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/leakcheck"
	"github.com/etcdv2/client/internal/v2fake"
	"github.com/stretchr/testify/require"
)

// eventLog is a v2fake member with the helpers of the shared-poll tests:
// writes through its keys store, polls served by its watches (an event
// history of Options.History events, 1000 by default; a watch, once
// registered, sees every event after it). The root module cannot start
// etcd; the integration tests run the same checks on real clusters.
type eventLog struct{ *v2fake.Server }

func newEventLog(t *testing.T, opts v2fake.Options) (*eventLog, *v2fake.Server) {
	srv := v2fake.Start(t, opts)
	return &eventLog{srv}, srv
}

// write sets key and returns the index of its event.
func (l *eventLog) write(key string) uint64 {
	l.Set(key, "v")
	return l.Index()
}

// setHold makes open polls send no event while h is set.
func (l *eventLog) setHold(h bool) { l.HoldEvents(h) }

// cutNextPoll makes the next poll end after its headers (those of a
// registered watch), without an event.
func (l *eventLog) cutNextPoll() {
	l.On("GET /v2/keys/*", v2fake.Func(func(w http.ResponseWriter, r *http.Request) {
		watchHeaders(w, l.Index())
		panic(http.ErrAbortHandler)
	})).Times(1)
}

// stats returns the polls served so far and those open now.
func (l *eventLog) stats() (polls, open int) {
	return l.CountFunc(func(r v2fake.Request) bool { return strings.HasPrefix(r.Path, "/v2/keys/") }), l.Watches()
}

// waitOpen waits until n polls are open.
func (l *eventLog) waitOpen(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, open := l.stats(); open == n {
			return
		}
		if time.Now().After(deadline) {
			_, open := l.stats()
			t.Fatalf("%d polls open, want %d", open, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The tests of watcher_test.go that count the polls of one watcher give it
// a poll of its own (OwnPoll): a shared poll goes on polling between calls
// of Next. The tests here are those of shared polls.

// recorder calls Next on a watcher in a goroutine and records the indexes.
type recorder struct {
	mu   sync.Mutex
	got  []uint64
	err  error
	more chan struct{}
	done chan struct{}
}

func record(ctx context.Context, w Watcher) *recorder {
	r := &recorder{more: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			res, err := w.Next(ctx)
			r.mu.Lock()
			if err != nil {
				r.err = err
				r.mu.Unlock()
				select {
				case r.more <- struct{}{}:
				default:
				}
				return
			}
			r.got = append(r.got, res.Node.ModifiedIndex)
			r.mu.Unlock()
			select {
			case r.more <- struct{}{}:
			default:
			}
		}
	}()
	return r
}

// waitFor waits until r has n events.
func (r *recorder) waitFor(t *testing.T, n int) []uint64 {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		got, err := slices.Clone(r.got), r.err
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if err != nil {
			t.Fatalf("watcher ended after %v: %v", got, err)
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("watcher has %v, want %d events", got, n)
		}
	}
}

// waitJoined waits until w is in a share.
func waitJoined(t *testing.T, w Watcher) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.(*httpWatcher).link.sub.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not join a share")
		}
		time.Sleep(time.Millisecond)
	}
}

func shareKeys(t *testing.T, srv *v2fake.Server) (KeysAPI, Client) {
	c, err := New(Config{Endpoints: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return NewKeysAPI(c), c
}

// TestShareOnePoll: watchers of one key with one cursor hold one poll
// between them, and each gets every event once and in order, as a
// watcher with a poll of its own does.
func TestShareOnePoll(t *testing.T) {
	l, srv := newEventLog(t, v2fake.Options{})
	k, _ := shareKeys(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := l.write("/other")
	const n = 50
	var recs []*recorder
	for i := 0; i < n; i++ {
		recs = append(recs, record(ctx, k.Watcher("/k", &WatcherOptions{AfterIndex: start, Recursive: true})))
	}
	own := record(ctx, k.Watcher("/k", &WatcherOptions{AfterIndex: start, Recursive: true, OwnPoll: true}))
	l.waitOpen(t, 2)
	var want []uint64
	for i := 0; i < 20; i++ {
		want = append(want, l.write("/k/"+strconv.Itoa(i%3)))
		l.write("/other")
	}
	if got := own.waitFor(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("own poll got %v, want %v", got, want)
	}
	for i, r := range recs {
		if got := r.waitFor(t, len(want)); !slices.Equal(got, want) {
			t.Fatalf("shared watcher %d got %v, want %v", i, got, want)
		}
	}
	l.waitOpen(t, 2)
	polls, _ := l.stats()
	// Per event at most one poll of the share and one of the own
	// watcher, plus the first ones and restarts.
	if max := 2*len(want) + 2 + n; polls > max {
		t.Fatalf("%d polls for %d events", polls, len(want))
	}
	cancel()
	for _, r := range append(recs, own) {
		<-r.done
	}
	l.waitOpen(t, 0)
}

// TestShareBehindCatchesUp: a watcher whose cursor is behind the share's
// polls alone until it has caught up, then joins; one ahead joins at once
// and skips what is below its cursor. Both get exactly what a watcher of
// their own would.
func TestShareBehindCatchesUp(t *testing.T) {
	l, srv := newEventLog(t, v2fake.Options{})
	k, _ := shareKeys(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var all []uint64
	for i := 0; i < 10; i++ {
		all = append(all, l.write("/k"))
	}
	lead := record(ctx, k.Watcher("/k", &WatcherOptions{AfterIndex: all[7]}))
	lead.waitFor(t, 2)
	l.waitOpen(t, 1)
	behind := record(ctx, k.Watcher("/k", &WatcherOptions{AfterIndex: all[1]}))
	ahead := record(ctx, k.Watcher("/k", &WatcherOptions{AfterIndex: all[9] + 5}))
	behind.waitFor(t, 8)
	for i := 0; i < 5; i++ {
		all = append(all, l.write("/k"))
	}
	if got := behind.waitFor(t, len(all)-2); !slices.Equal(got, all[2:]) {
		t.Fatalf("behind got %v, want %v", got, all[2:])
	}
	if got := lead.waitFor(t, len(all)-8); !slices.Equal(got, all[8:]) {
		t.Fatalf("lead got %v, want %v", got, all[8:])
	}
	var wantAhead []uint64
	for _, i := range all {
		if i > all[9]+5 {
			wantAhead = append(wantAhead, i)
		}
	}
	if got := ahead.waitFor(t, len(wantAhead)); !slices.Equal(got, wantAhead) {
		t.Fatalf("ahead got %v, want %v", got, wantAhead)
	}
	l.waitOpen(t, 1)
}

// TestShareFromNow: a watcher without a cursor that joins a share gets the
// events after the store's index at a poll sent after it joined: never an
// event written before its Next was called, even one the share has not
// received yet.
func TestShareFromNow(t *testing.T) {
	l, srv := newEventLog(t, v2fake.Options{})
	k, _ := shareKeys(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := record(ctx, k.Watcher("/k", nil))
	l.waitOpen(t, 1)
	l.setHold(true)
	e1 := l.write("/k") // sent to nobody yet: the share's poll is open
	b := record(ctx, k.Watcher("/k", nil))
	// b's join restarts the share's poll; wait for the new one.
	deadline := time.Now().Add(10 * time.Second)
	for polls, _ := l.stats(); polls < 2; polls, _ = l.stats() {
		if time.Now().After(deadline) {
			t.Fatal("the share's poll was not restarted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	l.waitOpen(t, 1)
	l.setHold(false)
	if got := a.waitFor(t, 1); got[0] != e1 {
		t.Fatalf("a got %v, want %d first", got, e1)
	}
	e2 := l.write("/k")
	if got := a.waitFor(t, 2); !slices.Equal(got, []uint64{e1, e2}) {
		t.Fatalf("a got %v", got)
	}
	if got := b.waitFor(t, 1); !slices.Equal(got, []uint64{e2}) {
		t.Fatalf("b got %v, want only %d (%d was written before it watched)", got, e2, e1)
	}
}

// TestShareSlowSubscriber: a watcher that does not call Next while more
// than shareQueueMax events come leaves the share without holding the
// others back, and then gets every event, once and in order, from its own
// polls.
func TestShareSlowSubscriber(t *testing.T) {
	l, srv := newEventLog(t, v2fake.Options{})
	k, _ := shareKeys(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := l.write("/other")
	slow := k.Watcher("/k", &WatcherOptions{AfterIndex: start})
	fast := record(ctx, k.Watcher("/k", &WatcherOptions{AfterIndex: start}))
	type result struct {
		res *Response
		err error
	}
	firstRes := make(chan result, 1)
	go func() {
		res, err := slow.Next(ctx)
		firstRes <- result{res, err}
	}()
	waitJoined(t, slow)
	first := l.write("/k")
	if r := <-firstRes; r.err != nil || r.res.Node.ModifiedIndex != first {
		t.Fatalf("slow: %v, %v", r.res, r.err)
	}
	want := []uint64{first}
	for i := 0; i < shareQueueMax+50; i++ {
		want = append(want, l.write("/k"))
	}
	if got := fast.waitFor(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("fast got %d events, want %d in order", len(got), len(want))
	}
	// The slow one left the share with at most shareQueueMax events.
	sub := slow.(*httpWatcher).link.sub.Load()
	sub.share.mu.Lock()
	left, queued := sub.left, len(sub.queue)-sub.head
	sub.share.mu.Unlock()
	if !left || queued > shareQueueMax {
		t.Fatalf("slow subscriber: left %v with %d events queued", left, queued)
	}
	got := []uint64{first}
	for len(got) < len(want) {
		nctx, ncancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := slow.Next(nctx)
		ncancel()
		if err != nil {
			t.Fatalf("slow after %d events: %v", len(got), err)
		}
		got = append(got, res.Node.ModifiedIndex)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("slow got %v\nwant %v", got, want)
	}
}

// TestShareCancelOne: one watcher's context ending does not disturb the
// others; when the last one's ends, the share's poll and goroutine end.
func TestShareCancelOne(t *testing.T) {
	l, srv := newEventLog(t, v2fake.Options{})
	k, _ := shareKeys(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := l.write("/other")
	actx, acancel := context.WithCancel(ctx)
	a := record(actx, k.Watcher("/k", &WatcherOptions{AfterIndex: start}))
	b := record(ctx, k.Watcher("/k", &WatcherOptions{AfterIndex: start}))
	e1 := l.write("/k")
	a.waitFor(t, 1)
	b.waitFor(t, 1)
	acancel()
	<-a.done
	if !errors.Is(a.err, context.Canceled) {
		t.Fatalf("a ended with %v", a.err)
	}
	e2 := l.write("/k")
	if got := b.waitFor(t, 2); !slices.Equal(got, []uint64{e1, e2}) {
		t.Fatalf("b got %v", got)
	}
	l.waitOpen(t, 1)
	cancel()
	<-b.done
	l.waitOpen(t, 0)
	// No goroutine of a share or of a poll's probe is left (idle
	// connections of the transport may stay until Close).
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := 0
		for _, g := range leakcheck.Goroutines() {
			if strings.Contains(g, "(*watchShare).run") || strings.Contains(g, "(*watchSpec).startProbe") || strings.Contains(g, "(*httpWatcher).Next") {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of watchers left", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestShareIndexCleared: when the shared cursor falls out of the history,
// every watcher at that cursor gets the server's 401 and keeps its cursor,
// as alone.
func TestShareIndexCleared(t *testing.T) {
	l, srv := newEventLog(t, v2fake.Options{History: 5})
	k, _ := shareKeys(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := l.write("/other")
	for i := 0; i < 10; i++ {
		l.write("/other")
	}
	ws := []Watcher{
		k.Watcher("/k", &WatcherOptions{AfterIndex: start}),
		k.Watcher("/k", &WatcherOptions{AfterIndex: start}),
		k.Watcher("/k", &WatcherOptions{AfterIndex: start, OwnPoll: true}),
	}
	for round := 0; round < 2; round++ {
		var wg sync.WaitGroup
		errs := make([]error, len(ws))
		for i, w := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = w.Next(ctx)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			var e Error
			if !errors.As(err, &e) || e.Code != ErrorCodeEventIndexCleared {
				t.Fatalf("round %d, watcher %d: %v, want a 401", round, i, err)
			}
		}
	}
}

// TestShareCutAfterHeaders: a shared poll cut after its headers is an
// empty poll: the cursor stays and the event from history comes, once.
func TestShareCutAfterHeaders(t *testing.T) {
	l, srv := newEventLog(t, v2fake.Options{})
	k, _ := shareKeys(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := l.write("/other")
	e1 := l.write("/k")
	l.write("/other")
	l.cutNextPoll()
	a := record(ctx, k.Watcher("/k", &WatcherOptions{AfterIndex: start}))
	b := record(ctx, k.Watcher("/k", &WatcherOptions{AfterIndex: start}))
	e2 := l.write("/k")
	for _, r := range []*recorder{a, b} {
		if got := r.waitFor(t, 2); !slices.Equal(got, []uint64{e1, e2}) {
			t.Fatalf("got %v, want %v", got, []uint64{e1, e2})
		}
	}
}

// TestShareClose: Close ends the share; its watchers fail as they would
// alone, with ErrClosed.
func TestShareClose(t *testing.T) {
	l, srv := newEventLog(t, v2fake.Options{})
	k, c := shareKeys(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := l.write("/other")
	a := record(ctx, k.Watcher("/k", &WatcherOptions{AfterIndex: start}))
	b := record(ctx, k.Watcher("/k", &WatcherOptions{AfterIndex: start}))
	l.waitOpen(t, 1)
	c.Close()
	for _, r := range []*recorder{a, b} {
		<-r.done
		if !errors.Is(r.err, ErrClosed) {
			t.Fatalf("after Close: %v", r.err)
		}
	}
	l.waitOpen(t, 0)
}

// TestShareDroppedWatcher: a watcher dropped while in a share leaves it
// once it is collected, and the share's poll ends.
func TestShareDroppedWatcher(t *testing.T) {
	l, srv := newEventLog(t, v2fake.Options{})
	k, _ := shareKeys(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := l.write("/other")
	func() {
		w := k.Watcher("/k", &WatcherOptions{AfterIndex: start})
		go func() {
			for i := 0; i < 1000; i++ {
				if _, open := l.stats(); open == 1 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			l.write("/k")
		}()
		if _, err := w.Next(ctx); err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if _, open := l.stats(); open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the dropped watcher's share still polls")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShareLateWatcherIndexCleared: a watcher that was not in Next while
// its events were queued and more than 1000 other events happened gets
// the server's 401, as a watcher with its own poll does, while a watcher
// that kept up gets the events.
func TestShareLateWatcherIndexCleared(t *testing.T) {
	l, srv := newEventLog(t, v2fake.Options{})
	k, _ := shareKeys(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := l.write("/other")
	slow := k.Watcher("/k", &WatcherOptions{AfterIndex: start})
	own := k.Watcher("/k", &WatcherOptions{AfterIndex: start, OwnPoll: true})
	fast := record(ctx, k.Watcher("/k", &WatcherOptions{AfterIndex: start}))
	firstErr := make(chan error, 2)
	var e1 uint64
	for _, w := range []Watcher{slow, own} {
		go func() {
			_, err := w.Next(ctx)
			firstErr <- err
		}()
	}
	waitJoined(t, slow)
	l.waitOpen(t, 2) // the share's poll and own's
	e1 = l.write("/k")
	for range 2 {
		if err := <-firstErr; err != nil {
			t.Fatal(err)
		}
	}
	// While slow and own are not in Next: an event for them, 1100 others,
	// and one more for them (the share's poll sees the store's index).
	e2 := l.write("/k")
	fast.waitFor(t, 2)
	l.waitOpen(t, 1) // the share's poll, for the events after e2
	for i := 0; i < 1100; i++ {
		l.write("/other")
	}
	e3 := l.write("/k")
	if got := fast.waitFor(t, 3); !slices.Equal(got, []uint64{e1, e2, e3}) {
		t.Fatalf("fast got %v", got)
	}
	// The share's next poll has its headers: it knows the store's index.
	sh := slow.(*httpWatcher).link.sub.Load().share
	deadline := time.Now().Add(10 * time.Second)
	for {
		sh.mu.Lock()
		known := sh.known
		sh.mu.Unlock()
		if known >= e3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the share knows index %d, want %d", known, e3)
		}
		time.Sleep(time.Millisecond)
	}
	for i, w := range []Watcher{slow, own} {
		_, err := w.Next(ctx)
		var e Error
		if !errors.As(err, &e) || e.Code != ErrorCodeEventIndexCleared {
			t.Fatalf("watcher %d: %v, want a 401", i, err)
		}
	}
}

// TestShareQuietKeyKeepsPlace: the one difference from a poll of its own.
// A watcher whose key stayed quiet while more than 1000 other events
// happened, and which then waits in Next with nothing queued, keeps its
// place in the shared poll and gets the next event, where a poll of its
// own gets the 401 at once.
func TestShareQuietKeyKeepsPlace(t *testing.T) {
	l, srv := newEventLog(t, v2fake.Options{})
	k, _ := shareKeys(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := l.write("/other")
	shared := k.Watcher("/k", &WatcherOptions{AfterIndex: start})
	own := k.Watcher("/k", &WatcherOptions{AfterIndex: start, OwnPoll: true})
	errs := make(chan error, 2)
	for _, w := range []Watcher{shared, own} {
		go func() {
			_, err := w.Next(ctx)
			errs <- err
		}()
	}
	waitJoined(t, shared)
	l.waitOpen(t, 2)
	l.write("/k")
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	l.waitOpen(t, 1) // the share's next poll; own is not in Next
	for i := 0; i < 1100; i++ {
		l.write("/other")
	}
	_, err := own.Next(ctx)
	var ec Error
	if !errors.As(err, &ec) || ec.Code != ErrorCodeEventIndexCleared {
		t.Fatalf("own: %v, want a 401", err)
	}
	type result struct {
		res *Response
		err error
	}
	got := make(chan result, 1)
	go func() {
		res, err := shared.Next(ctx)
		got <- result{res, err}
	}()
	sub := shared.(*httpWatcher).link.sub.Load()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sub.share.mu.Lock()
		waiting := sub.waiting
		sub.share.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shared watcher does not wait in Next")
		}
		time.Sleep(time.Millisecond)
	}
	e := l.write("/k")
	if r := <-got; r.err != nil || r.res.Node.ModifiedIndex != e {
		t.Fatalf("shared: %v, %v; want the event at %d", r.res, r.err, e)
	}
}

// TestShareResponsesAreTheirs: every watcher of a share gets a Response of
// its own, as it would alone: two watchers given one event get copies that
// do not alias, and a watcher given an event alone (no copy) may change it
// while its share polls on (the race detector checks that the share no
// longer reads it).
func TestShareResponsesAreTheirs(t *testing.T) {
	l, srv := newEventLog(t, v2fake.Options{})
	k, c := shareKeys(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := l.write("/other")
	const events = 5
	collect := func(w Watcher) <-chan []*Response {
		ch := make(chan []*Response, 1)
		go func() {
			var got []*Response
			for range events {
				res, err := w.Next(ctx)
				if err != nil {
					break
				}
				got = append(got, res)
			}
			ch <- got
		}()
		return ch
	}
	ca := collect(k.Watcher("/k", &WatcherOptions{AfterIndex: start}))
	cb := collect(k.Watcher("/k", &WatcherOptions{AfterIndex: start}))
	waitFor(t, func() bool { return shareWaiters(c) == 2 }, "both watchers waiting in one share")
	var want []uint64
	for range events {
		want = append(want, l.write("/k"))
	}
	ra, rb := <-ca, <-cb
	require.Len(t, ra, events)
	require.Len(t, rb, events)
	for i, idx := range want {
		require.Equal(t, idx, ra[i].Node.ModifiedIndex, "event %d", i)
		require.Equal(t, idx, rb[i].Node.ModifiedIndex, "event %d", i)
		require.NotSame(t, ra[i], rb[i], "two watchers were given one Response")
		require.NotSame(t, ra[i].Node, rb[i].Node, "two watchers were given one Node")
		ra[i].Node.Value = "changed"
		require.Equal(t, "v", rb[i].Node.Value)
	}

	alone := k.Watcher("/j", &WatcherOptions{AfterIndex: l.Index()})
	for i := range 20 {
		idx := l.write("/j")
		res, err := alone.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, idx, res.Node.ModifiedIndex, "event %d", i)
		require.Equal(t, "/j", res.Node.Key, "event %d", i)
		res.Node.Key, res.Node.Value, res.Node.ModifiedIndex = "", "", 0
		res.Node, res.Index = nil, 0
	}
}

// shareWaiters returns how many watchers wait in Next in c's shares.
func shareWaiters(c Client) int {
	h := &c.(*httpClusterClient).watches
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.shares {
		s.mu.Lock()
		for sub := range s.subs {
			if sub.waiting {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}
