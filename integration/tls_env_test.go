package integration_test

import (
	"net/http"
	"testing"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// withEnvTLS returns cfg with, when ETCDV2_TLS=1 (the bed then serves every
// cluster over https with client-certificate authentication) and
// cfg.Transport is nil, a TLS transport made from the bed's shared files
// by client.NewTLSTransport, so the same tests run over https.
func withEnvTLS(t *testing.T, cfg client.Config) client.Config {
	t.Helper()
	info := testbed.EnvTLS()
	if info == nil || cfg.Transport != nil {
		return cfg
	}
	tr, err := client.NewTLSTransport(client.TLSInfo{CertFile: info.Client.CertFile, KeyFile: info.Client.KeyFile, TrustedCAFile: info.CA.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	cfg.Transport = tr
	return cfg
}

// envHTTPTransport gives tr the bed's client TLS settings when
// ETCDV2_TLS=1, for raw requests and the official client, and returns it.
func envHTTPTransport(tr *http.Transport) *http.Transport {
	tr.TLSClientConfig = testbed.EnvTLSConfig()
	return tr
}
