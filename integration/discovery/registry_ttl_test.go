package discovery_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/registry"
)

// The server counts a TTL in whole seconds: a TTL that is not a whole
// number of seconds is refused (its local deadline would fall after the
// server's expiry), and a whole one puts the local deadline before the
// expiry the server reports.
func TestRegistryTTLWholeSeconds(t *testing.T) {
	c := newCluster(t, testbed.Options{Size: 1})
	kapi := newKAPI(t, c.ClientURLs())
	r := registry.New(kapi, "/services")
	ctx := context.Background()
	_, err := r.Register(ctx, registry.Instance{Service: "api", ID: "t"}, registry.WithTTL(4990*time.Millisecond))
	require.ErrorIs(t, err, registry.ErrInvalid)
	_, err = kapi.Get(ctx, "/services/api/t", &client.GetOptions{Quorum: true})
	require.True(t, client.IsKeyNotFound(err), "nothing is written (err %v)", err)

	reg, err := r.Register(ctx, registry.Instance{Service: "api", ID: "t"}, registry.WithTTL(5*time.Second))
	require.NoError(t, err)
	defer func() { require.NoError(t, reg.Deregister(ctx)) }()
	got, err := kapi.Get(ctx, reg.Key(), &client.GetOptions{Quorum: true})
	require.NoError(t, err)
	require.NotNil(t, got.Node.Expiration)
	require.True(t, reg.Deadline().Before(*got.Node.Expiration),
		"local deadline %v is not before the server's expiration %v", reg.Deadline(), *got.Node.Expiration)
}
