package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// noopHooks is a Hooks that does nothing: the cost of calling hooks.
type noopHooks struct{}

func (noopHooks) CallStart(ctx context.Context, _ CallInfo) context.Context       { return ctx }
func (noopHooks) AttemptStart(ctx context.Context, _ AttemptInfo) context.Context { return ctx }
func (noopHooks) AttemptEnd(context.Context, AttemptInfo, AttemptEnd)             {}
func (noopHooks) CallEnd(context.Context, CallInfo, CallEnd)                      {}

// BenchmarkGetHooks measures a Get over loopback without hooks (the
// default), and with hooks that do nothing: what calling them costs.
func BenchmarkGetHooks(b *testing.B) {
	body := []byte(etcdBodies[0])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["X-Etcd-Cluster-Id"] = []string{"cdf818194e3a8c32"}
		h["X-Etcd-Index"] = []string{"7"}
		w.Write(body)
	}))
	defer srv.Close()
	for _, bc := range []struct {
		name  string
		hooks Hooks
	}{{"none", nil}, {"noop", noopHooks{}}} {
		b.Run(bc.name, func(b *testing.B) {
			tr := newDefaultTransport()
			defer tr.CloseIdleConnections()
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
