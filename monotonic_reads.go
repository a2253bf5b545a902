package client

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// ErrStaleRead is matched by the per-endpoint error recorded when the
// monotonic-read guard (Config.MonotonicReads) discarded a plain read.
var ErrStaleRead = errors.New("client: read older than data already returned")

// StaleReadError is recorded for a plain read answered with an
// X-Etcd-Index below the client's floor. It matches ErrStaleRead.
type StaleReadError struct {
	// Index is the X-Etcd-Index of the answer; Floor the client's floor.
	Index, Floor uint64
}

// Error describes the stale answer.
func (e *StaleReadError) Error() string {
	return "client: stale read: X-Etcd-Index " + strconv.FormatUint(e.Index, 10) +
		" is below " + strconv.FormatUint(e.Floor, 10) + ", already returned"
}

// Is reports whether target is ErrStaleRead.
func (e *StaleReadError) Is(target error) bool { return target == ErrStaleRead }

// WithoutMonotonicReads returns a context under which the reads of a
// client with Config.MonotonicReads are returned as the member answered
// them, even when older than data the client already returned: for a read
// whose purpose is to look at one member's state, such as a check that the
// member a watch is on still follows the cluster. It changes nothing for a
// client without MonotonicReads.
func WithoutMonotonicReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, asAnsweredKey{}, true)
}

// asAnsweredKey marks a context from WithoutMonotonicReads.
type asAnsweredKey struct{}

// headerIndex parses the X-Etcd-Index of an answer.
func headerIndex(h http.Header) (uint64, bool) {
	v := h["X-Etcd-Index"]
	if len(v) == 0 {
		return 0, false
	}
	idx, err := strconv.ParseUint(v[0], 10, 64)
	return idx, err == nil
}

// monotonicFloor is the state of the monotonic-read guard
// (Config.MonotonicReads).
type monotonicFloor struct {
	on bool
	// maxSeen is the highest X-Etcd-Index any answer carried; floor is the
	// highest one returned to a caller.
	maxSeen, floor atomic.Uint64
}

// noteSeen raises the highest index seen to idx and returns the value it
// had before.
func (c *httpClusterClient) noteSeen(idx uint64) uint64 {
	return raise(&c.mono.maxSeen, idx)
}

// raise raises v to x if it is lower and returns the value v had before.
func raise(v *atomic.Uint64, x uint64) uint64 {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return old
		}
	}
}

// isStale reports whether resp answers a plain read below the monotonic
// floor.
func (c *httpClusterClient) isStale(r *request, resp *http.Response) (bool, uint64) {
	if !c.mono.on || r.kind != KindRead || !strings.HasPrefix(r.path, "/v2/keys") {
		return false, 0
	}
	idx, ok := headerIndex(resp.Header)
	return ok && idx < c.mono.floor.Load(), idx
}

// noteReturned raises the monotonic floor to the index of an answer that
// is returned to the caller (watches excluded: their index is the one at
// which the watch started).
func (c *httpClusterClient) noteReturned(r *request, resp *http.Response) {
	if !c.mono.on || r.kind == KindWatch || r.kind == KindCluster {
		return
	}
	idx, ok := headerIndex(resp.Header)
	if ok {
		raise(&c.mono.floor, idx)
	}
}

// quorumUpgrade returns a copy of the plain read r that asks for a
// quorum read.
func quorumUpgrade(r *request) *request {
	q := *r
	q.kind = KindQuorumRead
	q.uri = "" // made again from the new query
	switch {
	case q.query == "":
		q.query = "quorum=true"
	case strings.HasPrefix(q.query, "quorum=true"):
	default:
		q.query += "&quorum=true"
	}
	return &q
}
