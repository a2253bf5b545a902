package v3adapter_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

// TestUpgradeRunbook follows docs/v3adapter.md's runbook end to end on a
// 3-member cluster: etcd 3.5 with v2 data, Migrate, delete the v2 data,
// restart without v2, let every member take a snapshot, upgrade the members
// one at a time to 3.6, and find the tree unchanged through the adapter.
func TestUpgradeRunbook(t *testing.T) {
	t.Parallel()
	const snapshotCount = 20
	c := testbed.NewCluster(t, testbed.Options{Size: 3, ExtraArgs: []string{fmt.Sprintf("--snapshot-count=%d", snapshotCount)}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	v2c, err := client.New(client.Config{Endpoints: c.ClientURLs()})
	require.NoError(t, err)
	defer v2c.Close()
	v2 := client.NewKeysAPI(v2c)
	fillTree(t, ctx, v2, 300)
	hidden := []string{"/_private"}
	for i := 1; i < 300; i += 10 {
		hidden = append(hidden, fmt.Sprintf("/app/_h%06d", i))
	}
	roots := append([]string{"/"}, hidden...)
	want := view(t, ctx, v2, roots...)

	// Steps 2 and 3: migrate (twice: the second run catches up and sweeps).
	cli := newV3(t, c)
	opts := v3adapter.MigrateOptions{Hidden: hidden, Quiet: 500 * time.Millisecond}
	for i := 0; i < 2; i++ {
		_, err := v3adapter.Migrate(ctx, v2, cli, opts)
		require.NoError(t, err)
	}
	kapi := v3adapter.NewKeysAPI(cli)
	require.Equal(t, want, view(t, ctx, kapi, roots...))

	// Step 4: delete the v2 data, close the v2 client, restart the members
	// without --enable-v2, then enough writes for every member to snapshot
	// past the last v2 entry of its log.
	top, err := v2.Get(ctx, "/", nil)
	require.NoError(t, err)
	for _, n := range append(top.Node.Nodes, &client.Node{Key: "/_private"}) {
		_, err := v2.Delete(ctx, n.Key, &client.DeleteOptions{Recursive: true})
		require.NoError(t, err)
	}
	v2c.Close()
	c.DisableV2(t)
	for i := 0; i < 3*snapshotCount; i++ {
		_, err := kapi.Set(ctx, "/runbook/tick", fmt.Sprint(i), nil)
		require.NoError(t, err)
	}
	_, err = kapi.Delete(ctx, "/runbook", &client.DeleteOptions{Recursive: true})
	require.NoError(t, err)

	c.Upgrade(t, "3.6")
	cli36 := newV3(t, c)
	kapi36 := v3adapter.NewKeysAPI(cli36)
	require.Equal(t, want, view(t, ctx, kapi36, roots...))
	r, err := kapi36.CreateInOrder(ctx, "/queue", "after upgrade", nil)
	require.NoError(t, err)
	q, err := kapi36.Get(ctx, "/queue", &client.GetOptions{Sort: true})
	require.NoError(t, err)
	require.Equal(t, r.Node.Key, q.Node.Nodes[len(q.Node.Nodes)-1].Key)
}
