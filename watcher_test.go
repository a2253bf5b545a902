package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/v2fake"
)

// watchScript is a fake v2 member whose answers to watch polls (every
// request but /version) the test scripts; it tells the waitIndex of every
// poll.
type watchScript struct {
	srv *v2fake.Server
}

func newWatchScript(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) (*watchScript, *v2fake.Server) {
	srv := v2fake.Start(t, v2fake.Options{})
	var mu sync.Mutex
	polls := 0
	srv.On("*", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path == "/version" {
			next.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		n := polls
		polls++
		mu.Unlock()
		answer(n, w, r)
	})
	return &watchScript{srv: srv}, srv
}

// waitIndexes returns the waitIndex of each poll, "" when absent.
func (s *watchScript) waitIndexes() []string {
	var out []string
	for _, r := range s.srv.Requests() {
		if r.Path == "/version" {
			continue
		}
		q, _ := url.ParseQuery(r.RawQuery)
		out = append(out, q.Get("waitIndex"))
	}
	return out
}

func watchHeaders(w http.ResponseWriter, index uint64) {
	w.Header().Set("X-Etcd-Index", fmt.Sprint(index))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	w.(http.Flusher).Flush()
}

func event(w http.ResponseWriter, key string, index uint64) {
	fmt.Fprintf(w, `{"action":"set","node":{"key":%q,"value":"v","modifiedIndex":%d,"createdIndex":%d}}`+"\n", key, index, index)
}

func newTestKeys(t *testing.T, cfg Config) KeysAPI {
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return NewKeysAPI(c)
}

func TestWatcherCursor(t *testing.T) {
	s, srv := newWatchScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0: // an event from history
			watchHeaders(w, 50)
			event(w, "/k", 10)
		case 1: // an empty poll registered at 60
			watchHeaders(w, 60)
		case 2: // headers, then the connection is cut
			watchHeaders(w, 70)
			conn, buf, _ := w.(http.Hijacker).Hijack()
			buf.Flush()
			conn.Close()
		case 3: // an event below the cursor is dropped
			watchHeaders(w, 72)
			event(w, "/k", 5)
		case 4:
			watchHeaders(w, 80)
			event(w, "/k", 81)
		}
	})
	k := newTestKeys(t, Config{Endpoints: []string{srv.URL}})
	wt := k.Watcher("/k", &WatcherOptions{AfterIndex: 4, Recursive: true, OwnPoll: true})
	ctx := context.Background()
	resp, err := wt.Next(ctx)
	if err != nil || resp.Node.ModifiedIndex != 10 || resp.Index != 50 {
		t.Fatalf("first event: %+v, %v", resp, err)
	}
	resp, err = wt.Next(ctx)
	if err != nil || resp.Node.ModifiedIndex != 81 {
		t.Fatalf("second event: %+v, %v", resp, err)
	}
	want := []string{"5", "11", "11", "11", "11"}
	if got := s.waitIndexes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("waitIndexes %v, want %v", got, want)
	}
}

// TestWatcherReusesConnection: a watcher's polls go on one connection,
// for a poll of its own and a shared one, also when more than etcd's
// newline follows an event, after the event has gone.
func TestWatcherReusesConnection(t *testing.T) {
	for _, own := range []bool{true, false} {
		t.Run(fmt.Sprintf("OwnPoll=%v", own), func(t *testing.T) {
			var mu sync.Mutex
			conns := map[string]int{}
			_, srv := newWatchScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				conns[r.RemoteAddr]++
				mu.Unlock()
				watchHeaders(w, uint64(20+n))
				event(w, "/k", uint64(10+n))
				if n%2 == 1 {
					// More than the newline, after the event has gone.
					w.(http.Flusher).Flush()
					fmt.Fprint(w, strings.Repeat(" ", 100)+"\n")
				}
			})
			k := newTestKeys(t, Config{Endpoints: []string{srv.URL}})
			wt := k.Watcher("/k", &WatcherOptions{AfterIndex: 9, OwnPoll: own})
			ctx := testCtx(t)
			const events = 6
			for i := range events {
				resp, err := wt.Next(ctx)
				if err != nil || resp.Node.ModifiedIndex != uint64(10+i) {
					t.Fatalf("event %d: %+v, %v", i, resp, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			polls := 0
			for _, n := range conns {
				polls += n
			}
			if len(conns) != 1 || polls < events {
				t.Fatalf("%d polls on %d connections (%v), want them all on one", polls, len(conns), conns)
			}
		})
	}
}

func TestWatcherFromNow(t *testing.T) {
	s, srv := newWatchScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			watchHeaders(w, 30) // empty: the cursor becomes 31
			return
		}
		watchHeaders(w, 31)
		event(w, "/k", 33)
	})
	wt := newTestKeys(t, Config{Endpoints: []string{srv.URL}}).Watcher("/k", &WatcherOptions{OwnPoll: true})
	if _, err := wt.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.waitIndexes(); fmt.Sprint(got) != "[0 31]" {
		t.Fatalf("waitIndexes %q", got)
	}
}

func TestWatcherEventIndexCleared(t *testing.T) {
	s, srv := newWatchScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Etcd-Index", "1119")
		w.WriteHeader(400)
		fmt.Fprint(w, `{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [120/5]","index":1119}`)
	})
	wt := newTestKeys(t, Config{Endpoints: []string{srv.URL}}).Watcher("/k", &WatcherOptions{AfterIndex: 4, OwnPoll: true})
	for i := 0; i < 2; i++ {
		_, err := wt.Next(context.Background())
		e, ok := err.(Error)
		if !ok || e.Code != ErrorCodeEventIndexCleared || e.Index != 1119 {
			t.Fatalf("got %#v", err)
		}
	}
	if got := s.waitIndexes(); fmt.Sprint(got) != "[5 5]" {
		t.Fatalf("the cursor moved: %v", got)
	}
}

func TestWatcherCancel(t *testing.T) {
	released := make(chan struct{})
	var once sync.Once
	_, srv := newWatchScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
		watchHeaders(w, 10)
		<-r.Context().Done() // the client must drop the connection
		once.Do(func() { close(released) })
	})
	wt := newTestKeys(t, Config{Endpoints: []string{srv.URL}}).Watcher("/k", nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := wt.Next(ctx); errc <- err }()
	time.AfterFunc(50*time.Millisecond, cancel)
	select {
	case err := <-errc:
		if err != context.Canceled {
			t.Fatalf("got %#v, want exactly context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return after cancel")
	}
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not closed")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	if _, err := wt.Next(ctx2); err != context.DeadlineExceeded {
		t.Fatalf("got %#v, want exactly context.DeadlineExceeded", err)
	}
}

// TestWatcherProbeFailover: the watched member hangs (its watch and its
// /version never answer, as under SIGSTOP); the probe notices it and the
// watch resumes on the other member with the same cursor.
func TestWatcherProbeFailover(t *testing.T) {
	// The first watch is registered; then the member stops: nothing
	// answers any more.
	hungSrv := v2fake.Start(t, v2fake.Options{})
	hungSrv.On("*", v2fake.Hang())
	hungSrv.On("/v2/*", v2fake.HeadersThenHang(20)).Times(1)
	s, okSrv := newWatchScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
		watchHeaders(w, 22)
		event(w, "/k", 23)
	})
	pinHung := SelectorFunc(func(_ RequestInfo, cands []Endpoint) int {
		for i, e := range cands {
			if e.URL == hungSrv.URL {
				return i
			}
		}
		return 0
	})
	k := newTestKeys(t, Config{Endpoints: []string{hungSrv.URL, okSrv.URL}, Selector: pinHung, HeaderTimeoutPerRequest: 200 * time.Millisecond})
	wt := k.Watcher("/k", &WatcherOptions{AfterIndex: 10, ProbeInterval: 100 * time.Millisecond, OwnPoll: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := wt.Next(ctx)
	if err != nil || resp.Node.ModifiedIndex != 23 || resp.Endpoint != okSrv.URL {
		t.Fatalf("got %+v, %v", resp, err)
	}
	// The hung poll was registered at 20 but carried a cursor: it stays.
	if got := s.waitIndexes(); fmt.Sprint(got) != "[11]" {
		t.Fatalf("waitIndexes on the healthy member: %v", got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("failover took %v", d)
	}
}

func TestWatcherMaxPollDuration(t *testing.T) {
	s, srv := newWatchScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			watchHeaders(w, 40)
			<-r.Context().Done()
			return
		}
		watchHeaders(w, 41)
		event(w, "/k", 42)
	})
	k := newTestKeys(t, Config{Endpoints: []string{srv.URL}})
	wt := k.Watcher("/k", &WatcherOptions{MaxPollDuration: 100 * time.Millisecond, ProbeInterval: -1, OwnPoll: true})
	resp, err := wt.Next(context.Background())
	if err != nil || resp.Node.ModifiedIndex != 42 {
		t.Fatalf("got %+v, %v", resp, err)
	}
	if got := s.waitIndexes(); fmt.Sprint(got) != "[0 41]" {
		t.Fatalf("waitIndexes %q", got)
	}
}

func TestWatcherFailoverOnDeadMember(t *testing.T) {
	dead := v2fake.Start(t, v2fake.Options{})
	deadURL := dead.URL
	dead.Close()
	s, srv := newWatchScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
		watchHeaders(w, 9)
		event(w, "/k", 9)
	})
	pinDead := SelectorFunc(func(_ RequestInfo, cands []Endpoint) int {
		for i, e := range cands {
			if e.URL == deadURL {
				return i
			}
		}
		return 0
	})
	k := newTestKeys(t, Config{Endpoints: []string{deadURL, srv.URL}, Selector: pinDead})
	resp, err := k.Watcher("/k", &WatcherOptions{AfterIndex: 8, OwnPoll: true}).Next(context.Background())
	if err != nil || resp.Node.ModifiedIndex != 9 {
		t.Fatalf("got %+v, %v", resp, err)
	}
	if got := s.waitIndexes(); fmt.Sprint(got) != "[9]" {
		t.Fatalf("waitIndexes %v", got)
	}
}

func TestEventsIterator(t *testing.T) {
	_, srv := newWatchScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 2 {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"errorCode":401,"message":"cleared","index":99}`)
			return
		}
		watchHeaders(w, 1)
		event(w, "/k", uint64(n+2))
	})
	wt := newTestKeys(t, Config{Endpoints: []string{srv.URL}}).Watcher("/k", &WatcherOptions{AfterIndex: 1})
	var got []uint64
	var last error
	for resp, err := range Events(context.Background(), wt) {
		if err != nil {
			last = err
			continue
		}
		got = append(got, resp.Node.ModifiedIndex)
	}
	if fmt.Sprint(got) != "[2 3]" || !errors.Is(last, Error{Code: ErrorCodeEventIndexCleared}) {
		t.Fatalf("got %v, %v", got, last)
	}
}

// TestWatcherMovesOffEjectedEndpoint: the watched member hangs; plain reads
// of the same client time out on it and get it ejected, and the watch,
// with its own probing off, leaves it for the other member without losing
// its cursor.
func TestWatcherMovesOffEjectedEndpoint(t *testing.T) {
	registered := make(chan struct{}, 1)
	_, hungSrv := newWatchScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") == "true" {
			watchHeaders(w, 10) // registered; no event will come
			select {
			case registered <- struct{}{}:
			default:
			}
		}
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	})
	good, goodSrv := newWatchScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") == "true" {
			watchHeaders(w, 12)
			event(w, "/k", 11)
			return
		}
		w.Header().Set("X-Etcd-Index", "12")
		fmt.Fprint(w, `{"action":"get","node":{"key":"/k","value":"v","modifiedIndex":11,"createdIndex":11}}`)
	})
	kapi := newTestKeys(t, Config{
		Endpoints:               []string{hungSrv.URL, goodSrv.URL},
		Selector:                preferOrder(hungSrv.URL, goodSrv.URL),
		HeaderTimeoutPerRequest: 100 * time.Millisecond,
	})
	wt := kapi.Watcher("/k", &WatcherOptions{ProbeInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct {
		resp *Response
		err  error
	}
	done := make(chan result, 1)
	go func() { r, err := wt.Next(ctx); done <- result{r, err} }()
	select {
	case <-registered:
	case r := <-done:
		t.Fatalf("the watch ended before reaching the first member: %v", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("the watch never reached the first member")
	}
	for i := 0; i < DefaultEjectAfter; i++ {
		if _, err := kapi.Get(ctx, "/k", nil); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	select {
	case r := <-done:
		if r.err != nil || r.resp.Node.ModifiedIndex != 11 || r.resp.Endpoint != goodSrv.URL {
			t.Fatalf("got %+v, %v; want the event at 11 from the other member", r.resp, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch stayed on the ejected member")
	}
	var polls []string
	for _, p := range good.waitIndexes() {
		if p != "" {
			polls = append(polls, p)
		}
	}
	// The first poll there kept the cursor; the shared poll may already
	// have sent the next one, after the event.
	if len(polls) == 0 || polls[0] != "11" || len(polls) > 1 && fmt.Sprint(polls[1:]) != "[12]" {
		t.Fatalf("the other member was polled at %v, want [11] (registered 10 + 1), then maybe [12]", polls)
	}
}

// TestWatcherEventNotDelayedByProbe: an event that arrives while a probe of
// the watched member is in flight (its /version hangs) is returned at once,
// not after the probe's timeout.
func TestWatcherEventNotDelayedByProbe(t *testing.T) {
	probing := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := v2fake.Start(t, v2fake.Options{})
	srv.On("*", v2fake.Func(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/version" {
			select {
			case probing <- struct{}{}:
			default:
			}
			select { // hangs until the probe is given up
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		watchHeaders(w, 5)
		select { // the event comes once a probe is in flight
		case <-probing:
		case <-r.Context().Done():
			return
		}
		event(w, "/k", 6)
	}))
	defer close(release)
	k := newTestKeys(t, Config{Endpoints: []string{srv.URL}, HeaderTimeoutPerRequest: 10 * time.Second})
	wt := k.Watcher("/k", &WatcherOptions{AfterIndex: 5, ProbeInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := wt.Next(ctx)
	if err != nil || resp.Node.ModifiedIndex != 6 {
		t.Fatalf("got %+v, %v", resp, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the event took %v: it waited for the probe (timeout 10s)", d)
	}
}

// watchHeadersSeen signals each watch attempt that got its headers.
type watchHeadersSeen struct{ ch chan struct{} }

func (h watchHeadersSeen) CallStart(ctx context.Context, _ CallInfo) context.Context { return ctx }
func (h watchHeadersSeen) AttemptStart(ctx context.Context, _ AttemptInfo) context.Context {
	return ctx
}
func (h watchHeadersSeen) AttemptEnd(_ context.Context, a AttemptInfo, end AttemptEnd) {
	if a.Call.Kind == KindWatch && end.Class == AttemptOK {
		h.ch <- struct{}{}
	}
}
func (h watchHeadersSeen) CallEnd(context.Context, CallInfo, CallEnd) {}

// TestWatcherFromNowGivenUpAfterHeaders: a watcher without a cursor whose
// first poll got its headers (X-Etcd-Index 10) and whose caller then gave
// up resumes at 11 (protocol §6.2 rule 3: a caller giving up ends an empty
// poll), not "from now" again, which would lose an event at 11 written
// between the two calls of Next.
func TestWatcherFromNowGivenUpAfterHeaders(t *testing.T) {
	for _, own := range []bool{true, false} {
		t.Run(fmt.Sprintf("OwnPoll=%v", own), func(t *testing.T) {
			s, srv := newWatchScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 0 {
					watchHeaders(w, 10)
					<-r.Context().Done()
					return
				}
				watchHeaders(w, 12)
				if r.URL.Query().Get("waitIndex") == "11" {
					event(w, "/k", 11)
				} else {
					<-r.Context().Done()
				}
			})
			seen := watchHeadersSeen{make(chan struct{}, 8)}
			wt := newTestKeys(t, Config{Endpoints: []string{srv.URL}, Hooks: seen}).Watcher("/k", &WatcherOptions{OwnPoll: own})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := wt.Next(ctx)
				done <- err
			}()
			select {
			case <-seen.ch:
			case <-time.After(10 * time.Second):
				t.Fatal("no headers")
			}
			if !own {
				// The share takes the headers' index after the attempt's
				// end: wait until the watcher's subscription has it.
				w := wt.(*httpWatcher)
				deadline := time.Now().Add(10 * time.Second)
				for {
					sub := w.link.sub.Load()
					sub.share.mu.Lock()
					c := sub.cursor
					sub.share.mu.Unlock()
					if c != 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("the subscription got no cursor")
					}
					time.Sleep(time.Millisecond)
				}
			}
			cancel()
			if err := <-done; err != context.Canceled {
				t.Fatalf("first Next: %v", err)
			}
			ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel2()
			resp, err := wt.Next(ctx2)
			if err != nil || resp.Node.ModifiedIndex != 11 {
				t.Fatalf("event 11 lost: %+v, %v (waitIndexes %v)", resp, err, s.waitIndexes())
			}
		})
	}
}
