package client

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/v2fake"
)

// noopHooks is a Hooks that does nothing: the cost of calling hooks.
type noopHooks struct{}

func (noopHooks) CallStart(ctx context.Context, _ CallInfo) context.Context       { return ctx }
func (noopHooks) AttemptStart(ctx context.Context, _ AttemptInfo) context.Context { return ctx }
func (noopHooks) AttemptEnd(context.Context, AttemptInfo, AttemptEnd)             {}
func (noopHooks) CallEnd(context.Context, CallInfo, CallEnd)                      {}

// cannedTransport answers every request at once with the same body,
// without a network: what remains is the client's own cost.
type cannedTransport struct{ body []byte }

func (t cannedTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200,
		Header: http.Header{
			"Content-Type":      {"application/json"},
			"X-Etcd-Cluster-Id": {"cdf818194e3a8c32"},
			"X-Etcd-Index":      {"7"},
		},
		Body:          io.NopCloser(bytes.NewReader(t.body)),
		ContentLength: int64(len(t.body)),
	}, nil
}

func (cannedTransport) CancelRequest(*http.Request) {}

// BenchmarkGetHooks measures a Get without hooks (the default) and with
// hooks that do nothing (what calling them costs), over loopback to an
// HTTP server and on a transport that answers without a network.
func BenchmarkGetHooks(b *testing.B) {
	body := []byte(etcdBodies[0])
	srv := v2fake.Start(b, v2fake.Options{NoCounts: true}) // no request log to grow
	srv.Set("/foo", "x")
	for _, net := range []string{"loopback", "canned"} {
		for _, bc := range []struct {
			name  string
			hooks Hooks
		}{{"none", nil}, {"noop", noopHooks{}}} {
			b.Run(net+"/"+bc.name, func(b *testing.B) {
				var tr CancelableTransport = cannedTransport{body}
				if net == "loopback" {
					ht := newDefaultTransport()
					defer ht.CloseIdleConnections()
					tr = ht
				}
				c, err := New(Config{Endpoints: []string{srv.URL}, Transport: tr, Hooks: bc.hooks})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				k := NewKeysAPI(c)
				ctx := context.Background()
				if _, err := k.Get(ctx, "/foo", nil); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				cpu := processCPU()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := k.Get(ctx, "/foo", nil); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu)
			})
		}
	}
}

// BenchmarkGetCannedParallel is the client's own cost of a Get from 256
// goroutines, on the transport that answers without a network, against
// raw net/http (http.Client, a request made per Get, the body read with
// io.ReadAll) on the same transport: the part of the CPU per Get that is
// the client's, which on a machine whose cores the members share is lost
// in the noise of the whole exchange (bench/notes.md). Both contenders'
// callers have a context with a timeout, as most callers' do.
func BenchmarkGetCannedParallel(b *testing.B) {
	body := []byte(etcdBodies[0])
	tr := cannedTransport{body}
	const url = "http://127.0.0.1:2379"
	b.Run("ours", func(b *testing.B) {
		c, err := New(Config{Endpoints: []string{url}, Transport: tr})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		k := NewKeysAPI(c)
		getsFrom256(b, func(ctx context.Context) error {
			_, err := k.Get(ctx, "/foo", nil)
			return err
		})
	})
	b.Run("raw", func(b *testing.B) {
		hc := &http.Client{Transport: tr}
		getsFrom256(b, func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v2/keys/foo", nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			return err
		})
	})
}

// getsFrom256 runs b.N calls of get from 256 goroutines,
// each with a context with a timeout, and reports the CPU per call.
func getsFrom256(b *testing.B, get func(ctx context.Context) error) {
	b.ReportAllocs()
	b.SetParallelism(max(1, 256/runtime.GOMAXPROCS(0)))
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := get(ctx); err != nil {
				b.Error(err)
			}
			cancel()
		}
	})
	reportCPU(b, cpu)
}
