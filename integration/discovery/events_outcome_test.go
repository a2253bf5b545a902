package discovery_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/events"
	"github.com/etcdv2/client/integration/backend"
	"github.com/etcdv2/client/integration/testbed"
)

// A Fire whose context ends after the member recorded the event returns
// the event's ID with an error matching client.ErrOutcomeUnknown and the
// context's error: a caller that retries only on other errors does not
// fire it twice.
func TestFireLostAnswer(t *testing.T) {
	backend.FromEnv(t).SkipOnAdapter(t, "the proxy speaks the v2 HTTP API")
	c := newCluster(t, testbed.Options{Size: 1})
	url := c.Members()[0].ClientURL()
	p := newHoldProxy(t, url)
	ev := events.New(newKAPI(t, []string{p.URL()}), "/events")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.hold(func(x exchange) bool { return x.Method == http.MethodPost }, cancel)
	id, err := ev.Fire(ctx, "deploy", []byte("x"))
	require.ErrorIs(t, err, client.ErrOutcomeUnknown)
	require.ErrorIs(t, err, context.Canceled)
	require.NotEmpty(t, id)

	list, err := events.New(newKAPI(t, []string{url}), "/events").List(context.Background(), "deploy")
	require.NoError(t, err)
	require.Len(t, list, 1, "the member recorded the event")
	require.Equal(t, id, list[0].ID)

	// A context that ended before anything was sent: nothing recorded,
	// no ID.
	id, err = ev.Fire(ctx, "deploy", []byte("y"))
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, client.ErrOutcomeUnknown)
	require.Empty(t, id)
}
