package concurrency

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
)

// errNoMember is what the fake answers while "no member answers".
var errNoMember = errors.New("test: no member answered")

// TestDoneFollowsEarlierDeadline: a Lock whose create is answered late
// attaches its node with the send time of that create, older than the
// session's last successful renewal, so the session's deadline moves
// earlier. Done must close at that earlier deadline (the server expires the
// node TTL after the create), not at the later one its timer was last set
// for.
//
// With a TTL of 5 s the deadline is a send time + 4 s and a round of
// renewals starts 5/3 s after the previous one ended. The create is sent
// once the first renewal has arrived (at about 1.7 s) and answered when the
// third one arrives (at 5 s at the earliest); by then the timer has fired
// once, at 4 s, and was set again for the deadline of the second renewal
// (about 7.3 s). From the third renewal on, no member answers.
func TestDoneFollowsEarlierDeadline(t *testing.T) {
	const ttl = 5 * time.Second
	f := newMemKeys()
	var refreshes atomic.Int32
	var unreachable atomic.Bool
	first, third := make(chan struct{}), make(chan struct{})
	f.onSet = func(_ context.Context, _, _ string, o *client.SetOptions) error {
		if !o.Refresh {
			return nil
		}
		if unreachable.Load() {
			return errNoMember
		}
		switch refreshes.Add(1) {
		case 1:
			close(first)
		case 3:
			unreachable.Store(true)
			close(third)
			return errNoMember
		}
		return nil
	}
	f.afterCreate = func(ctx context.Context, _ *client.Node) error {
		// The create was applied; its answer arrives only now.
		select {
		case <-third:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s, err := NewSession(f, WithTTL(ttl))
	require.NoError(t, err)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	select {
	case <-first:
	case <-ctx.Done():
		t.Fatal("no renewal")
	}
	sent := time.Now() // the Lock's create is sent after this
	require.NoError(t, NewMutex(s, "/lock").Lock(ctx))
	done := s.Done() // one look: from now on only the session's timer can close it
	deadline := sent.Add(ttl - s.margin)
	select {
	case <-done:
		t.Logf("Done closed %v after the deadline of the node's create", time.Since(deadline))
	case <-time.After(time.Until(deadline) + 700*time.Millisecond):
		t.Fatalf("Done still open %v after the deadline of the node's create", time.Since(deadline))
	}
}

// TestAttachAfterDeadline: a node whose create was sent longer ago than the
// deadline allows is not attached: the session ends and attach reports
// ErrSessionExpired (the caller then removes the node).
func TestAttachAfterDeadline(t *testing.T) {
	f := newMemKeys()
	s, err := NewSession(f, WithTTL(3*time.Second))
	require.NoError(t, err)
	defer s.Close()
	l, err := s.attach("/lock/1", "v", "o", 1, time.Now().Add(-3*time.Second))
	require.ErrorIs(t, err, ErrSessionExpired)
	require.Nil(t, l)
	select {
	case <-s.done:
	default:
		t.Fatal("the session did not end")
	}
}

// TestOneFailedRoundEndsMinTTLSession pins what the Session doc says of
// retries at the minimum TTL: the retry of a failed round of renewals
// (500 ms after it) comes after the deadline (1 s after the last successful
// renewal was sent), so one failed round ends the session, although every
// later renewal would have been answered.
func TestOneFailedRoundEndsMinTTLSession(t *testing.T) {
	f := newMemKeys()
	var refreshes atomic.Int32
	f.onSet = func(_ context.Context, _, _ string, o *client.SetOptions) error {
		if o.Refresh && refreshes.Add(1) == 1 {
			return errNoMember
		}
		return nil
	}
	start := time.Now()
	s, err := NewSession(f, WithTTL(MinSessionTTL))
	require.NoError(t, err)
	defer s.Close()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the session outlived a failed round of renewals")
	}
	took := time.Since(start)
	require.GreaterOrEqual(t, took, MinSessionTTL-s.margin)
	require.Equal(t, int32(1), refreshes.Load(), "a retry was sent before the session ended")
}
