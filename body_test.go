package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/etcdv2/client/internal/v2fake"
	"github.com/stretchr/testify/require"
)

// stallingMember answers with headers and the start of a body, then sends
// nothing more until the test ends.
func stallingMember(t *testing.T) *fakeMember {
	m := newFakeMember(t, "c1")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	m.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/version" {
			io.WriteString(w, `{"etcdserver":"3.5.35","etcdcluster":"3.5.0"}`)
			return
		}
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"action":"get","node":{"key":"/k","va`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	return m
}

// TestStalledBodyFailsOver: a member that stalls after its headers is
// given up after the body's idle timeout, and the read goes to another
// member; a write that cannot be resent ends with an unknown outcome.
func TestStalledBodyFailsOver(t *testing.T) {
	stalled := stallingMember(t)
	good := newFakeMember(t, "c1")
	good.Set("/k", "from the good member")
	first := SelectorFunc(func(_ RequestInfo, cands []Endpoint) int {
		for i, e := range cands {
			if e.URL == stalled.URL {
				return i
			}
		}
		return 0
	})
	c := newTestClient(t, Config{Endpoints: []string{stalled.URL, good.URL}, Selector: first})
	start := time.Now()
	body, err := get(c, context.Background(), "/v2/keys/k")
	require.NoError(t, err)
	require.Contains(t, body, `"key":"/k","value":"from the good member"`, "answered by the good member")
	d := time.Since(start)
	require.GreaterOrEqual(t, d, DefaultHeaderTimeoutPerRequest)
	require.Less(t, d, DefaultHeaderTimeoutPerRequest+3*time.Second)
	require.EqualValues(t, 1, stateOf(c, stalled.URL).Failures)

	c2 := newTestClient(t, Config{Endpoints: []string{stalled.URL, good.URL}, Selector: first, HeaderTimeoutPerRequest: 300 * time.Millisecond})
	_, err = write(context.Background(), c2, false)
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.ErrorIs(t, err, ErrResponseStalled)
	require.Zero(t, good.keyHits()-1, "the write was not resent")
}

// tricklingMember answers a keys read with headers and the start of a
// body, then a piece of the value every gap, pieces times; then, with end
// set, the rest of the answer, else nothing more until the client gives
// the request up. gaps receives, for each request given up, how long
// after its last piece that was (the first 16 requests).
func tricklingMember(t *testing.T, gap time.Duration, pieces int, end bool) (m *fakeMember, gaps <-chan time.Duration) {
	m = newFakeMember(t, "c1")
	givenUp := make(chan time.Duration, 16)
	m.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/version" {
			io.WriteString(w, `{"etcdserver":"3.5.35","etcdcluster":"3.5.0"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"action":"get","node":{"key":"/k","value":"`)
		w.(http.Flusher).Flush()
		tick := time.NewTicker(gap)
		defer tick.Stop()
		for i := 0; i < pieces; i++ {
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, "piece")
			w.(http.Flusher).Flush()
		}
		if end {
			io.WriteString(w, `","modifiedIndex":7,"createdIndex":7}}`+"\n")
			return
		}
		last := time.Now()
		<-r.Context().Done()
		select {
		case givenUp <- time.Since(last):
		default:
		}
	})
	return m, givenUp
}

// TestSlowBodyIsNotStalled: a body whose data keeps coming, more slowly
// than the idle timeout in all but no gap, is read to its end, however
// long it takes in all; one that then stops is given up no sooner than the
// idle timeout after its last data. Both for a plain read (whose timer
// runs its liveness checks until the headers come) and with a per-attempt
// timeout, decoded as a keys answer and read as bytes.
func TestSlowBodyIsNotStalled(t *testing.T) {
	const gap, pieces = 600 * time.Millisecond, 6 // 3.6 s: more than the idle timeout
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"plain", Config{}}, {"timed", Config{HeaderTimeoutPerRequest: time.Second}}} {
		for _, decoded := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/decoded=%v", tc.name, decoded), func(t *testing.T) {
				t.Parallel()
				m, _ := tricklingMember(t, gap, pieces, true)
				cfg := tc.cfg
				cfg.Endpoints = []string{m.URL}
				c := newTestClient(t, cfg)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				start := time.Now()
				want := strings.Repeat("piece", pieces)
				if decoded {
					resp, err := NewKeysAPI(c).Get(ctx, "/k", nil)
					require.NoError(t, err)
					require.Equal(t, want, resp.Node.Value)
				} else {
					body, err := get(c, ctx, "/v2/keys/k")
					require.NoError(t, err)
					require.Contains(t, body, want)
				}
				require.Greater(t, time.Since(start), c.bodyIdleTimeout(), "the body took longer than the idle timeout")
				require.EqualValues(t, 1, m.keyHits())
			})
			t.Run(fmt.Sprintf("%s/decoded=%v/stops", tc.name, decoded), func(t *testing.T) {
				t.Parallel()
				m, gaps := tricklingMember(t, gap, 2, false)
				cfg := tc.cfg
				cfg.Endpoints = []string{m.URL}
				c := newTestClient(t, cfg)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				var err error
				if decoded {
					_, err = NewKeysAPI(c).Get(ctx, "/k", nil)
				} else {
					_, err = get(c, ctx, "/v2/keys/k")
				}
				require.ErrorIs(t, err, ErrResponseStalled)
				idle := c.bodyIdleTimeout()
				var first time.Duration
				select {
				case first = <-gaps:
				case <-time.After(10 * time.Second):
					t.Fatal("the member did not see its first request end")
				}
				require.GreaterOrEqual(t, first, idle, "given up no sooner than the idle timeout after the last data")
				require.Less(t, first, idle+3*time.Second)
			})
		}
	}
}

// TestResponseTooLargeEndsTheCall: an answer over the cap would be as large
// at every member: the call ends with ErrResponseTooLarge at the first.
func TestResponseTooLargeEndsTheCall(t *testing.T) {
	ms := make([]*fakeMember, 3)
	for i := range ms {
		ms[i] = newFakeMember(t, "c1")
		ms[i].setHandler(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strings.Repeat("x", 2048))
		})
	}
	c := newTestClient(t, Config{Endpoints: fakeURLs(ms), MaxResponseBytes: 1024})
	_, err := get(c, context.Background(), "/v2/keys/k")
	require.ErrorIs(t, err, ErrResponseTooLarge)
	var ce *ClusterError
	require.True(t, errors.As(err, &ce) && len(ce.Errors) == 1, "%v", err)
	var hits int64
	for _, m := range ms {
		hits += m.hits()
	}
	require.EqualValues(t, 1, hits)
	requireHealthy(t, c)
}

// listingMember starts a member holding the keys of listing (a recursive
// get's answer; TTLs are left out) and returns it, its own answer to a
// recursive get of dir, and how many keys requests it received since.
func listingMember(t *testing.T, listing []byte, dir string) (*v2fake.Server, []byte, func() int) {
	t.Helper()
	var r Response
	require.NoError(t, json.Unmarshal(listing, &r))
	m := newFake(t)
	var fill func(n *Node)
	fill = func(n *Node) {
		if !n.Dir {
			m.Set(n.Key, n.Value)
		}
		for _, c := range n.Nodes {
			fill(c)
		}
	}
	fill(r.Node)
	resp, err := http.Get(m.URL + "/v2/keys" + dir + "?recursive=true")
	require.NoError(t, err)
	defer resp.Body.Close()
	whole, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	before := m.Count("/v2/keys*")
	return m, whole, func() int { return m.Count("/v2/keys*") - before }
}

func countKeys(n *Node) int {
	k := 0
	for _, c := range n.Nodes {
		if c.Dir {
			k += countKeys(c)
		} else {
			k++
		}
	}
	return k
}

// TestKeysAnswerStalledMidBodyFailsOver: a member that stops sending a
// large answer halfway is given up after the body's idle timeout while
// the answer is being decoded, and the read goes to another member; a
// write whose answer stalls ends with an unknown outcome, not resent.
func TestKeysAnswerStalledMidBodyFailsOver(t *testing.T) {
	stalled, body, _ := listingMember(t, bigListing(t, 20_000), "/big")
	stalled.On("GET /v2/keys/big", v2fake.StallMidSizedBody(len(body)/2))
	good, _, goodHits := listingMember(t, bigListing(t, 20_000), "/big")
	c := newTestClient(t, Config{Endpoints: []string{stalled.URL, good.URL}, Selector: firstOf(stalled.URL)})
	start := time.Now()
	resp, err := NewKeysAPI(c).Get(context.Background(), "/big", &GetOptions{Recursive: true})
	require.NoError(t, err)
	d := time.Since(start)
	require.Equal(t, good.URL, resp.Endpoint)
	require.Equal(t, 20_000, countKeys(resp.Node))
	require.GreaterOrEqual(t, d, DefaultHeaderTimeoutPerRequest)
	require.Less(t, d, DefaultHeaderTimeoutPerRequest+3*time.Second)
	require.EqualValues(t, 1, stateOf(c, stalled.URL).Failures)

	stalledSet, goodSet := newFake(t), newFake(t)
	stalledSet.On("PUT /v2/keys/k", v2fake.StallMidSizedBody(30))
	c2 := newTestClient(t, Config{Endpoints: []string{stalledSet.URL, goodSet.URL}, Selector: firstOf(stalledSet.URL), HeaderTimeoutPerRequest: 300 * time.Millisecond})
	_, err = NewKeysAPI(c2).Set(context.Background(), "/k", "v", &SetOptions{PrevExist: PrevNoExist})
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.ErrorIs(t, err, ErrResponseStalled)
	require.Zero(t, goodSet.Count("/v2/keys*"), "the write was not resent")
	require.EqualValues(t, 1, goodHits())
}

// TestKeysAnswerCutMidBodyFailsOver: a member whose connection breaks
// halfway through a large answer fails the attempt at once, and the read
// goes to another member.
func TestKeysAnswerCutMidBodyFailsOver(t *testing.T) {
	listing := bigListing(t, 20_000)
	cut, body, _ := listingMember(t, listing, "/big")
	good, _, _ := listingMember(t, listing, "/big")
	for _, at := range []int{10, len(body) / 2, len(body) - 1} {
		rule := cut.On("GET /v2/keys/big", v2fake.CloseMidSizedBody(at))
		c := newTestClient(t, Config{Endpoints: []string{cut.URL, good.URL}, Selector: firstOf(cut.URL)})
		start := time.Now()
		resp, err := NewKeysAPI(c).Get(context.Background(), "/big", &GetOptions{Recursive: true})
		require.NoError(t, err, "cut at %d", at)
		require.Equal(t, good.URL, resp.Endpoint)
		require.Equal(t, 20_000, countKeys(resp.Node))
		require.Less(t, time.Since(start), DefaultHeaderTimeoutPerRequest, "no wait for the idle timeout")
		require.EqualValues(t, 1, stateOf(c, cut.URL).Failures)
		rule.Remove()
	}
}

// TestKeysAnswerTooLargeEndsTheCall: a listing over MaxResponseBytes ends
// the call at the first member, while it is being decoded.
func TestKeysAnswerTooLargeEndsTheCall(t *testing.T) {
	listing := bigListing(t, 20_000)
	var urls []string
	var hits []func() int
	var body []byte
	for range 3 {
		m, whole, h := listingMember(t, listing, "/big")
		urls, hits, body = append(urls, m.URL), append(hits, h), whole
	}
	c := newTestClient(t, Config{Endpoints: urls, MaxResponseBytes: int64(len(body)) - 1})
	_, err := NewKeysAPI(c).Get(context.Background(), "/big", &GetOptions{Recursive: true})
	require.ErrorIs(t, err, ErrResponseTooLarge)
	var total int
	for _, h := range hits {
		total += h()
	}
	require.EqualValues(t, 1, total)
	requireHealthy(t, c)

	c2 := newTestClient(t, Config{Endpoints: urls[:1], MaxResponseBytes: int64(len(body))})
	resp, err := NewKeysAPI(c2).Get(context.Background(), "/big", &GetOptions{Recursive: true})
	require.NoError(t, err)
	require.Equal(t, 20_000, countKeys(resp.Node))
}

// TestKeysAnswerInvalidNotResent: an answer whose body arrives whole but
// is not valid JSON is the member's answer: the call fails with
// ErrInvalidJSON (wrapping io.ErrUnexpectedEOF when the JSON is cut) and
// is not sent elsewhere.
func TestKeysAnswerInvalidNotResent(t *testing.T) {
	for _, tc := range []struct {
		body string
		eof  bool
	}{
		{`{"action":"get","node":{"key":"/a"`, true},
		{`{"action":1}`, false},
		{`<html>bad gateway</html>`, false},
		{`{"action":"get","node":{"key":"/a"}} trailing`, false},
	} {
		bad, good := newFake(t), newFake(t)
		bad.Set("/a", "x")
		good.Set("/a", "x")
		bad.On("GET /v2/keys/a", v2fake.Body(tc.body))
		c := newTestClient(t, Config{Endpoints: []string{bad.URL, good.URL}, Selector: firstOf(bad.URL)})
		resp, err := NewKeysAPI(c).Get(context.Background(), "/a", nil)
		if tc.body == `{"action":"get","node":{"key":"/a"}} trailing` {
			// Like a json.Decoder, what follows the value is not read as
			// part of it.
			require.NoError(t, err)
			require.Equal(t, "/a", resp.Node.Key)
			require.Equal(t, bad.URL, resp.Endpoint)
			continue
		}
		require.ErrorIs(t, err, ErrInvalidJSON, tc.body)
		require.Equal(t, tc.eof, errors.Is(err, io.ErrUnexpectedEOF), tc.body)
		require.Zero(t, good.Count("/v2/keys*"), tc.body)
		requireHealthy(t, c)
	}
}

// TestKeysListingMemory: a listing larger than the decoder's window
// costs its answer and little more (no copy of the body): at most 1.5
// times the body's size allocated per Get, once the client is warm.
func TestKeysListingMemory(t *testing.T) {
	// The member answers with the listing made beforehand, so that what
	// is allocated is the client's alone.
	_, body := benchBodies(t)
	srv := newFake(t)
	srv.On("GET /v2/keys/registry", v2fake.Func(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Etcd-Index", "7")
		w.Write(body)
	}))
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}})
	k := NewKeysAPI(c)
	get := func() {
		resp, err := k.Get(context.Background(), "/registry", &GetOptions{Recursive: true})
		require.NoError(t, err)
		require.Len(t, resp.Node.Nodes, 100)
	}
	get()
	const rounds = 5
	got := allocated(func() {
		for range rounds {
			get()
		}
	}) / rounds
	t.Logf("listing of %d bytes: %d bytes allocated per Get (%.2fx)", len(body), got, float64(got)/float64(len(body)))
	require.LessOrEqual(t, got, uint64(len(body))*3/2)
}

// TestAttemptStateSize: the state every attempt allocates stays within the
// allocator's 512-byte size class (above it, the next is 576 bytes).
func TestAttemptStateSize(t *testing.T) {
	if n := unsafe.Sizeof(attemptState{}); n > 512 {
		t.Fatalf("attemptState is %d bytes, more than 512", n)
	}
}
