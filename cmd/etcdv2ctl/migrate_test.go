package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// flatten lists the nodes under n (not n itself) as key → value, "<dir>"
// for a directory, with "+ttl" when the node has a TTL.
func flatten(n *client.Node, into map[string]string) {
	for _, c := range n.Nodes {
		v := c.Value
		if c.Dir {
			v = "<dir>"
		}
		if c.TTL > 0 {
			v += "+ttl"
		}
		into[c.Key] = v
		flatten(c, into)
	}
}

// tree is the flattened recursive listing of "/" through ki.
func tree(t *testing.T, ki client.KeysAPI) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := ki.Get(ctx, "/", &client.GetOptions{Recursive: true, Sort: true})
	require.NoError(t, err)
	m := map[string]string{}
	flatten(resp.Node, m)
	return m
}

// TestMigrate copies a v2 tree from an etcd 3.5 cluster into an etcd 3.7
// cluster serving https with client-certificate authentication, the whole
// tree and then a subtree under another prefix, and compares what the
// adapter reads with what the v2 API serves.
func TestMigrate(t *testing.T) {
	src := testbed.NewCluster(t, testbed.Options{Plain: true})
	dst := testbed.NewCluster(t, testbed.Options{Version: "3.7", ClientTLS: &testbed.TLSOptions{ClientCertAuth: true}})
	ti := dst.ClientTLS()

	ki := newKeys(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for k, v := range map[string]string{"/top": "t", "/app/a": "1", "/app/sub/b": "2", "/app/_secret": "h", "/app/sub/c d": "with space"} {
		_, err := ki.Set(ctx, k, v, nil)
		require.NoError(t, err)
	}
	_, err := ki.Set(ctx, "/app/empty", "", &client.SetOptions{Dir: true})
	require.NoError(t, err)
	_, err = ki.Set(ctx, "/app/lease", "x", &client.SetOptions{TTL: 300 * time.Second})
	require.NoError(t, err)
	for _, job := range []string{"j1", "j2"} {
		_, err = ki.CreateInOrder(ctx, "/queue", job, nil)
		require.NoError(t, err)
	}

	cli3, err := clientv3.New(clientv3.Config{Endpoints: dst.ClientURLs(), TLS: dst.TLSConfig(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli3.Close()

	tlsFlags := []string{"--v3-endpoints", strings.Join(dst.ClientURLs(), ","),
		"--v3-cert-file", ti.Client.CertFile, "--v3-key-file", ti.Client.KeyFile, "--v3-ca-file", ti.CA.CertFile}
	run := func(extra ...string) (string, string, int) {
		args := append([]string{"--endpoints", strings.Join(src.ClientURLs(), ","), "migrate", "--quiet", "300ms"}, tlsFlags...)
		return ctl(t, "", append(args, extra...)...)
	}

	// The whole tree, with the hidden key, into the default prefix.
	want := tree(t, ki)
	require.Len(t, want, 11)
	out, errOut, code := run("--hidden", "/app/_secret")
	require.Equal(t, 0, code, "stdout %q, stderr %q", out, errOut)
	require.Equal(t, fmt.Sprintf("migrated %d nodes\n", len(want)+1), out)
	require.Empty(t, errOut, "no progress when standard error is not a terminal")
	adapter := v3adapter.NewKeysAPI(cli3)
	require.Equal(t, want, tree(t, adapter))
	resp, err := adapter.Get(ctx, "/app/_secret", nil)
	require.NoError(t, err)
	require.Equal(t, "h", resp.Node.Value)

	// The subtree /app, with its hidden key, into another prefix: only it
	// is copied, its keys keep their names.
	wantApp := map[string]string{}
	for k, v := range want {
		if strings.HasPrefix(k, "/app") {
			wantApp[k] = v
		}
	}
	require.Len(t, wantApp, 7)
	out, errOut, code = run("--source-prefix", "/app", "--target-prefix", "/apponly", "--hidden", "/app/_secret")
	require.Equal(t, 0, code, "stdout %q, stderr %q", out, errOut)
	require.Equal(t, fmt.Sprintf("migrated %d nodes\n", len(wantApp)+1), out)
	appOnly := v3adapter.NewKeysAPI(cli3, v3adapter.WithPrefix("/apponly"))
	require.Equal(t, wantApp, tree(t, appOnly))
	resp, err = appOnly.Get(ctx, "/app/_secret", nil)
	require.NoError(t, err)
	require.Equal(t, "h", resp.Node.Value)
	// The first copy is left as it was.
	require.Equal(t, want, tree(t, adapter))

	// Failures: no v3 endpoints; a CA that did not issue the members'
	// certificates.
	_, errOut, code = ctl(t, "", "--endpoints", strings.Join(src.ClientURLs(), ","), "migrate")
	require.Equal(t, exitBadArgs, code)
	require.Contains(t, errOut, "--v3-endpoints is required")
	_, errOut, code = run("--source-prefix", "/app", "--hidden", "/other/_x")
	require.Equal(t, exitBadArgs, code)
	require.Contains(t, errOut, "--hidden /other/_x is not under --source-prefix /app")
	other := testbed.NewCA(t, "untrusted CA")
	start := time.Now()
	_, errOut, code = ctl(t, "", "--endpoints", strings.Join(src.ClientURLs(), ","), "--total-timeout", "2s", "migrate", "--v3-endpoints", strings.Join(dst.ClientURLs(), ","),
		"--v3-cert-file", ti.Client.CertFile, "--v3-key-file", ti.Client.KeyFile, "--v3-ca-file", other.CertFile)
	require.Equal(t, exitBadConnection, code, errOut)
	require.Contains(t, errOut, "Error:  v3 cluster "+strings.Join(dst.ClientURLs(), ","))
	require.Less(t, time.Since(start), 20*time.Second)
}

// TestProgressBar checks the bar that migrate draws on a terminal.
func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{on: true, w: &buf, start: time.Now()}
	p.set("copy", 50, 100)
	require.Contains(t, buf.String(), "copy ["+strings.Repeat("=", barWidth/2)+strings.Repeat(" ", barWidth/2)+"] 50/100 records")
	p.set("catch-up", 3, 0)
	require.Contains(t, buf.String(), "\n\rcatch-up 3 records")
	p.done()
	require.True(t, strings.HasSuffix(buf.String(), "\n"))
}
