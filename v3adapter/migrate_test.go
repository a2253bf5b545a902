package v3adapter_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// view renders a tree as lines "key dir|value ttl?" in key order; indexes
// differ between the source and the copy by design.
func view(t *testing.T, ctx context.Context, k client.KeysAPI, roots ...string) []string {
	t.Helper()
	var out []string
	var walk func(n *client.Node)
	walk = func(n *client.Node) {
		if n.Key != "" {
			s := n.Key + " " + map[bool]string{true: "dir", false: fmt.Sprintf("%q", n.Value)}[n.Dir]
			if n.TTL > 0 {
				s += " ttl"
			}
			out = append(out, s)
		}
		for _, c := range n.Nodes {
			walk(c)
		}
	}
	for _, r := range roots {
		resp, err := k.Get(ctx, r, &client.GetOptions{Recursive: true, Sort: true})
		require.NoError(t, err)
		walk(resp.Node)
	}
	return out
}

// fillTree writes n keys in directories, with TTLs, hidden keys and an
// in-order queue, into a v2 store.
func fillTree(t *testing.T, ctx context.Context, k client.KeysAPI, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				var err error
				switch i % 10 {
				case 0:
					_, err = k.Set(ctx, fmt.Sprintf("/app/ttl/k%06d", i), "t", &client.SetOptions{TTL: time.Hour})
				case 1:
					_, err = k.Set(ctx, fmt.Sprintf("/app/_h%06d", i), "hidden", nil)
				case 2:
					_, err = k.CreateInOrder(ctx, "/queue", fmt.Sprint(i), nil)
				default:
					_, err = k.Set(ctx, fmt.Sprintf("/app/d%03d/k%06d", i%97, i), fmt.Sprint(i), nil)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
	_, err := k.Set(ctx, "/_private/cfg", "secret", nil)
	require.NoError(t, err)
	_, err = k.Set(ctx, "/tdir", "", &client.SetOptions{Dir: true, TTL: time.Hour})
	require.NoError(t, err)
	_, err = k.Set(ctx, "/tdir/child", "c", nil)
	require.NoError(t, err)
}

// TestMigrate copies a live v2 tree from etcd 3.5 into the adapter's layout
// while a writer keeps writing: a run cut short and then resumed, and a
// clean run into another prefix, both end with the v2 view.
func TestMigrate(t *testing.T) {
	t.Parallel()
	n := 2000
	if os.Getenv("ETCDV2_FAULTS") == "1" {
		n = 100000
	}
	c := testbed.NewCluster(t, testbed.Options{})
	// The headers of a listing of the whole tree come only once the server
	// has rendered it: too late for the client's adaptive timeout.
	src := newV2Config(t, client.Config{Endpoints: c.ClientURLs(), HeaderTimeoutPerRequest: time.Minute})
	cli := newV3(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	fillTree(t, ctx, src, n)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the live writer
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			_, _ = src.Set(ctx, fmt.Sprintf("/live/k%d", i%50), fmt.Sprint(i), nil)
			if i%7 == 0 {
				_, _ = src.Delete(ctx, fmt.Sprintf("/live/k%d", (i+3)%50), nil)
			}
			if i%11 == 0 {
				_, _ = src.CreateInOrder(ctx, "/queue", "live", nil)
			}
			if i%13 == 0 { // directories with a TTL, some over files
				_, _ = src.Set(ctx, fmt.Sprintf("/live/k%d", (i+1)%50), "", &client.SetOptions{Dir: true, TTL: time.Hour})
			}
		}
	}()
	hidden := []string{"/_private"}
	for i := 1; i < n; i += 10 {
		hidden = append(hidden, fmt.Sprintf("/app/_h%06d", i))
	}
	opts := v3adapter.MigrateOptions{Prefix: "/resumed", Hidden: hidden, Quiet: time.Second}

	// Interrupted run.
	cctx, ccancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := v3adapter.Migrate(cctx, src, cli, opts)
	ccancel()
	require.Error(t, err)

	// Resumed run; the writer stops during its catch-up.
	go func() {
		time.Sleep(500 * time.Millisecond)
		close(stop)
	}()
	written, err := v3adapter.Migrate(ctx, src, cli, opts)
	require.NoError(t, err)
	wg.Wait()
	require.GreaterOrEqual(t, written, n)

	roots := append([]string{"/"}, hidden...)
	want := view(t, ctx, src, roots...)
	require.Equal(t, want, view(t, ctx, v3adapter.NewKeysAPI(cli, v3adapter.WithPrefix("/resumed")), roots...))

	clean := opts
	clean.Prefix = "/clean"
	_, err = v3adapter.Migrate(ctx, src, cli, clean)
	require.NoError(t, err)
	dst := v3adapter.NewKeysAPI(cli, v3adapter.WithPrefix("/clean"))
	require.Equal(t, want, view(t, ctx, dst, roots...))

	// In-order keys created after the migration sort after the copied ones.
	r, err := dst.CreateInOrder(ctx, "/queue", "after", nil)
	require.NoError(t, err)
	q, err := dst.Get(ctx, "/queue", &client.GetOptions{Sort: true})
	require.NoError(t, err)
	require.Equal(t, r.Node.Key, q.Node.Nodes[len(q.Node.Nodes)-1].Key)
	require.True(t, strings.HasPrefix(r.Node.Key, "/queue/"))
}

// TestMigrateRestart: when more than v2's 1000 events of history pass
// between the listing and the catch-up, the catch-up gets error 401 and
// Migrate starts again from a fresh listing, reporting it in Progress.
func TestMigrateRestart(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{})
	src := newV2(t, c)
	cli := newV3(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fillTree(t, ctx, src, 100)
	var reports []v3adapter.MigrateProgress
	noisy := false
	opts := v3adapter.MigrateOptions{Quiet: 500 * time.Millisecond, Progress: func(p v3adapter.MigrateProgress) {
		reports = append(reports, p)
		if p.Phase == "copy" && !noisy {
			noisy = true
			// Pushes the listing's index out of v2's history.
			for i := 0; i < 1200; i++ {
				_, err := src.Set(ctx, fmt.Sprintf("/noise/k%d", i%100), fmt.Sprint(i), nil)
				require.NoError(t, err)
			}
		}
	}}
	_, err := v3adapter.Migrate(ctx, src, cli, opts)
	require.NoError(t, err)
	last := reports[len(reports)-1]
	require.Equal(t, 1, last.Restarts, "one restart from a fresh listing")
	var copied v3adapter.MigrateProgress
	for _, r := range reports {
		if r.Phase == "copy" && r.Restarts == 1 {
			copied = r
		}
	}
	require.Equal(t, copied.Total, copied.Done)
	require.Greater(t, copied.Total, 100)
	require.Equal(t, view(t, ctx, src, "/"), view(t, ctx, v3adapter.NewKeysAPI(cli), "/"))
}
