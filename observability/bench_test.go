package observability_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/observability/etcdotel"
	"github.com/etcdv2/client/observability/etcdprom"
	"github.com/prometheus/client_golang/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// cannedTransport answers every request at once with one key, without a
// network: what remains is the client's cost and the adapters'.
type cannedTransport struct{}

const cannedBody = `{"action":"get","node":{"key":"/foo","value":"bar","modifiedIndex":7,"createdIndex":7}}`

func (cannedTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200,
		Header: http.Header{
			"Content-Type":      {"application/json"},
			"X-Etcd-Cluster-Id": {"cdf818194e3a8c32"},
			"X-Etcd-Index":      {"7"},
		},
		Body:          io.NopCloser(bytes.NewReader([]byte(cannedBody))),
		ContentLength: int64(len(cannedBody)),
	}, nil
}

func (cannedTransport) CancelRequest(*http.Request) {}

// BenchmarkGetAdapters measures what each adapter adds to a Get: none,
// Prometheus, OpenTelemetry (metrics, and sampled spans through the SDK
// with no exporter), both.
func BenchmarkGetAdapters(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer tp.Shutdown(context.Background())
	prom := etcdprom.New(etcdprom.Options{})
	prometheus.NewRegistry().MustRegister(prom)
	otelHooks, err := etcdotel.New(etcdotel.Options{MeterProvider: mp, TracerProvider: tp})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		hooks client.Hooks
	}{{"none", nil}, {"prometheus", prom}, {"otel", otelHooks}, {"both", client.JoinHooks(prom, otelHooks)}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}, Transport: cannedTransport{}, Hooks: bc.hooks})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			k := client.NewKeysAPI(c)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.Get(ctx, "/foo", nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
