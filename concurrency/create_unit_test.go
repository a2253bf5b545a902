package concurrency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
)

// lateFirstCopy makes the first create (prevExist=false) of f fail with an
// unknown outcome without being applied, and applies that first copy just
// before the second create arrives: the read-back in between finds nothing,
// and the resend is refused with 105. It returns the number of creates.
func lateFirstCopy(f *memKeys) func() int {
	creates := 0
	var firstKey, firstValue string
	f.onSet = func(_ context.Context, key, value string, o *client.SetOptions) error {
		if o.PrevExist != client.PrevNoExist {
			return nil
		}
		creates++
		switch creates {
		case 1:
			firstKey, firstValue = key, value
			return &client.OutcomeUnknownError{Endpoint: "http://127.0.0.1:2379", Err: errors.New("test: connection reset after the request was written")}
		case 2:
			f.store(firstKey, firstValue) // the first copy lands now
		}
		return nil
	}
	return func() int { return creates }
}

// TestCreateResentAfterFirstCopyLanded: a create whose outcome was unknown
// and whose read-back found nothing is sent again; when the first copy
// landed meanwhile the resend is refused with 105, yet the node is ours.
// Barrier.Hold and NewSession must succeed (a Hold reporting 105 would leave
// a barrier that its holder never releases).
func TestCreateResentAfterFirstCopyLanded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("Barrier.Hold", func(t *testing.T) {
		f := newMemKeys()
		creates := lateFirstCopy(f)
		b := NewBarrier(f, "/barrier")
		require.NoError(t, b.Hold(ctx))
		require.Equal(t, 2, creates())
		require.NoError(t, b.Release(ctx))
		require.Empty(t, f.keys("/"))
	})

	t.Run("NewSession", func(t *testing.T) {
		f := newMemKeys()
		creates := lateFirstCopy(f)
		s, err := NewSession(f, WithTTL(10*time.Second), WithContext(ctx))
		require.NoError(t, err)
		require.Equal(t, 2, creates())
		require.Equal(t, []string{s.key}, f.keys("/"))
		require.NoError(t, s.Close())
		require.Empty(t, f.keys("/"))
	})

	// A node that is not ours stays a refusal.
	t.Run("Barrier.Hold held by another", func(t *testing.T) {
		f := newMemKeys()
		creates := 0
		f.onSet = func(_ context.Context, key, _ string, o *client.SetOptions) error {
			if o.PrevExist != client.PrevNoExist {
				return nil
			}
			if creates++; creates == 2 {
				f.store(key, envelope{Kind: kindBarrier, Owner: newID()}.encode()) // another holder's
			}
			if creates == 1 {
				return &client.OutcomeUnknownError{Endpoint: "http://127.0.0.1:2379", Err: errors.New("test: reset")}
			}
			return nil
		}
		err := NewBarrier(f, "/barrier").Hold(ctx)
		require.ErrorIs(t, err, client.Error{Code: client.ErrorCodeNodeExist})
		require.Equal(t, 2, creates)
	})
}
