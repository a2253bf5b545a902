package https_test

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/internal/dnstest"
)

// TestTLSSRVDiscovery discovers a TLS cluster through
// _etcd-client-ssl._tcp records (in-test DNS server) and uses the https
// endpoints with the TLS transport; the members' certificates are checked
// against the SRV targets' host name.
func TestTLSSRVDiscovery(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3, ClientTLS: &testbed.TLSOptions{ClientCertAuth: true}})
	dns := dnstest.Start(t)
	var want []string
	for _, m := range cl.Members() {
		u, err := url.Parse(m.URL())
		require.NoError(t, err)
		port, err := strconv.Atoi(u.Port())
		require.NoError(t, err)
		dns.AddSRV("_etcd-client-ssl._tcp.example.test", 0, 0, uint16(port), "localhost.")
		want = append(want, "https://localhost:"+u.Port())
	}
	// Plain-http records of the same members, as a domain that publishes
	// both has: with TLS records present they are not used.
	for _, m := range cl.Members() {
		u, err := url.Parse(m.URL())
		require.NoError(t, err)
		port, err := strconv.Atoi(u.Port())
		require.NoError(t, err)
		dns.AddSRV("_etcd-client._tcp.example.test", 0, 0, uint16(port), "localhost.")
	}
	eps, err := (&client.SRVDiscoverer{Resolver: dns.Resolver()}).DiscoverContext(ctxT(t, 10*time.Second), "example.test")
	require.NoError(t, err)
	require.Equal(t, want, eps, "only the https endpoints")

	c, ct := newTLSClient(t, eps, clusterTLSInfo(cl), client.Config{})
	kapi := client.NewKeysAPI(c)
	_, err = kapi.Set(ctxT(t, 20*time.Second), "/srv", "tls", nil)
	require.NoError(t, err)
	resp, err := kapi.Get(ctxT(t, 20*time.Second), "/srv", &client.GetOptions{Quorum: true})
	require.NoError(t, err)
	require.Equal(t, "tls", resp.Node.Value)
	require.Positive(t, ct.handshakes.Load())

	// The same records with a CA that did not issue the members'
	// certificates: the call fails at once, saying so.
	other := testbed.NewCA(t, "untrusted CA")
	info := clusterTLSInfo(cl)
	info.TrustedCAFile = other.CertFile
	bad, bct := newTLSClient(t, eps, info, client.Config{})
	_, err = client.NewKeysAPI(bad).Get(ctxT(t, 20*time.Second), "/srv", nil)
	var te *client.TLSError
	require.ErrorAs(t, err, &te)
	require.Equal(t, client.TLSUnknownAuthority, te.Problem)
	require.LessOrEqual(t, bct.requests.Load(), int64(len(eps)))
}
