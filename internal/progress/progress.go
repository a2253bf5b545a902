// Package progress tells when the member a watch is on stopped following
// the cluster: cut off from its peers, it keeps answering plain reads and
// keeps the watch open, but gets no new events, and nothing in the watch
// tells.
package progress

import (
	"context"
	"errors"
	"time"

	"github.com/etcdv2/client"
)

// ErrStale is returned by Watch when the member plain reads reach did not
// reach the cluster's index of the round before.
var ErrStale = errors.New("the member behind the watch stopped following the cluster")

// Watch runs until ctx ends (returning ctx.Err()) or the member is found
// stuck (returning ErrStale). Every interval it reads the index of the
// member a plain read reaches (with the client's default Sticky selection,
// the member a watch of the same client is on) and then the cluster's
// index with a quorum read, each by reading probeKey, a key that does not
// exist (a hidden name, so that the read is cheap whatever the prefix
// holds). The member is stuck when its index is below the quorum index of
// the round before.
func Watch(ctx context.Context, kapi client.KeysAPI, probeKey string, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var prevQuorum uint64
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		// The plain read first: it is compared with the quorum index of
		// the round before, and a quorum read on a stuck member is slow.
		l, err := storeIndex(ctx, kapi, probeKey, false, interval)
		if err == nil && prevQuorum > 0 && l < prevQuorum {
			return ErrStale
		}
		if q, err := storeIndex(ctx, kapi, probeKey, true, interval); err == nil {
			prevQuorum = q
		}
	}
}

// storeIndex reads the store index of the member that answers a read of
// the missing key.
func storeIndex(ctx context.Context, kapi client.KeysAPI, key string, quorum bool, interval time.Duration) (uint64, error) {
	// Long enough for a quorum read to move on from a member that cannot
	// reach its leader.
	rctx, cancel := context.WithTimeout(ctx, max(interval, 5*time.Second))
	defer cancel()
	if !quorum {
		// The member's own answer, even with Config.MonotonicReads,
		// which would send a read of a stuck member again as a quorum
		// read elsewhere.
		rctx = client.WithoutMonotonicReads(rctx)
	}
	resp, err := kapi.Get(rctx, key, &client.GetOptions{Quorum: quorum})
	if err == nil {
		return resp.Index, nil
	}
	var e client.Error
	if errors.As(err, &e) && e.Code == client.ErrorCodeKeyNotFound && e.Index > 0 {
		return e.Index, nil
	}
	return 0, err
}
