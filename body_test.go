package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// listingMember serves body as the answer of every keys API request,
// all of it (cut < 0), or its first cut bytes and then, if stall, nothing
// more until the request ends, else a closed connection (the headers
// announce the whole body). It counts the keys requests.
func listingMember(t *testing.T, body []byte, cut int, stall bool) (*httptest.Server, *atomic.Int64) {
	hits := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/version" {
			io.WriteString(w, `{"etcdserver":"3.5.35","etcdcluster":"3.5.0"}`)
			return
		}
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Etcd-Index", "7")
		if cut < 0 {
			w.Write(body)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:cut])
		w.(http.Flusher).Flush()
		if stall {
			<-r.Context().Done()
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv, hits
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
	body := bigListing(t, 20_000)
	stalled, _ := listingMember(t, body, len(body)/2, true)
	good, goodHits := listingMember(t, body, -1, false)
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

	set := []byte(`{"action":"set","node":{"key":"/k","value":"v","modifiedIndex":9,"createdIndex":9}}`)
	stalledSet, _ := listingMember(t, set, 30, true)
	goodSet, setHits := listingMember(t, set, -1, false)
	c2 := newTestClient(t, Config{Endpoints: []string{stalledSet.URL, goodSet.URL}, Selector: firstOf(stalledSet.URL), HeaderTimeoutPerRequest: 300 * time.Millisecond})
	_, err = NewKeysAPI(c2).Set(context.Background(), "/k", "v", &SetOptions{PrevExist: PrevNoExist})
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.ErrorIs(t, err, ErrResponseStalled)
	require.Zero(t, setHits.Load(), "the write was not resent")
	require.EqualValues(t, 1, goodHits.Load())
}

// TestKeysAnswerCutMidBodyFailsOver: a member whose connection breaks
// halfway through a large answer fails the attempt at once, and the read
// goes to another member.
func TestKeysAnswerCutMidBodyFailsOver(t *testing.T) {
	body := bigListing(t, 20_000)
	for _, at := range []int{10, len(body) / 2, len(body) - 1} {
		cut, _ := listingMember(t, body, at, false)
		good, _ := listingMember(t, body, -1, false)
		c := newTestClient(t, Config{Endpoints: []string{cut.URL, good.URL}, Selector: firstOf(cut.URL)})
		start := time.Now()
		resp, err := NewKeysAPI(c).Get(context.Background(), "/big", &GetOptions{Recursive: true})
		require.NoError(t, err, "cut at %d", at)
		require.Equal(t, good.URL, resp.Endpoint)
		require.Equal(t, 20_000, countKeys(resp.Node))
		require.Less(t, time.Since(start), DefaultHeaderTimeoutPerRequest, "no wait for the idle timeout")
		require.EqualValues(t, 1, stateOf(c, cut.URL).Failures)
	}
}

// TestKeysAnswerTooLargeEndsTheCall: a listing over MaxResponseBytes ends
// the call at the first member, while it is being decoded.
func TestKeysAnswerTooLargeEndsTheCall(t *testing.T) {
	body := bigListing(t, 20_000)
	var urls []string
	var hits []*atomic.Int64
	for range 3 {
		m, h := listingMember(t, body, -1, false)
		urls, hits = append(urls, m.URL), append(hits, h)
	}
	c := newTestClient(t, Config{Endpoints: urls, MaxResponseBytes: int64(len(body)) - 1})
	_, err := NewKeysAPI(c).Get(context.Background(), "/big", &GetOptions{Recursive: true})
	require.ErrorIs(t, err, ErrResponseTooLarge)
	var total int64
	for _, h := range hits {
		total += h.Load()
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
		bad, _ := listingMember(t, []byte(tc.body), -1, false)
		good, goodHits := listingMember(t, []byte(etcdBodies[0]), -1, false)
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
		require.Zero(t, goodHits.Load(), tc.body)
		requireHealthy(t, c)
	}
}

// TestKeysListingMemory: a listing larger than the decoder's window
// costs its answer and little more (no copy of the body): at most 1.5
// times the body's size allocated per Get, once the client is warm.
func TestKeysListingMemory(t *testing.T) {
	_, body := benchBodies(t)
	srv, _ := listingMember(t, body, -1, false)
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
