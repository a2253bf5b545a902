package https_test

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

func TestTLSTransportKeysOverHTTPS(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3, ClientTLS: &testbed.TLSOptions{ClientCertAuth: true}, PeerTLS: &testbed.TLSOptions{ClientCertAuth: true}})
	// By IP address and by name: both are on the members' certificates.
	for _, byName := range []bool{false, true} {
		eps := cl.ClientURLs()
		if byName {
			for i, e := range eps {
				eps[i] = strings.Replace(e, "127.0.0.1", "localhost", 1)
			}
		}
		c, _ := newTLSClient(t, eps, clusterTLSInfo(cl), client.Config{})
		kapi := client.NewKeysAPI(c)
		key := fmt.Sprintf("/tls/byname-%v", byName)
		_, err := kapi.Set(ctxT(t, 20*time.Second), key, "v1", nil)
		require.NoError(t, err)
		resp, err := kapi.Get(ctxT(t, 20*time.Second), key, &client.GetOptions{Quorum: true})
		require.NoError(t, err)
		require.Equal(t, "v1", resp.Node.Value)
		require.NoError(t, c.Sync(ctxT(t, 20*time.Second)))
		require.ElementsMatch(t, cl.ClientURLs(), c.Endpoints(), "Sync keeps the https URLs the members advertise")
	}
}

func TestTLSTransportRejectsBadFiles(t *testing.T) {
	ca := testbed.NewCA(t, "ca")
	kp := ca.Issue(t, testbed.CertSpec{ClientOnly: true})
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not PEM"), 0o600))
	for name, info := range map[string]client.TLSInfo{
		"cert without key": {CertFile: kp.CertFile},
		"missing cert":     {CertFile: filepath.Join(dir, "none.pem"), KeyFile: kp.KeyFile},
		"mismatched pair":  {CertFile: kp.CertFile, KeyFile: ca.Issue(t, testbed.CertSpec{}).KeyFile},
		"missing CA":       {TrustedCAFile: filepath.Join(dir, "none.pem")},
		"CA not PEM":       {TrustedCAFile: junk},
	} {
		_, err := client.NewTLSTransport(info)
		require.Error(t, err, name)
	}
	_, err := client.NewTLSTransport(client.TLSInfo{CertFile: kp.CertFile, KeyFile: kp.KeyFile, TrustedCAFile: ca.CertFile})
	require.NoError(t, err)
}

// TestTLSRotateClientCertificate replaces the client's certificate files
// while the client runs: the next connection presents the new one.
func TestTLSRotateClientCertificate(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{ClientTLS: &testbed.TLSOptions{ClientCertAuth: true}})
	other := testbed.NewCA(t, "untrusted CA")
	dir := t.TempDir()
	info := client.TLSInfo{CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client-key.pem"), TrustedCAFile: cl.ClientTLS().CA.CertFile}
	other.IssueTo(t, testbed.CertSpec{ClientOnly: true}, info.CertFile, info.KeyFile)
	c, ct := newTLSClient(t, cl.ClientURLs(), info, client.Config{})
	kapi := client.NewKeysAPI(c)

	_, err := kapi.Get(ctxT(t, 20*time.Second), "/", nil)
	var te *client.TLSError
	require.ErrorAs(t, err, &te)
	require.Equal(t, client.TLSClientCertificateRejected, te.Problem)

	cl.ClientTLS().CA.IssueTo(t, testbed.CertSpec{ClientOnly: true}, info.CertFile, info.KeyFile)
	_, err = kapi.Get(ctxT(t, 20*time.Second), "/", nil)
	require.NoError(t, err, "the rotated certificate is used without a new client")

	// A short-lived certificate: once it has expired, new connections
	// are refused by the member until the files hold a fresh one.
	short := cl.ClientTLS().CA.IssueTo(t, testbed.CertSpec{ClientOnly: true, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(2 * time.Second)}, info.CertFile, info.KeyFile)
	ct.CloseIdleConnections()
	_, err = kapi.Get(ctxT(t, 20*time.Second), "/", nil)
	require.NoError(t, err)
	time.Sleep(time.Until(short.Cert.NotAfter.Add(1100 * time.Millisecond))) // expiry is a time, not an event
	ct.CloseIdleConnections()
	_, err = kapi.Get(ctxT(t, 20*time.Second), "/", nil)
	require.ErrorAs(t, err, &te)
	require.Equal(t, client.TLSClientCertificateRejected, te.Problem, "%v", err)
	cl.ClientTLS().CA.IssueTo(t, testbed.CertSpec{ClientOnly: true}, info.CertFile, info.KeyFile)
	_, err = kapi.Get(ctxT(t, 20*time.Second), "/", nil)
	require.NoError(t, err)
}

// TestTLSRotateTrustedCA replaces the CA file and the member's certificate
// while the client runs.
func TestTLSRotateTrustedCA(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{ClientTLS: &testbed.TLSOptions{}})
	m := cl.Members()[0]
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	other := testbed.NewCA(t, "untrusted CA")
	require.NoError(t, os.WriteFile(caFile, other.CertPEM(), 0o600))
	c, ct := newTLSClient(t, cl.ClientURLs(), client.TLSInfo{TrustedCAFile: caFile}, client.Config{})
	kapi := client.NewKeysAPI(c)

	_, err := kapi.Get(ctxT(t, 20*time.Second), "/", nil)
	require.ErrorAs(t, err, new(x509.UnknownAuthorityError))

	require.NoError(t, os.WriteFile(caFile, cl.ClientTLS().CA.CertPEM(), 0o600))
	_, err = kapi.Get(ctxT(t, 20*time.Second), "/", nil)
	require.NoError(t, err, "the new CA file is read for the next connection")

	// The member moves to a certificate from a new CA: open connections
	// keep working, new ones fail until the client trusts the new CA too.
	ca2 := testbed.NewCA(t, "second CA")
	m.RotateServerCert(t, ca2, testbed.CertSpec{})
	_, err = kapi.Get(ctxT(t, 20*time.Second), "/", nil)
	require.NoError(t, err, "the open connection is reused")
	ct.CloseIdleConnections()
	_, err = kapi.Get(ctxT(t, 20*time.Second), "/", nil)
	require.ErrorAs(t, err, new(x509.UnknownAuthorityError))
	bundle := append(cl.ClientTLS().CA.CertPEM(), ca2.CertPEM()...)
	require.NoError(t, os.WriteFile(caFile, bundle, 0o600))
	_, err = kapi.Get(ctxT(t, 20*time.Second), "/", nil)
	require.NoError(t, err)
}

// TestTLSConnectionReuse counts handshakes: requests reuse connections
// instead of making a handshake each.
func TestTLSConnectionReuse(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3, ClientTLS: &testbed.TLSOptions{ClientCertAuth: true}})
	// The default, adaptive per-attempt timeout: learnt on warm
	// connections, it gives new ones (64 simultaneous handshakes on a
	// loaded machine) their own budget.
	c, ct := newTLSClient(t, cl.ClientURLs(), clusterTLSInfo(cl), client.Config{})
	kapi := client.NewKeysAPI(c)
	_, err := kapi.Set(ctxT(t, 20*time.Second), "/reuse", "v", nil)
	require.NoError(t, err)

	before := ct.handshakes.Load()
	const n = 500
	for i := 0; i < n; i++ {
		_, err := kapi.Get(ctxT(t, 20*time.Second), "/reuse", nil)
		require.NoError(t, err)
	}
	seq := ct.handshakes.Load() - before
	t.Logf("sequential: %d handshakes for %d Gets", seq, n)
	require.LessOrEqual(t, seq, int64(1), "sequential Gets reuse one connection")

	// 64 concurrent callers: connections are dialed while all are busy
	// (net/http may dial more than it ends up needing, and keeps the
	// extra ones idle), then reused: a second burst needs next to none.
	const callers, each = 64, 20
	burst := func() int64 {
		before := ct.handshakes.Load()
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for g := 0; g < callers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if _, err := kapi.Get(ctxT(t, 20*time.Second), "/reuse", nil); err != nil {
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
		return ct.handshakes.Load() - before
	}
	first := burst()
	st1 := c.(client.StatsReporter).Stats()
	second := burst()
	st2 := c.(client.StatsReporter).Stats()
	t.Logf("64 callers: %d, then %d handshakes for %d Gets each time (requests %d, retries %d; then %d, %d)",
		first, second, callers*each, st1.Requests, st1.Retries, st2.Requests, st2.Retries)
	for _, es := range st2.Endpoints {
		t.Logf("%s: attempts %d, failures %d, ejections %d", es.URL, es.Attempts, es.Failures, es.Ejections)
	}
	require.Less(t, first, int64(callers*each/4), "far fewer handshakes than requests")
	require.LessOrEqual(t, second, int64(callers/8), "the second burst reuses the connections of the first")

	// A caller's own transport is reused just as well.
	own := countTransport(&http.Transport{TLSClientConfig: cl.TLSConfig()})
	oc, err := client.New(client.Config{Endpoints: cl.ClientURLs(), Transport: own})
	require.NoError(t, err)
	defer oc.Close()
	for i := 0; i < 100; i++ {
		_, err := client.NewKeysAPI(oc).Get(ctxT(t, 20*time.Second), "/reuse", nil)
		require.NoError(t, err)
	}
	require.LessOrEqual(t, own.handshakes.Load(), int64(1), "a caller's transport: one handshake for sequential Gets")
}
