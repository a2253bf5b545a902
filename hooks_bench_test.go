package client

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

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
