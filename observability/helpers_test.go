package observability_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/etcdv2/client/observability/etcdotel"
	"github.com/etcdv2/client/observability/etcdprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// telemetry is both adapters wired to real, in-memory backends: a
// Prometheus registry scraped over HTTP, an OpenTelemetry ManualReader and
// SpanRecorder.
type telemetry struct {
	prom   *etcdprom.Collector
	otel   *etcdotel.Hooks
	reg    *prometheus.Registry
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tm := &telemetry{
		prom:   etcdprom.New(etcdprom.Options{}),
		reg:    prometheus.NewPedanticRegistry(),
		reader: sdkmetric.NewManualReader(),
		spans:  tracetest.NewSpanRecorder(),
	}
	require.NoError(t, tm.reg.Register(tm.prom))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tm.reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tm.spans))
	t.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	var err error
	tm.otel, err = etcdotel.New(etcdotel.Options{MeterProvider: mp, TracerProvider: tp})
	require.NoError(t, err)
	return tm
}

// scrape reads the registry through promhttp's handler, as a Prometheus
// server would, and returns the text and the families parsed by
// Prometheus's own parser.
func (tm *telemetry) scrape(t *testing.T) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(tm.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	require.NoError(t, err)
	return string(b), fams
}

// sum adds the values (counter, gauge, or histogram count) of the metrics
// of family name whose labels include want.
func sum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	total := 0.0
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// collect reads the OpenTelemetry metrics.
func (tm *telemetry) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tm.reader.Collect(context.Background(), &rm))
	return rm
}

// otelSum adds the values (sum, gauge, or histogram count) of the data
// points of metric name whose attributes include want.
func otelSum(rm metricdata.ResourceMetrics, name string, want map[string]string) int64 {
	total := int64(-1)
	match := func(set interface {
		Value(k string) (string, bool)
	}) bool {
		for k, v := range want {
			if got, ok := set.Value(k); !ok || got != v {
				return false
			}
		}
		return true
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			total = 0
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if match(attrs{p.Attributes.ToSlice()}) {
						total += p.Value
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if match(attrs{p.Attributes.ToSlice()}) {
						total += p.Value
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if match(attrs{p.Attributes.ToSlice()}) {
						total += int64(p.Count)
					}
				}
			}
		}
	}
	return total
}

// attrs looks attributes up by key, with their values as text.
type attrs struct{ kvs []attribute.KeyValue }

func (a attrs) Value(k string) (string, bool) {
	for _, kv := range a.kvs {
		if string(kv.Key) == k {
			return kv.Value.String(), true
		}
	}
	return "", false
}

func spanAttr(s sdktrace.ReadOnlySpan, k string) string {
	v, _ := attrs{s.Attributes()}.Value(k)
	return v
}
