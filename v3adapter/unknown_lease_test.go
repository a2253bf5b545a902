package v3adapter_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// TestUnknownOutcomeKeepsLease: a Set with a TTL whose transaction applied
// but whose answer came too late (the fault proxy delays every chunk) is of
// unknown outcome, and the node it wrote stays: the adapter must not revoke
// the lease it granted for the write, since the node may be attached to it.
// The caller's deadline grows until an attempt applied without an answer.
func TestUnknownOutcomeKeepsLease(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Version: "3.7", ProxyClients: true})
	m := c.Members()[0]
	proxied, err := clientv3.New(clientv3.Config{Endpoints: []string{m.URL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer proxied.Close()
	direct, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + m.Proxy().Target()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer direct.Close()
	pk, dk := v3adapter.NewKeysAPI(proxied), v3adapter.NewKeysAPI(direct)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	for _, refresh := range []bool{false, true} {
		applied := false
		for i := 0; i < 30 && !applied; i++ {
			_, err := dk.Set(ctx, "/reg", "before", &client.SetOptions{TTL: time.Minute})
			require.NoError(t, err)
			want, opts := fmt.Sprint("v", i), &client.SetOptions{TTL: 50 * time.Second}
			if refresh {
				want, opts = "before", &client.SetOptions{TTL: 50 * time.Second, Refresh: true}
			}
			m.Proxy().SetDelay(300 * time.Millisecond)
			wctx, wcancel := context.WithTimeout(ctx, 700*time.Millisecond+time.Duration(i)*150*time.Millisecond)
			val := want
			if refresh {
				val = ""
			}
			_, err = pk.Set(wctx, "/reg", val, opts)
			wcancel()
			m.Proxy().SetDelay(0)
			if err == nil {
				break // answered in time: no unknown outcome to test at this deadline or later
			}
			if !errors.Is(err, client.ErrOutcomeUnknown) {
				continue // the grant or the read did not finish: nothing was sent
			}
			r, gerr := dk.Get(ctx, "/reg", nil)
			require.NoError(t, gerr, "attempt %d (refresh %v): the node a write of unknown outcome wrote was deleted", i, refresh)
			if refresh {
				// The node was set with a minute just before: a TTL of
				// 50 s or less is the refresh's.
				applied = r.Node.TTL <= 50
			} else {
				applied = r.Node.Value == want
			}
			if applied {
				t.Logf("refresh %v: attempt %d applied without an answer; the node stays (TTL %d s)", refresh, i, r.Node.TTL)
				require.Greater(t, r.Node.TTL, int64(0))
			}
		}
		require.True(t, applied, "refresh %v: no attempt applied without an answer", refresh)
	}
}
