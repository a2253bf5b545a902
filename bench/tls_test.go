package bench

import (
	"context"
	"crypto/tls"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	client "github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	official "go.etcd.io/etcd/client/v2"
)

// tlsEnv is the TLS cluster shared by the TLS benchmarks: 3 members
// serving https on their client URLs and requiring client certificates
// (etcd --client-cert-auth), with certificates made by the test bed.
type tlsEnv struct {
	cluster *testbed.Cluster
	leader  string // https client URL of the raft leader
	info    client.TLSInfo
	config  *tls.Config // the same files, for the official client and raw
}

var (
	tlsOnce   sync.Once
	tlsTB     *binaryTB
	tlsShared *tlsEnv
	tlsErr    error
)

// sharedTLSEnv starts the TLS cluster on first use and seeds getKey.
func sharedTLSEnv(b *testing.B) *tlsEnv {
	b.Helper()
	tlsOnce.Do(func() {
		tlsTB = &binaryTB{}
		defer func() {
			if r := recover(); r != nil {
				f, ok := r.(fatalError)
				if !ok {
					panic(r)
				}
				tlsErr = f
			}
		}()
		c := testbed.NewCluster(tlsTB, testbed.Options{Size: 3, ClientTLS: &testbed.TLSOptions{ClientCertAuth: true}})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		l, err := c.Leader(ctx)
		if err != nil {
			tlsErr = err
			return
		}
		ti := c.ClientTLS()
		e := &tlsEnv{
			cluster: c,
			leader:  l.URL(),
			info:    client.TLSInfo{CertFile: ti.Client.CertFile, KeyFile: ti.Client.KeyFile, TrustedCAFile: ti.CA.CertFile},
			config:  c.TLSConfig(),
		}
		tr := rawTransport(0)
		tr.TLSClientConfig = e.config.Clone()
		hc := &http.Client{Transport: tr}
		defer hc.CloseIdleConnections()
		if _, tlsErr = rawPut(ctx, hc, e.leader+"/v2/keys"+getKey, keyValue); tlsErr != nil {
			return
		}
		tlsShared = e
	})
	if tlsErr != nil {
		b.Fatalf("starting the TLS cluster: %v", tlsErr)
	}
	return tlsShared
}

// closeTLSShared stops the TLS cluster, if one was started.
func closeTLSShared() {
	if tlsTB != nil {
		tlsTB.close()
	}
}

// tlsContenders are ours (NewTLSTransport), official and raw on the TLS
// cluster's leader, each with its default connection pool and the same
// certificate files; n > 0 adds official-tuned and raw-tuned with n idle
// connections per host. Every transport is wrapped in a dialCounter: on
// https every new connection is one TLS handshake.
func tlsContenders(b *testing.B, e *tlsEnv, n int) []*contender {
	b.Helper()
	eps := []string{e.leader}
	withTLS := func(t *http.Transport) *http.Transport {
		// A copy each: a transport that negotiates HTTP/2 (net/http's
		// default does) adds "h2" to its config's NextProtos.
		t.TLSClientConfig = e.config.Clone()
		return t
	}
	suffix := "-" + strconv.Itoa(n)
	mk := []struct {
		key string
		fn  func() (*contender, error)
	}{
		{"tls-ours" + suffix, func() (*contender, error) {
			tr, err := client.NewTLSTransport(e.info)
			if err != nil {
				return nil, err
			}
			c, err := newOurs(nameOurs, eps, newDialCounter(tr))
			if err == nil {
				ourClose := c.close
				c.close = func() { ourClose(); tr.CloseIdleConnections() }
			}
			return c, err
		}},
		{"tls-official" + suffix, func() (*contender, error) {
			tr := withTLS(official.DefaultTransport.(*http.Transport).Clone())
			c, err := newOfficial(nameOfficial, eps, newDialCounter(tr))
			if err == nil {
				c.close = tr.CloseIdleConnections
			}
			return c, err
		}},
		{"tls-raw" + suffix, func() (*contender, error) {
			return newRaw(nameRaw, e.leader, newDialCounter(withTLS(rawTransport(0))), false), nil
		}},
	}
	if n > 0 {
		mk = append(mk, []struct {
			key string
			fn  func() (*contender, error)
		}{
			{"tls-official-tuned" + suffix, func() (*contender, error) {
				tr := withTLS(officialTuned(n))
				c, err := newOfficial(nameOfficialTuned, eps, newDialCounter(tr))
				if err == nil {
					c.close = tr.CloseIdleConnections
				}
				return c, err
			}},
			{"tls-raw-tuned" + suffix, func() (*contender, error) {
				return newRaw(nameRawTuned, e.leader, newDialCounter(withTLS(rawTransport(n))), false), nil
			}},
		}...)
	}
	var out []*contender
	for _, m := range mk {
		c, err := cached(m.key, m.fn)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// BenchmarkTLSGet is the latency of a Get of one 32-byte key over https
// with a client certificate (ns/op), and the TLS handshakes per 1000 Gets
// (new connections; after the warm-up call, 0 when the connection is
// reused).
func BenchmarkTLSGet(b *testing.B) {
	e := sharedTLSEnv(b)
	for _, c := range tlsContenders(b, e, 0) {
		b.Run(c.name, func(b *testing.B) {
			var d0 int64
			sequential(b, func(ctx context.Context) error {
				if d0 == 0 {
					d0 = c.dials()
				}
				return c.get(ctx, getKey, getOpts{})
			})
			b.StopTimer()
			b.ReportMetric(float64(c.dials()-d0)*1000/float64(b.N), "handshakes/1kgets")
		})
	}
}

// BenchmarkTLSGetParallel is Get throughput over https with 64 concurrent
// callers sharing one client (gets/s), and the TLS handshakes per 1000
// Gets.
func BenchmarkTLSGetParallel(b *testing.B) {
	e := sharedTLSEnv(b)
	const n = 64
	b.Run("c="+strconv.Itoa(n), func(b *testing.B) {
		for _, c := range tlsContenders(b, e, n) {
			b.Run(c.name, func(b *testing.B) {
				op := func(ctx context.Context) error { return c.get(ctx, getKey, getOpts{}) }
				if err := op(context.Background()); err != nil {
					b.Fatal(err)
				}
				d0 := c.dials()
				b.ReportAllocs()
				b.ResetTimer()
				elapsed, err := parallel(b.N, n, op)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "gets/s")
				b.ReportMetric(float64(c.dials()-d0)*1000/float64(b.N), "handshakes/1kgets")
			})
		}
	})
}
