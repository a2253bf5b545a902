package client

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWrittenWriteGetsTheWholeDeadline: a write that cannot be resent has,
// once written, nowhere to fail over to, so a slow success within the
// caller's deadline is a success, not an unknown outcome, whether other
// endpoints remain or not.
func TestWrittenWriteGetsTheWholeDeadline(t *testing.T) {
	for _, n := range []int{1, 2} {
		ms := startMembers(t, n)
		for _, m := range ms {
			m.delay.Store(int64(700 * time.Millisecond))
		}
		c := newTestClient(t, Config{Endpoints: urlsOf(ms)})
		ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
		_, err := write(ctx, c, false)
		cancel()
		require.NoError(t, err, "%d endpoints: a 700 ms commit within a 1.2 s deadline", n)
		for _, m := range ms {
			require.Zero(t, stateOf(c, m.url).Failures)
		}
	}
}

// TestCloseDuringWriteIsUnknownOutcome: Close cuts off a write that was
// sent: its outcome is unknown, and the error says both.
func TestCloseDuringWriteIsUnknownOutcome(t *testing.T) {
	ms := startMembers(t, 1)
	ms[0].delay.Store(int64(10 * time.Second))
	c := newTestClient(t, Config{Endpoints: urlsOf(ms)})
	done := make(chan error, 1)
	go func() {
		_, err := write(context.Background(), c, false)
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for ms[0].keys() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // until the write has reached the member
	}
	require.NoError(t, c.Close())
	err := <-done
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.ErrorIs(t, err, ErrClosed)

	// A read cut off by Close is just closed.
	ms2 := startMembers(t, 1)
	ms2[0].delay.Store(int64(10 * time.Second))
	c2 := newTestClient(t, Config{Endpoints: urlsOf(ms2)})
	go func() {
		_, err := c2.do(context.Background(), &request{method: http.MethodGet, path: "/v2/keys/k", kind: KindRead, replayable: true})
		done <- err
	}()
	for ms2[0].keys() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, c2.Close())
	err = <-done
	require.True(t, errors.Is(err, ErrClosed) && !errors.Is(err, ErrOutcomeUnknown), "read: %v", err)
}
