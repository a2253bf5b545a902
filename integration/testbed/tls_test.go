package testbed_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client/integration/testbed"
)

// tlsGet does GET url with cfg, no connection reuse, and returns the
// status or the error.
func tlsGet(url string, cfg *tls.Config) (int, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil, TLSClientConfig: cfg}}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func TestTLSClientCertAuthPeerTLS(t *testing.T) {
	c := testbed.NewCluster(t, testbed.Options{
		Size:         3,
		ProxyClients: true,
		ClientTLS:    &testbed.TLSOptions{ClientCertAuth: true},
		PeerTLS:      &testbed.TLSOptions{ClientCertAuth: true},
	})
	info := c.ClientTLS()
	require.NotNil(t, info)
	for _, m := range c.Members() {
		require.True(t, strings.HasPrefix(m.URL(), "https://"), m.URL())
		require.True(t, strings.HasPrefix(m.ClientURL(), "https://"), m.ClientURL())
		require.True(t, strings.HasPrefix(m.PeerURL(), "https://"), m.PeerURL())
		st, err := tlsGet(m.URL()+"/v2/keys/", c.TLSConfig())
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, st)
	}
	u := c.Members()[0].ClientURL() + "/v2/keys/"

	// The server requires a client certificate.
	_, err := tlsGet(u, &tls.Config{RootCAs: info.CA.Pool()})
	require.Error(t, err)

	// A certificate from another CA is refused by the server, and the
	// client refuses the server's certificate without its CA.
	other := testbed.NewCA(t, "other")
	bad := other.Issue(t, testbed.CertSpec{ClientOnly: true})
	_, err = tlsGet(u, &tls.Config{RootCAs: info.CA.Pool(), Certificates: []tls.Certificate{bad.TLSCertificate()}})
	require.Error(t, err)
	_, err = tlsGet(u, &tls.Config{RootCAs: other.Pool(), Certificates: []tls.Certificate{info.Client.TLSCertificate()}})
	var ua x509.UnknownAuthorityError
	require.ErrorAs(t, err, &ua)

	// The name "localhost" is on the certificate too.
	st, err := tlsGet(strings.Replace(u, "127.0.0.1", "localhost", 1), c.TLSConfig())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st)
}

func TestTLSExpiredServerCertAndRotation(t *testing.T) {
	now := time.Now()
	c := testbed.NewCluster(t, testbed.Options{ClientTLS: &testbed.TLSOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}})
	m := c.Members()[0]
	require.True(t, m.ServerCert().Cert.NotAfter.Before(now))
	strict := &tls.Config{RootCAs: c.ClientTLS().CA.Pool()}
	_, err := tlsGet(m.URL()+"/version", strict)
	var inv x509.CertificateInvalidError
	require.True(t, errors.As(err, &inv) && inv.Reason == x509.Expired, "%v", err)

	// A new certificate is served to the next connection, no restart.
	m.RotateServerCert(t, nil, testbed.CertSpec{})
	st, err := tlsGet(m.URL()+"/version", strict)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st)
}

func TestTLSPeerOnly(t *testing.T) {
	c := testbed.NewCluster(t, testbed.Options{Size: 3, ProxyPeers: true, PeerTLS: &testbed.TLSOptions{ClientCertAuth: true}})
	require.Nil(t, c.ClientTLS())
	for _, m := range c.Members() {
		require.True(t, strings.HasPrefix(m.ClientURL(), "http://"), m.ClientURL())
		require.True(t, strings.HasPrefix(m.PeerURL(), "https://"), m.PeerURL())
	}
	// Raft works over the https peer URLs (through the peer proxies): a
	// write through one member is read by quorum from another.
	u0, u1 := c.Members()[0].URL(), c.Members()[2].URL()
	st, err := put(t, u0, "peer-tls", "v")
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, st)
	st, err = tlsGet(u1+"/v2/keys/peer-tls?quorum=true", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st)
}
