package testbed_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client/integration/testbed"
)

// serverVersion reads GET /version of one member.
func serverVersion(t *testing.T, url string) string {
	t.Helper()
	resp, err := client(2 * time.Second).Get(url + "/version")
	require.NoError(t, err)
	defer resp.Body.Close()
	var v struct {
		Server string `json:"etcdserver"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return v.Server
}

// TestVersions starts a 1-member 3.6 and a 3-member 3.7 cluster (v3 API
// only): the test bed finds their leader and member ids without /v2/members,
// the servers report the requested release and refuse the v2 keys API, and
// a killed leader is replaced and restarts.
func TestVersions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version string
		size    int
	}{{"3.6", 1}, {"3.7", 3}} {
		t.Run(tc.version, func(t *testing.T) {
			c := testbed.NewCluster(t, testbed.Options{Size: tc.size, Version: tc.version})
			l, err := c.Leader(ctxT(t, 5*time.Second))
			require.NoError(t, err)
			for _, m := range c.Members() {
				require.NotEmpty(t, m.ID())
				require.True(t, strings.HasPrefix(serverVersion(t, m.ClientURL()), tc.version+"."), m.Name())
			}
			resp, err := client(2 * time.Second).Get(l.ClientURL() + "/v2/keys/")
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusNotFound, resp.StatusCode)
			if tc.size < 3 {
				return
			}
			l.Kill(t)
			require.NoError(t, c.WaitHealthy(ctxT(t, 15*time.Second)))
			nl, err := c.Leader(ctxT(t, 5*time.Second))
			require.NoError(t, err)
			require.NotSame(t, l, nl)
			l.Restart(t)
			require.NoError(t, c.WaitHealthy(ctxT(t, 15*time.Second)))
		})
	}
}
