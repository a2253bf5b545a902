package v3adapter_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// liveKeys is a source KeysAPI whose watchers leave out hidden keys, as a
// v2 server does for a watcher already waiting when the write happens;
// before its watcher's first event it runs once the function given.
type liveKeys struct {
	client.KeysAPI
	once   sync.Once
	before func()
}

func (l *liveKeys) Watcher(key string, opts *client.WatcherOptions) client.Watcher {
	return &liveWatcher{w: l.KeysAPI.Watcher(key, opts), l: l}
}

type liveWatcher struct {
	w client.Watcher
	l *liveKeys
}

func (w *liveWatcher) Next(ctx context.Context) (*client.Response, error) {
	w.l.once.Do(w.l.before)
	for i := 0; i < 1000; i++ {
		r, err := w.w.Next(ctx)
		if err != nil || !strings.Contains(r.Node.Key, "/_") {
			return r, err
		}
	}
	return nil, context.DeadlineExceeded
}

// TestMigrateHiddenUnderSourcePrefix checks, on etcd 3.5, that Migrate
// from a source KeysAPI with a prefix replaces a hidden path in the target
// under the name it copied it to (the source's full path): a key removed
// from the hidden subtree after the listing, which the catch-up does not
// see, is removed from the target too.
func TestMigrateHiddenUnderSourcePrefix(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{})
	cl, err := client.New(client.Config{Endpoints: c.ClientURLs()})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	raw := client.NewKeysAPIWithPrefix(cl, "/v2/keys/pre") // keys under /pre
	cli := newV3(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, key := range []string{"/a", "/_h/k", "/_h/old"} {
		_, err := raw.Set(ctx, key, "v", nil)
		require.NoError(t, err)
	}
	src := &liveKeys{KeysAPI: raw, before: func() {
		_, err := raw.Delete(ctx, "/_h/old", nil)
		require.NoError(t, err)
	}}
	_, err = v3adapter.Migrate(ctx, src, cli, v3adapter.MigrateOptions{Prefix: "/mig", Hidden: []string{"/_h"}, Quiet: 200 * time.Millisecond})
	require.NoError(t, err)
	dst := v3adapter.NewKeysAPI(cli, v3adapter.WithPrefix("/mig"))
	g, err := dst.Get(ctx, "/pre/_h", &client.GetOptions{Recursive: true})
	require.NoError(t, err)
	var keys []string
	for _, n := range g.Node.Nodes {
		keys = append(keys, n.Key)
	}
	require.Equal(t, []string{"/pre/_h/k"}, keys, "the hidden path as the source has it")
	_, err = dst.Get(ctx, "/pre/a", nil)
	require.NoError(t, err)
}
