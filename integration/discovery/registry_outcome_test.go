package discovery_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/backend"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/registry"
)

// lostAnswers is a one-member cluster, a KeysAPI straight to its member,
// and a Registry whose client goes through a holdProxy.
type lostAnswers struct {
	direct client.KeysAPI
	proxy  *holdProxy
	reg    *registry.Registry
}

func newLostAnswers(t *testing.T) *lostAnswers {
	backend.FromEnv(t).SkipOnAdapter(t, "the proxy speaks the v2 HTTP API")
	c := newCluster(t, testbed.Options{Size: 1})
	url := c.Members()[0].ClientURL()
	p := newHoldProxy(t, url)
	return &lostAnswers{
		direct: newKAPI(t, []string{url}),
		proxy:  p,
		reg:    registry.New(newKAPI(t, []string{p.URL()}), "/services"),
	}
}

// stored returns instance id of service "api" as stored, read straight
// from the member.
func (l *lostAnswers) stored(t *testing.T, id string) registry.Instance {
	t.Helper()
	ins, _, err := registry.New(l.direct, "/services").Instances(context.Background(), "api")
	require.NoError(t, err)
	for _, in := range ins {
		if in.ID == id {
			return in
		}
	}
	t.Fatalf("api/%s is not stored", id)
	return registry.Instance{}
}

// requireGone checks that key is not on the server.
func (l *lostAnswers) requireGone(t *testing.T, key string) {
	t.Helper()
	_, err := l.direct.Get(context.Background(), key, &client.GetOptions{Quorum: true})
	require.True(t, client.IsKeyNotFound(err), "%s is still there (err %v)", key, err)
}

// A write of a registration whose answer is lost after the member applied
// it (the caller's context ended, or the loop's write timed out) does not
// make the registration give itself up: its next write meets 101, reads
// the instance back, finds its own token, adopts the stored value and
// goes on; Deregister deletes the instance.
func TestRegistrySettlesLostAnswers(t *testing.T) {
	t.Run("SetStatus", func(t *testing.T) {
		l := newLostAnswers(t)
		reg, err := l.reg.Register(context.Background(), registry.Instance{Service: "api", ID: "a"}, registry.WithTTL(3*time.Second))
		require.NoError(t, err)
		t.Cleanup(func() { _ = reg.Deregister(context.Background()) })

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		l.proxy.hold(isWrite, cancel) // the caller gives up once the member applied it
		err = reg.SetStatus(ctx, registry.Warning, "slow disk")
		require.ErrorIs(t, err, client.ErrOutcomeUnknown)
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, registry.Warning, l.stored(t, "a").Status, "the member applied the write")

		// The next heartbeat meets 101, adopts the stored value and
		// refreshes it.
		_, at := l.proxy.waitFor(t, 0, 5*time.Second, "the status write was held", isHeld)
		l.proxy.waitFor(t, at, 5*time.Second, "a refresh after the lost answer is applied", isRefreshOK)
		require.NoError(t, reg.Err())
		in := reg.Instance()
		require.Equal(t, registry.Warning, in.Status)
		require.Equal(t, "slow disk", in.Output)

		require.NoError(t, reg.Deregister(context.Background()))
		l.requireGone(t, reg.Key())
	})

	t.Run("CheckTTL", func(t *testing.T) {
		// The loop's "TTL expired" write times out (after a second)
		// with its answer held back: the loop reads it back at once.
		l := newLostAnswers(t)
		reg, err := l.reg.Register(context.Background(), registry.Instance{Service: "api", ID: "b"},
			registry.WithTTL(3*time.Second), registry.WithCheckTTL(time.Second), registry.WithStatus(registry.Passing))
		require.NoError(t, err)
		t.Cleanup(func() { _ = reg.Deregister(context.Background()) })
		l.proxy.hold(isWrite, nil)

		_, at := l.proxy.waitFor(t, 0, 5*time.Second, "the check's write was held", isHeld)
		l.proxy.waitFor(t, at, 5*time.Second, "a refresh after the lost answer is applied", isRefreshOK)
		require.NoError(t, reg.Err())
		in := reg.Instance()
		require.Equal(t, registry.Critical, in.Status)
		require.Equal(t, "TTL expired", in.Output)
		require.Equal(t, registry.Critical, l.stored(t, "b").Status)

		require.NoError(t, reg.Deregister(context.Background()))
		l.requireGone(t, reg.Key())
	})

	t.Run("DeregisterBeforeSettled", func(t *testing.T) {
		// Deregister right after a lost answer (no heartbeat in
		// between, TTL 30 s): its delete meets 101, reads the instance
		// back and deletes it.
		l := newLostAnswers(t)
		reg, err := l.reg.Register(context.Background(), registry.Instance{Service: "api", ID: "c"}, registry.WithTTL(30*time.Second))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		l.proxy.hold(isWrite, cancel)
		err = reg.SetStatus(ctx, registry.Critical, "down")
		require.ErrorIs(t, err, client.ErrOutcomeUnknown)
		require.Equal(t, registry.Critical, l.stored(t, "c").Status)

		require.NoError(t, reg.Deregister(context.Background()))
		l.requireGone(t, reg.Key())
		require.ErrorIs(t, reg.Err(), registry.ErrLost)
	})
}

// A Register whose context ends after the member created the instance
// returns an error matching client.ErrOutcomeUnknown and the context's
// error, and the instance stays (unrefreshed); Register again on the same
// Registry takes it over with the new Instance, where another Registry
// still gets ErrExists.
func TestRegisterAgainAfterLostAnswer(t *testing.T) {
	l := newLostAnswers(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l.proxy.hold(func(x exchange) bool { return isWrite(x) && x.Form.Get("prevExist") == "false" }, cancel)
	_, err := l.reg.Register(ctx, registry.Instance{Service: "api", ID: "d", Addr: "127.0.0.1:1"}, registry.WithTTL(30*time.Second))
	require.ErrorIs(t, err, client.ErrOutcomeUnknown)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, "127.0.0.1:1", l.stored(t, "d").Addr, "the member created the instance")

	_, err = registry.New(l.direct, "/services").Register(context.Background(), registry.Instance{Service: "api", ID: "d"}, registry.WithTTL(30*time.Second))
	require.ErrorIs(t, err, registry.ErrExists, "another Registry does not take it over")

	reg, err := l.reg.Register(context.Background(), registry.Instance{Service: "api", ID: "d", Addr: "127.0.0.1:2"}, registry.WithTTL(30*time.Second))
	require.NoError(t, err, "Register again after a Register whose answer was lost")
	require.Equal(t, "127.0.0.1:2", l.stored(t, "d").Addr)
	require.Equal(t, "127.0.0.1:2", reg.Instance().Addr)
	require.NoError(t, reg.SetStatus(context.Background(), registry.Warning, "taken over"))
	require.Equal(t, registry.Warning, l.stored(t, "d").Status)
	require.NoError(t, reg.Deregister(context.Background()))
	l.requireGone(t, reg.Key())
}

// A Deregister whose context ended before the delete completed returns
// the context's error; a second Deregister deletes the instance.
func TestDeregisterAgainAfterContextEnded(t *testing.T) {
	c := newCluster(t, testbed.Options{Size: 1})
	kapi := newKAPI(t, c.ClientURLs())
	r := registry.New(kapi, "/services")
	reg, err := r.Register(context.Background(), registry.Instance{Service: "api", ID: "e"}, registry.WithTTL(30*time.Second))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, reg.Deregister(ctx), context.Canceled)
	_, err = kapi.Get(context.Background(), reg.Key(), &client.GetOptions{Quorum: true})
	require.NoError(t, err, "nothing was sent: the instance is still there")
	require.ErrorIs(t, reg.Err(), registry.ErrLost)

	require.NoError(t, reg.Deregister(context.Background()), "a second Deregister")
	_, err = kapi.Get(context.Background(), reg.Key(), &client.GetOptions{Quorum: true})
	require.True(t, client.IsKeyNotFound(err), "the second Deregister returned nil: the instance must be gone (err %v)", err)
	require.NoError(t, reg.Deregister(context.Background()), "a third Deregister finds nothing to do")
}

// A Deregister whose context ends after the member applied its delete
// returns an error matching client.ErrOutcomeUnknown and the context's
// error; Deregister again returns nil.
func TestDeregisterLostAnswer(t *testing.T) {
	l := newLostAnswers(t)
	reg, err := l.reg.Register(context.Background(), registry.Instance{Service: "api", ID: "f"}, registry.WithTTL(30*time.Second))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l.proxy.hold(func(x exchange) bool { return x.Method == http.MethodDelete }, cancel)
	err = reg.Deregister(ctx)
	require.ErrorIs(t, err, client.ErrOutcomeUnknown)
	require.ErrorIs(t, err, context.Canceled)
	l.requireGone(t, reg.Key())
	require.NoError(t, reg.Deregister(context.Background()))
}
