package client

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/v2fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingHooks writes down every hook call, and checks the order the
// Hooks doc promises: CallStart, then AttemptStart/AttemptEnd pairs, then
// CallEnd, each attempt's context derived from the call's.
type recordingHooks struct {
	mu     sync.Mutex
	events []string
	errs   []string
}

type hookKey struct{ name string }

func (h *recordingHooks) add(s string) {
	h.mu.Lock()
	h.events = append(h.events, s)
	h.mu.Unlock()
}

func (h *recordingHooks) fail(format string, args ...any) {
	h.mu.Lock()
	h.errs = append(h.errs, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

func (h *recordingHooks) CallStart(ctx context.Context, call CallInfo) context.Context {
	h.add(fmt.Sprintf("call %s %s", call.Kind, call.Method))
	return context.WithValue(ctx, hookKey{"call"}, call)
}

func (h *recordingHooks) AttemptStart(ctx context.Context, a AttemptInfo) context.Context {
	if ctx.Value(hookKey{"call"}) != a.Call {
		h.fail("attempt %d: not under its call's context", a.Attempt)
	}
	h.add(fmt.Sprintf("attempt %d round %d retry %t", a.Attempt, a.Round, a.Retry))
	return context.WithValue(ctx, hookKey{"attempt"}, a.Attempt)
}

func (h *recordingHooks) AttemptEnd(ctx context.Context, a AttemptInfo, end AttemptEnd) {
	if ctx.Value(hookKey{"attempt"}) != a.Attempt {
		h.fail("attempt %d: ended with another context", a.Attempt)
	}
	if end.Latency <= 0 {
		h.fail("attempt %d: latency %v", a.Attempt, end.Latency)
	}
	if (end.Err == nil) != (end.Class == AttemptOK || end.Class == AttemptStale) {
		h.fail("attempt %d: class %s with error %v", a.Attempt, end.Class, end.Err)
	}
	h.add(fmt.Sprintf("end %d %s %s %d", a.Attempt, a.Endpoint, end.Class, end.StatusCode))
}

func (h *recordingHooks) CallEnd(ctx context.Context, call CallInfo, end CallEnd) {
	if ctx.Value(hookKey{"call"}) != call {
		h.fail("call end: not with its call's context")
	}
	if (end.Err == nil) != (end.Class == CallOK) {
		h.fail("call end: class %s with error %v", end.Class, end.Err)
	}
	h.add(fmt.Sprintf("done %s attempts %d status %d", end.Class, end.Attempts, end.StatusCode))
}

func (h *recordingHooks) take(t *testing.T) []string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	assert.Empty(t, h.errs)
	ev := h.events
	h.events, h.errs = nil, nil
	return ev
}

// deadMember returns the URL of a member that was killed: nothing listens
// there any more, so a connection is refused.
func deadMember(t *testing.T) string {
	t.Helper()
	s := newFake(t)
	s.Kill()
	return s.URL
}

// faulty starts a member whose every request gets f, and returns its URL.
func faulty(t *testing.T, f v2fake.Fault) string {
	t.Helper()
	s := newFake(t)
	s.On("*", f)
	return s.URL
}

// goodMember starts a member holding /a and returns it.
func goodMember(t *testing.T) *v2fake.Server {
	t.Helper()
	s := newFake(t)
	s.Set("/a", "x")
	return s
}

// firstOf picks the candidate whose URL is listed first in order.
func firstOf(order ...string) Selector {
	return SelectorFunc(func(_ RequestInfo, cands []Endpoint) int {
		for _, u := range order {
			for i, c := range cands {
				if c.URL == u {
					return i
				}
			}
		}
		return 0
	})
}

func TestHooksSequenceAndClasses(t *testing.T) {
	idx7 := http.Header{"X-Etcd-Index": {"7"}}
	good := goodMember(t).URL
	notFound := newFake(t).URL // holds no /x: its own 404, error 100
	noLeader := faulty(t, v2fake.NoLeader())
	unavailable := faulty(t, v2fake.Respond(503, `{"message":"not capable"}`))
	broken := faulty(t, v2fake.RespondHeader(500, idx7, `{"errorCode":209,"message":"Invalid field","index":7}`))
	dead := deadMember(t)

	newC := func(t *testing.T, h Hooks, eps ...string) Client {
		c, err := New(Config{Endpoints: eps, Selector: firstOf(eps...), Hooks: h})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx := context.Background()

	t.Run("failover", func(t *testing.T) {
		h := &recordingHooks{}
		c := newC(t, h, dead, noLeader, unavailable, broken, good)
		_, err := NewKeysAPI(c).Get(ctx, "/a", nil)
		require.NoError(t, err)
		assert.Equal(t, []string{
			"call read GET",
			"attempt 0 round 0 retry false", "end 0 " + dead + " connect 0",
			"attempt 1 round 0 retry true", "end 1 " + noLeader + " no_leader 0",
			"attempt 2 round 0 retry true", "end 2 " + unavailable + " no_leader 503",
			"attempt 3 round 0 retry true", "end 3 " + broken + " server_error 0",
			"attempt 4 round 0 retry true", "end 4 " + good + " ok 200",
			"done ok attempts 5 status 200",
		}, h.take(t))
	})

	t.Run("etcd error answer is ok", func(t *testing.T) {
		h := &recordingHooks{}
		c := newC(t, h, notFound)
		_, err := NewKeysAPI(c).Get(ctx, "/x", nil)
		require.True(t, IsKeyNotFound(err), "%v", err)
		assert.Equal(t, []string{
			"call read GET", "attempt 0 round 0 retry false", "end 0 " + notFound + " ok 404",
			"done ok attempts 1 status 404",
		}, h.take(t))
	})

	t.Run("write of unknown outcome", func(t *testing.T) {
		h := &recordingHooks{}
		c := newC(t, h, broken, good)
		_, err := NewKeysAPI(c).Create(ctx, "/a", "v")
		require.ErrorIs(t, err, ErrOutcomeUnknown)
		assert.Equal(t, []string{
			"call write PUT", "attempt 0 round 0 retry false", "end 0 " + broken + " server_error 0",
			"done outcome_unknown attempts 1 status 0",
		}, h.take(t))
	})

	t.Run("every endpoint failed", func(t *testing.T) {
		h := &recordingHooks{}
		c, err := New(Config{Endpoints: []string{dead}, Rounds: 1, Hooks: h})
		require.NoError(t, err)
		defer c.Close()
		_, err = NewKeysAPI(c).Get(ctx, "/a", nil)
		require.ErrorIs(t, err, ErrClusterUnavailable)
		assert.Equal(t, []string{
			"call read GET", "attempt 0 round 0 retry false", "end 0 " + dead + " connect 0",
			"done failed attempts 1 status 0",
		}, h.take(t))
	})

	t.Run("timeout", func(t *testing.T) {
		hung := newFake(t)
		hung.On("*", v2fake.Hang())
		h := &recordingHooks{}
		c, err := New(Config{Endpoints: []string{hung.URL, good}, Selector: firstOf(hung.URL, good), HeaderTimeoutPerRequest: 50 * time.Millisecond, Hooks: h})
		require.NoError(t, err)
		defer c.Close()
		_, err = NewKeysAPI(c).Get(ctx, "/a", nil)
		require.NoError(t, err)
		assert.Equal(t, []string{
			"call read GET",
			"attempt 0 round 0 retry false", "end 0 " + hung.URL + " timeout 0",
			"attempt 1 round 0 retry true", "end 1 " + good + " ok 200",
			"done ok attempts 2 status 200",
		}, h.take(t))
	})

	t.Run("redirect to another origin refused", func(t *testing.T) {
		elsewhere := newFake(t)
		elsewhere.On("*", v2fake.Redirect(http.StatusTemporaryRedirect, good))
		h := &recordingHooks{}
		c := newC(t, h, elsewhere.URL, good)
		_, err := NewKeysAPI(c).Get(ctx, "/a", nil)
		require.ErrorIs(t, err, ErrCrossOriginRedirect)
		assert.Equal(t, []string{
			"call read GET", "attempt 0 round 0 retry false", "end 0 " + elsewhere.URL + " refused 0",
			"done failed attempts 1 status 0",
		}, h.take(t))
	})

	t.Run("canceled before the first attempt", func(t *testing.T) {
		h := &recordingHooks{}
		c := newC(t, h, good)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := NewKeysAPI(c).Get(cctx, "/a", nil)
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, []string{"call read GET", "done canceled attempts 0 status 0"}, h.take(t))
	})

	t.Run("closed", func(t *testing.T) {
		h := &recordingHooks{}
		c := newC(t, h, good)
		require.NoError(t, c.Close())
		_, err := NewKeysAPI(c).Get(ctx, "/a", nil)
		require.ErrorIs(t, err, ErrClosed)
		assert.Equal(t, []string{"call read GET", "done closed attempts 0 status 0"}, h.take(t))
	})
}

// detachingHooks returns contexts that end on their own: the client must
// ignore them, so that a hook cannot change when a call ends.
type detachingHooks struct{ noopHooks }

func (detachingHooks) CallStart(ctx context.Context, _ CallInfo) context.Context {
	c, cancel := context.WithCancel(ctx)
	cancel()
	return c
}

func (detachingHooks) AttemptStart(context.Context, AttemptInfo) context.Context {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	return c
}

// freshHooks returns fresh contexts that end as the caller's does (the
// caller's is context.Background): the attempts are still reported.
type freshHooks struct{ *recordingHooks }

func (h freshHooks) CallStart(ctx context.Context, call CallInfo) context.Context {
	h.recordingHooks.CallStart(ctx, call)
	return context.Background()
}

func (h freshHooks) AttemptStart(ctx context.Context, a AttemptInfo) context.Context {
	h.add(fmt.Sprintf("attempt %d", a.Attempt))
	return context.Background()
}

func (h freshHooks) AttemptEnd(ctx context.Context, a AttemptInfo, end AttemptEnd) {
	h.add(fmt.Sprintf("end %d %s", a.Attempt, end.Class))
}

func (h freshHooks) CallEnd(ctx context.Context, call CallInfo, end CallEnd) {
	h.add(fmt.Sprintf("done %s attempts %d", end.Class, end.Attempts))
}

func TestHooksFreshContexts(t *testing.T) {
	srv := goodMember(t)
	h := freshHooks{&recordingHooks{}}
	c, err := New(Config{Endpoints: []string{srv.URL}, Hooks: h})
	require.NoError(t, err)
	defer c.Close()
	_, err = NewKeysAPI(c).Get(context.Background(), "/a", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"call read GET", "attempt 0", "end 0 ok", "done ok attempts 1"}, h.take(t))
}

func TestHooksCannotEndACall(t *testing.T) {
	srv := goodMember(t)
	c, err := New(Config{Endpoints: []string{srv.URL}, Hooks: detachingHooks{}})
	require.NoError(t, err)
	defer c.Close()
	_, err = NewKeysAPI(c).Get(context.Background(), "/a", nil)
	require.NoError(t, err)
}

func TestJoinHooks(t *testing.T) {
	srv := goodMember(t)
	a, b := &recordingHooks{}, &recordingHooks{}
	c, err := New(Config{Endpoints: []string{srv.URL}, Hooks: JoinHooks(a, nil, detachingHooks{}, b)})
	require.NoError(t, err)
	defer c.Close()
	_, err = NewKeysAPI(c).Get(context.Background(), "/a", nil)
	require.NoError(t, err)
	want := []string{"call read GET", "attempt 0 round 0 retry false", "end 0 " + srv.URL + " ok 200", "done ok attempts 1 status 200"}
	assert.Equal(t, want, a.take(t))
	assert.Equal(t, want, b.take(t))
}

type markKey struct{}

// markHooks puts a mark in the contexts it returns.
type markHooks struct{ noopHooks }

func (markHooks) CallStart(ctx context.Context, _ CallInfo) context.Context {
	return context.WithValue(ctx, markKey{}, "call")
}

func (markHooks) AttemptStart(ctx context.Context, _ AttemptInfo) context.Context {
	return context.WithValue(ctx, markKey{}, "attempt")
}

// seesMark records the mark of each context it is given.
type seesMark struct{ *recordingHooks }

func (h seesMark) CallStart(ctx context.Context, _ CallInfo) context.Context {
	h.add(fmt.Sprint("call start ", ctx.Value(markKey{})))
	return ctx
}

func (h seesMark) AttemptStart(ctx context.Context, _ AttemptInfo) context.Context {
	h.add(fmt.Sprint("attempt start ", ctx.Value(markKey{})))
	return ctx
}

func (h seesMark) AttemptEnd(ctx context.Context, _ AttemptInfo, _ AttemptEnd) {
	h.add(fmt.Sprint("attempt end ", ctx.Value(markKey{})))
}

func (h seesMark) CallEnd(ctx context.Context, _ CallInfo, _ CallEnd) {
	h.add(fmt.Sprint("call end ", ctx.Value(markKey{})))
}

func TestJoinHooksPassesContexts(t *testing.T) {
	srv := goodMember(t)
	before, after := seesMark{&recordingHooks{}}, seesMark{&recordingHooks{}}
	c, err := New(Config{Endpoints: []string{srv.URL}, Hooks: JoinHooks(before, markHooks{}, after)})
	require.NoError(t, err)
	defer c.Close()
	_, err = NewKeysAPI(c).Get(context.Background(), "/a", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"call start <nil>", "attempt start call", "attempt end attempt", "call end call"}, before.take(t))
	assert.Equal(t, []string{"call start call", "attempt start attempt", "attempt end attempt", "call end call"}, after.take(t))
}

func TestHookClassNames(t *testing.T) {
	seen := map[string]bool{}
	for c := AttemptOK; c <= AttemptBroken; c++ {
		s := c.String()
		assert.False(t, seen[s] || s == "unknown" || strings.ContainsAny(s, " -"), s)
		seen[s] = true
	}
	for c := CallOK; c <= CallFailed; c++ {
		s := c.String()
		assert.False(t, seen["call "+s] || s == "unknown" || strings.ContainsAny(s, " -"), s)
		seen["call "+s] = true
	}
	assert.Equal(t, "unknown", AttemptClass(255).String())
	assert.Equal(t, "unknown", CallClass(255).String())
}

// classHooks counts call classes and retry-budget refusals.
type classHooks struct {
	noopHooks
	mu    sync.Mutex
	calls map[CallClass]int
}

func (h *classHooks) CallEnd(_ context.Context, _ CallInfo, end CallEnd) {
	h.mu.Lock()
	h.calls[end.Class]++
	h.mu.Unlock()
}

// TestHooksRetryBudgetClass spends the retry budget on members that answer
// 503 (which a real member does only during an election) and checks that
// the calls the budget stops are told apart from those that tried every
// member.
func TestHooksRetryBudgetClass(t *testing.T) {
	unavailable := func() string {
		return faulty(t, v2fake.Func(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
	}
	h := &classHooks{calls: map[CallClass]int{}}
	c, err := New(Config{
		Endpoints:   []string{unavailable(), unavailable()},
		Rounds:      1,
		RetryBudget: RetryBudget{Ratio: 1e-9, PerSecond: 1e-9},
		Ejection:    EjectionConfig{After: -1}, // keep offering both
		Hooks:       h,
	})
	require.NoError(t, err)
	defer c.Close()
	kapi := NewKeysAPI(c)
	calls := 0
	for ; calls < 500 && c.(StatsReporter).Stats().RetriesDenied == 0; calls++ {
		_, err := kapi.Get(context.Background(), "/a", nil)
		require.ErrorIs(t, err, ErrClusterUnavailable)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	denied := c.(StatsReporter).Stats().RetriesDenied
	assert.Equal(t, uint64(1), denied, "after %d calls", calls)
	assert.Equal(t, map[CallClass]int{CallFailed: calls - 1, CallBudgetExhausted: 1}, h.calls)
}

// TestHooksStaleAttempt: with MonotonicReads, a plain read answered below
// what the client already returned is an attempt of class stale, and the
// call goes on as a quorum read elsewhere.
func TestHooksStaleAttempt(t *testing.T) {
	// at starts a member holding /a whose index is then index.
	at := func(index uint64) string {
		s := v2fake.Start(t, v2fake.Options{Index: index - 1})
		s.Set("/a", "x")
		require.Equal(t, index, s.Index())
		return s.URL
	}
	ahead, behind := at(10), at(5)
	plain, other := firstOf(behind, ahead), firstOf(ahead, behind)
	h := &recordingHooks{}
	c, err := New(Config{
		Endpoints:      []string{ahead, behind},
		MonotonicReads: true,
		Selector: SelectorFunc(func(info RequestInfo, cands []Endpoint) int {
			if info.Kind == KindRead {
				return plain.Select(info, cands)
			}
			return other.Select(info, cands)
		}),
		Hooks: h,
	})
	require.NoError(t, err)
	defer c.Close()
	kapi := NewKeysAPI(c)
	_, err = kapi.Get(context.Background(), "/a", &GetOptions{Quorum: true}) // the floor is 10
	require.NoError(t, err)
	assert.Equal(t, []string{
		"call quorum-read GET", "attempt 0 round 0 retry false", "end 0 " + ahead + " ok 200", "done ok attempts 1 status 200",
	}, h.take(t))
	_, err = kapi.Get(context.Background(), "/a", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"call read GET",
		"attempt 0 round 0 retry false", "end 0 " + behind + " stale 200",
		"attempt 1 round 0 retry true", "end 1 " + ahead + " ok 200",
		"done ok attempts 2 status 200",
	}, h.take(t))
}
