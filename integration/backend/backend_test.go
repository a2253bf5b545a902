package backend

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client/integration/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

func TestFromEnv(t *testing.T) {
	for v, want := range map[string]Backend{"": V2, "v2": V2, "v3adapter": V3Adapter} {
		t.Setenv(Env, v)
		got, err := fromEnv()
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	t.Setenv(Env, "v3")
	_, err := fromEnv()
	require.ErrorContains(t, err, `ETCDV2_BACKEND="v3"`)

	o := V3Adapter.Options(testbed.Options{Size: 3})
	require.Equal(t, testbed.Options{Size: 3, Version: "3.7", Plain: true}, o)
	require.Equal(t, testbed.Options{Size: 3}, V2.Options(testbed.Options{Size: 3}))
}
