package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
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
