// Package https_test runs the client against etcd clusters serving https:
// the TLS transport built from files, certificate rotation, SRV discovery
// of https endpoints, and what each kind of TLS failure returns.
package https_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

// clusterTLSInfo returns the TLSInfo of the files the bed made for c.
func clusterTLSInfo(c *testbed.Cluster) client.TLSInfo {
	i := c.ClientTLS()
	return client.TLSInfo{CertFile: i.Client.CertFile, KeyFile: i.Client.KeyFile, TrustedCAFile: i.CA.CertFile}
}

// counted is a transport that counts the requests it sends and the TLS
// handshakes it makes.
type counted struct {
	*http.Transport
	requests, handshakes atomic.Int64
}

// countTransport wraps t, whose DialTLSContext (NewTLSTransport's) or
// TLSClientConfig is then counted.
func countTransport(t *http.Transport) *counted {
	ct := &counted{Transport: t}
	if dial := t.DialTLSContext; dial != nil {
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err == nil {
				ct.handshakes.Add(1)
			}
			return conn, err
		}
	} else if t.TLSClientConfig != nil {
		cfg := t.TLSClientConfig.Clone()
		cfg.VerifyConnection = func(tls.ConnectionState) error {
			ct.handshakes.Add(1)
			return nil
		}
		t.TLSClientConfig = cfg
	}
	return ct
}

func (ct *counted) RoundTrip(r *http.Request) (*http.Response, error) {
	ct.requests.Add(1)
	return ct.Transport.RoundTrip(r)
}

// newTLSClient returns a client of endpoints over NewTLSTransport(info),
// closed at the end of the test, and the transport's counters.
func newTLSClient(t *testing.T, endpoints []string, info client.TLSInfo, cfg client.Config) (client.Client, *counted) {
	t.Helper()
	tr, err := client.NewTLSTransport(info)
	require.NoError(t, err)
	ct := countTransport(tr)
	cfg.Endpoints = endpoints
	cfg.Transport = ct
	c, err := client.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, ct
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
