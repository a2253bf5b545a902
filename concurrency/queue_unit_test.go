package concurrency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
)

// TestEnqueueUnknownAfterFailedReadBack: an Enqueue whose create was applied
// but answered with an unknown outcome, whose item a consumer took, and
// whose first read-back got no answer, still reports the unknown outcome
// (the second read-back finds nothing) and does not send the item again.
func TestEnqueueUnknownAfterFailedReadBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := newMemKeys()
	creates := 0
	f.afterCreate = func(ctx context.Context, n *client.Node) error {
		creates++
		if creates > 1 {
			return nil
		}
		_, err := f.Delete(ctx, n.Key, nil) // a consumer took the item
		require.NoError(t, err)
		return &client.OutcomeUnknownError{Endpoint: "http://127.0.0.1:2379", Err: errors.New("test: connection reset after the request was written")}
	}
	gets := 0
	f.onGet = func(context.Context, string) error {
		if gets++; gets == 1 {
			return errNoMember
		}
		return nil
	}
	err := NewQueue(f, "/q").Enqueue(ctx, "job")
	require.ErrorIs(t, err, client.ErrOutcomeUnknown)
	require.Equal(t, 1, creates, "the item was sent again")
	require.Equal(t, 2, gets)
}
