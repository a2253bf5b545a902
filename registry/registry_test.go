package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client/internal/leakcheck"
	"github.com/etcdv2/client/registry"
)

// The behaviour against real servers is tested in integration/discovery;
// these tests cover what is refused before anything is sent.

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestInvalidRegistrations(t *testing.T) {
	r := registry.New(nil, "/services") // never used: every call fails first
	ctx := context.Background()
	for _, tc := range []struct {
		inst registry.Instance
		opts []registry.RegisterOption
	}{
		{registry.Instance{Service: "", ID: "a"}, nil},
		{registry.Instance{Service: "api", ID: ""}, nil},
		{registry.Instance{Service: "a/b", ID: "x"}, nil},
		{registry.Instance{Service: "_api", ID: "x"}, nil},
		{registry.Instance{Service: "api", ID: ".."}, nil},
		{registry.Instance{Service: "api", ID: "x"}, []registry.RegisterOption{registry.WithTTL(999 * time.Millisecond)}},
		// The server counts whole seconds: the local deadline would
		// fall after its expiry.
		{registry.Instance{Service: "api", ID: "x"}, []registry.RegisterOption{registry.WithTTL(4990 * time.Millisecond)}},
		{registry.Instance{Service: "api", ID: "x"}, []registry.RegisterOption{registry.WithTTL(time.Second + time.Nanosecond)}},
		{registry.Instance{Service: "api", ID: "x"}, []registry.RegisterOption{registry.WithTTL(2 * time.Second), registry.WithMargin(2 * time.Second)}},
		{registry.Instance{Service: "api", ID: "x"}, []registry.RegisterOption{registry.WithStatus("sick")}},
	} {
		_, err := r.Register(ctx, tc.inst, tc.opts...)
		require.ErrorIs(t, err, registry.ErrInvalid, "%+v", tc.inst)
	}
	_, _, err := r.Instances(ctx, "a/b")
	require.ErrorIs(t, err, registry.ErrInvalid)
	for _, err := range r.Watch(ctx, "") {
		require.ErrorIs(t, err, registry.ErrInvalid)
	}
	require.True(t, registry.Tag("v2")(registry.Instance{Tags: []string{"v1", "v2"}}))
	require.False(t, registry.Tag("v3")(registry.Instance{Tags: []string{"v1", "v2"}}))
	require.True(t, registry.PassingOnly()(registry.Instance{Status: registry.Passing}))
	require.False(t, registry.PassingOnly()(registry.Instance{Status: registry.Warning}))
}
