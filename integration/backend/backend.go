// Package backend chooses the client.KeysAPI that the scenario suites of the
// integration module (recipes, discovery) run on: the native v2 client on
// the test bed's etcd 3.5, or the v3 adapter on etcd 3.7. The choice comes
// from the environment variable ETCDV2_BACKEND ("" or "v2": native;
// "v3adapter": the adapter), so the same tests run on both and child
// processes of a test inherit the choice.
package backend

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// Env is the environment variable that selects the backend.
const Env = "ETCDV2_BACKEND"

// Backend is how a suite makes its KeysAPIs and clusters.
type Backend struct {
	// Name is "v2" or "v3adapter".
	Name string
	// Version is the testbed.Options.Version of the clusters.
	Version string
}

// V2 is the native v2 client on etcd 3.5; V3Adapter is v3adapter on 3.7.
var (
	V2        = Backend{Name: "v2"}
	V3Adapter = Backend{Name: "v3adapter", Version: "3.7"}
)

// FromEnv returns the backend named by ETCDV2_BACKEND, failing tb on an
// unknown name.
func FromEnv(tb testing.TB) Backend {
	tb.Helper()
	b, err := fromEnv()
	require.NoError(tb, err)
	return b
}

func fromEnv() (Backend, error) {
	switch v := os.Getenv(Env); v {
	case "", "v2":
		return V2, nil
	case "v3adapter":
		return V3Adapter, nil
	default:
		return Backend{}, fmt.Errorf("%s=%q: want v2 or v3adapter", Env, v)
	}
}

// Adapter reports whether b is the v3 adapter.
func (b Backend) Adapter() bool { return b.Name == V3Adapter.Name }

// Options returns o for this backend: its server version, and on the
// adapter plain http (the adapter's clients here are not given TLS).
func (b Backend) Options(o testbed.Options) testbed.Options {
	o.Version = b.Version
	if b.Adapter() {
		o.Plain = true
	}
	return o
}

// SkipOnAdapter skips tb on the adapter, saying why.
func (b Backend) SkipOnAdapter(tb testing.TB, why string) {
	tb.Helper()
	if b.Adapter() {
		tb.Skip("not on the v3 adapter: " + why)
	}
}

// NewV3 returns a v3 client on endpoints with gRPC keepalives (1 s), so
// that a hung member is noticed, as docs/v3adapter.md advises.
func NewV3(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
		Logger:               zap.NewNop(),
	})
}

// New returns a KeysAPI on endpoints (client URLs of members or of their
// proxies) and a function that closes its client. cfg is the native
// client's Config without Endpoints. The adapter uses only its
// HeaderTimeoutPerRequest: a positive value becomes
// v3adapter.WithRequestTimeout of that value (each v3 request is given up
// after it, as the native client gives up an attempt); zero (the native
// client's adaptive timeout) and negative values give the adapter no
// per-request timeout.
func (b Backend) New(endpoints []string, cfg client.Config) (client.KeysAPI, func(), error) {
	if b.Adapter() {
		cli, err := NewV3(endpoints)
		if err != nil {
			return nil, nil, err
		}
		var opts []v3adapter.Option
		if cfg.HeaderTimeoutPerRequest > 0 {
			opts = append(opts, v3adapter.WithRequestTimeout(cfg.HeaderTimeoutPerRequest))
		}
		return v3adapter.NewKeysAPI(cli, opts...), func() { cli.Close() }, nil
	}
	cfg.Endpoints = endpoints
	c, err := client.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	return client.NewKeysAPI(c), func() { c.Close() }, nil
}

// KeysAPI is New for a test: the client is closed when tb ends.
func (b Backend) KeysAPI(tb testing.TB, endpoints []string, cfg client.Config) client.KeysAPI {
	tb.Helper()
	k, closeFn, err := b.New(endpoints, cfg)
	require.NoError(tb, err)
	tb.Cleanup(closeFn)
	return k
}

// NewFromEnv is New for the backend named by ETCDV2_BACKEND, for child
// processes of a test.
func NewFromEnv(endpoints []string) (client.KeysAPI, func(), error) {
	b, err := fromEnv()
	if err != nil {
		return nil, nil, err
	}
	return b.New(endpoints, client.Config{})
}

// ClearHistory makes every watch that starts before index rev (0: the
// current index) fail with error 401, as on a v2 server once more than 1000
// events have passed it. The v2 server's history is a window of 1000
// events, so for V2 the caller's writes past it already did that and
// ClearHistory does nothing; on the adapter it compacts the v3 history at
// rev. A watch from rev or later is unaffected.
func (b Backend) ClearHistory(tb testing.TB, endpoints []string, rev uint64) {
	tb.Helper()
	if !b.Adapter() {
		return
	}
	cli, err := NewV3(endpoints)
	require.NoError(tb, err)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at := int64(rev)
	if at == 0 {
		r, err := cli.Get(ctx, "/", clientv3.WithCountOnly())
		require.NoError(tb, err)
		at = r.Header.Revision
	}
	_, err = cli.Compact(ctx, at, clientv3.WithCompactPhysical())
	require.NoError(tb, err)
}
