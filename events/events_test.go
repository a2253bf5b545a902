package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client/events"
	"github.com/etcdv2/client/internal/leakcheck"
)

// The behaviour against real servers is tested in integration/discovery;
// these tests cover what is refused before anything is sent.

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestInvalid(t *testing.T) {
	ev := events.New(nil, "/events") // never used: every call fails first
	ctx := context.Background()
	for _, name := range []string{"", "a/b", "_x", ".."} {
		_, err := ev.Fire(ctx, name, nil)
		require.ErrorIs(t, err, events.ErrInvalid, name)
		_, err = ev.List(ctx, name)
		require.ErrorIs(t, err, events.ErrInvalid, name)
		n := 0
		for _, err := range ev.Watch(ctx, name) {
			require.ErrorIs(t, err, events.ErrInvalid, name)
			n++
		}
		require.Equal(t, 1, n)
	}
	_, err := ev.Fire(ctx, "deploy", nil, events.WithTTL(time.Millisecond))
	require.ErrorIs(t, err, events.ErrInvalid)
}
