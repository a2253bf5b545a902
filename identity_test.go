package client

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSetEndpointsToAnotherClusterStartsANewIdentity: after SetEndpoints to
// a list sharing no endpoint with the old one (a rebuilt cluster), the
// client takes the new cluster's ID instead of rejecting every member as
// of another cluster; a list that shares an endpoint keeps the identity.
func TestSetEndpointsToAnotherClusterStartsANewIdentity(t *testing.T) {
	a1, a2 := newFakeMember(t, "aaaa"), newFakeMember(t, "aaaa")
	b1, b2 := newFakeMember(t, "bbbb"), newFakeMember(t, "bbbb")
	c := newTestClient(t, Config{Endpoints: []string{a1.URL, a2.URL}})
	_, err := get(c, context.Background(), "/v2/keys/k")
	require.NoError(t, err)

	// Each list shares an endpoint with the one before: same identity.
	require.NoError(t, c.SetEndpoints([]string{a2.URL, b1.URL}))
	require.NoError(t, c.SetEndpoints([]string{b1.URL}))
	_, err = get(c, context.Background(), "/v2/keys/k")
	require.ErrorIs(t, err, ErrClusterIDMismatch, "b1 is not of the cluster the client knows")

	require.NoError(t, c.SetEndpoints([]string{b2.URL}))
	_, err = get(c, context.Background(), "/v2/keys/k")
	require.NoError(t, err, "a list sharing nothing with the old one starts a new identity")
	require.Equal(t, "bbbb", *c.clusterID.Load())
}
