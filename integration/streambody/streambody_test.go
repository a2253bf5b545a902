// Package streambody_test checks, on a real cluster, that a listing whose
// answer breaks after its headers (a member that dies as it starts to
// send the body) fails over to another member while the client decodes
// the body as it arrives.
package streambody_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// TestListingCutAfterHeadersFailsOver: the first member's answer to a
// recursive Get is cut right after its headers (a TCP reset instead of the
// body); the attempt fails at once, without waiting for the body's idle
// timeout, and the listing comes whole from another member.
func TestListingCutAfterHeadersFailsOver(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3, ProxyClients: true})
	urls := cl.ClientURLs()
	first := cl.Members()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c, err := client.New(client.Config{Endpoints: urls, Selector: client.SelectorFunc(func(_ client.RequestInfo, cands []client.Endpoint) int {
		for i, e := range cands {
			if e.URL == first.URL() {
				return i
			}
		}
		return 0
	})})
	require.NoError(t, err)
	defer c.Close()
	k := client.NewKeysAPI(c)
	const n = 2000
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if _, err := k.Set(ctx, fmt.Sprintf("/cut/d%02d/k%05d", i%20, i), "v", nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	before := c.(client.StatsReporter).Stats()

	first.Proxy().CutAfterHeaders("recursive=true", 1)
	start := time.Now()
	resp, err := k.Get(ctx, "/cut", &client.GetOptions{Recursive: true})
	require.NoError(t, err)
	took := time.Since(start)
	require.Equal(t, 1, first.Proxy().Cuts(), "the first answer was cut")
	require.NotEqual(t, first.URL(), resp.Endpoint, "answered by another member")
	got := 0
	for _, d := range resp.Node.Nodes {
		got += len(d.Nodes)
	}
	require.Equal(t, n, got)
	require.Less(t, took, client.DefaultHeaderTimeoutPerRequest, "no wait for the body's idle timeout")
	after := c.(client.StatsReporter).Stats()
	var failures int64
	for _, e := range after.Endpoints {
		if e.URL == first.URL() {
			failures += int64(e.Failures)
		}
	}
	for _, e := range before.Endpoints {
		if e.URL == first.URL() {
			failures -= int64(e.Failures)
		}
	}
	require.EqualValues(t, 1, failures, "the cut counted against its member")
}
