package etcdotel_test

import (
	"context"
	"fmt"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/observability/etcdotel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Example records a client's calls as OpenTelemetry spans and metrics. A
// program passes its own providers (with OTLP exporters, say); here they
// keep everything in memory to print it.
func Example() {
	cluster, stop := testbed.ExampleCluster(testbed.Options{})
	defer stop()

	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	hooks, err := etcdotel.New(etcdotel.Options{MeterProvider: mp, TracerProvider: tp})
	if err != nil {
		panic(err)
	}
	c, err := client.New(client.Config{Endpoints: cluster.ClientURLs(), Hooks: hooks})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	hooks.Track(c) // ejections, probes, endpoint states at each collection

	ctx := context.Background()
	kapi := client.NewKeysAPI(c)
	if _, err := kapi.Set(ctx, "/config/a", "1", nil); err != nil {
		panic(err)
	}
	if _, err := kapi.Get(ctx, "/config/a", nil); err != nil {
		panic(err)
	}

	// Each call is a span with one child span per attempt.
	for _, s := range spans.Ended() {
		fmt.Print(s.Name())
		for _, a := range s.Attributes() {
			switch a.Key {
			case etcdotel.KeyOutcome, etcdotel.KeyAttempts, etcdotel.KeyRetry:
				fmt.Printf(" %s=%s", a.Key, a.Value.String())
			}
		}
		fmt.Println()
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		panic(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "etcd.client.call.duration" {
				n := uint64(0)
				for _, p := range h.DataPoints {
					n += p.Count
				}
				fmt.Println(m.Name, "count", n)
			}
		}
	}
	// Output:
	// etcd attempt etcd.retry=false etcd.outcome=ok
	// etcd write etcd.outcome=ok etcd.attempts=1
	// etcd attempt etcd.retry=false etcd.outcome=ok
	// etcd read etcd.outcome=ok etcd.attempts=1
	// etcd.client.call.duration count 2
}
