package etcdotel_test

import (
	"context"
	"testing"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/observability/etcdotel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// points counts the data points of each metric.
func points(t *testing.T, r *sdkmetric.ManualReader) map[string]int {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]int{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, etcdotel.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				out[m.Name] += len(d.DataPoints)
			case metricdata.Gauge[int64]:
				out[m.Name] += len(d.DataPoints)
			}
		}
	}
	return out
}

// TestTrackAndClose checks which health metrics are reported with and
// without a tracked client, and after Close (the client does no I/O
// before its first request).
func TestTrackAndClose(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer mp.Shutdown(context.Background())
	h, err := etcdotel.New(etcdotel.Options{MeterProvider: mp})
	require.NoError(t, err)
	assert.Empty(t, points(t, r))

	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}})
	require.NoError(t, err)
	defer c.Close()
	h.Track(c)
	got := points(t, r)
	assert.Equal(t, 2, got["etcd.client.endpoint.ejections"])
	assert.Equal(t, 6, got["etcd.client.endpoint.state"], "three states of two endpoints")
	assert.Equal(t, 1, got["etcd.client.retries_denied"])

	h.Track(nil)
	assert.Empty(t, points(t, r), "Track(nil) stops reporting")
	h.Track(c)
	require.NoError(t, h.Close())
	assert.Empty(t, points(t, r), "Close unregisters the callback")
}

func TestEndpointLabel(t *testing.T) {
	assert.Equal(t, "http://10.0.0.1:2379", etcdotel.EndpointLabel("http://10.0.0.1:2379"))
	assert.Equal(t, "http://10.0.0.1:2379", etcdotel.EndpointLabel("http://root:pw@10.0.0.1:2379"))
	assert.Equal(t, "invalid", etcdotel.EndpointLabel("http://a@[::1"))
}
