package testbed_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client/integration/testbed"
)

// TestProxyCutAfterHeaders: a matching request gets its status and headers,
// then a reset instead of its body; other requests and later ones pass.
func TestProxyCutAfterHeaders(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Test", "yes")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush() // the headers go out on their own, as etcd's watch
		_, _ = io.WriteString(w, "body of "+r.URL.Path)
	}))
	defer srv.Close()
	p := testbed.NewProxy(t, srv.Listener.Addr().String())
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	get := func(path string) (*http.Response, string, error) {
		resp, err := c.Get(p.URL() + path)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}

	p.CutAfterHeaders("/cut", 1)
	_, body, err := get("/other")
	require.NoError(t, err)
	require.Equal(t, "body of /other", body)
	require.Equal(t, 0, p.Cuts())

	resp, body, err := get("/cut")
	require.Error(t, err, "the body of a cut answer must not arrive")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "yes", resp.Header.Get("X-Test"))
	require.False(t, strings.Contains(body, "body"), "got body %q", body)
	require.Equal(t, 1, p.Cuts())

	_, body, err = get("/cut") // only one cut was armed
	require.NoError(t, err)
	require.Equal(t, "body of /cut", body)
	require.Equal(t, 1, p.Cuts())
}
