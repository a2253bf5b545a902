// Package biglisting_test checks that a large recursive read on a real
// cluster succeeds with the default settings and costs no member its
// health.
package biglisting_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

const bigKeys = 100_000

// load writes the keys /big/dNN/kNNNNNN (100 directories) through plain
// pipelined HTTP/1.1 connections to every member: many proposals in flight
// let etcd batch them, and the race-instrumented client code stays out of
// the way, so that loading takes seconds rather than a minute.
func load(t *testing.T, urls []string) {
	const conns = 48
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for ci := 0; ci < conns; ci++ {
		u, err := url.Parse(urls[ci%len(urls)])
		require.NoError(t, err)
		conn, err := net.Dial("tcp", u.Host)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		var mine []int
		for i := ci; i < bigKeys; i += conns {
			mine = append(mine, i)
		}
		wg.Add(2)
		go func() { // writer
			defer wg.Done()
			w := bufio.NewWriterSize(conn, 64<<10)
			for _, i := range mine {
				fmt.Fprintf(w, "PUT /v2/keys/big/d%02d/k%06d HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nvalue=v", i%100, i, u.Host)
			}
			if err := w.Flush(); err != nil {
				errs <- err
			}
		}()
		go func() { // reader
			defer wg.Done()
			r := bufio.NewReaderSize(conn, 64<<10)
			for range mine {
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					errs <- err
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusCreated {
					errs <- fmt.Errorf("status %d, %v", resp.StatusCode, err)
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
}

// TestRecursiveGetOfManyKeys loads 100,000 keys into a three-member
// cluster, warms the client up with small reads (so that its adaptive
// per-attempt timeout is at its floor), and reads them all with one
// recursive Get: a member that takes longer than that timeout to build the
// listing is alive, not hung, so the read succeeds at the first member and
// nobody is ejected.
func TestRecursiveGetOfManyKeys(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3, ExtraArgs: []string{"--unsafe-no-fsync"}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	start := time.Now()
	load(t, cl.ClientURLs())
	t.Logf("loaded %d keys in %v", bigKeys, time.Since(start).Round(time.Millisecond))

	c, err := client.New(client.Config{Endpoints: cl.ClientURLs()})
	require.NoError(t, err)
	defer c.Close()
	k := client.NewKeysAPI(c)
	for i := 0; i < 600; i++ {
		_, err := k.Get(ctx, fmt.Sprintf("/big/d%02d/k%06d", i%100, i), nil)
		require.NoError(t, err)
	}
	st := c.(client.StatsReporter).Stats()
	require.Less(t, st.AttemptTimeout, client.DefaultHeaderTimeoutPerRequest, "the warm-up brought the adaptive timeout down")
	t.Logf("adaptive attempt timeout after the warm-up: %v", st.AttemptTimeout)

	start = time.Now()
	resp, err := k.Get(ctx, "/big", &client.GetOptions{Recursive: true})
	require.NoError(t, err)
	took := time.Since(start)
	n := 0
	for _, d := range resp.Node.Nodes {
		n += len(d.Nodes)
	}
	require.Equal(t, bigKeys, n)
	t.Logf("recursive Get of %d keys: %v", n, took.Round(time.Millisecond))

	// The size of the answer, for Config.MaxResponseBytes.
	hr, err := http.Get(cl.ClientURLs()[0] + "/v2/keys/big?recursive=true")
	require.NoError(t, err)
	size, err := io.Copy(io.Discard, hr.Body)
	hr.Body.Close()
	require.NoError(t, err)
	t.Logf("the listing is %d bytes, %d per key (with a 1-byte value and a 20-byte key)", size, size/bigKeys)

	st = c.(client.StatsReporter).Stats()
	for _, e := range st.Endpoints {
		require.Zero(t, e.Ejections, "%s was ejected", e.URL)
		require.Zero(t, e.Failures, "%s had failures", e.URL)
	}
	require.Zero(t, st.Retries, "the read was not retried elsewhere")
}
