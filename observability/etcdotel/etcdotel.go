// Package etcdotel exports the metrics and traces of a
// github.com/etcdv2/client Client to OpenTelemetry.
//
// Hooks is the client's client.Hooks: it records calls and attempts in
// histograms and makes one span per call with one child span per attempt;
// with Track it also reports the health counters of the client:
//
//	h, err := etcdotel.New(etcdotel.Options{MeterProvider: mp, TracerProvider: tp})
//	...
//	c, err := client.New(client.Config{Endpoints: eps, Hooks: h})
//	...
//	h.Track(c)
//
// Metrics (instrumentation scope ScopeName):
//
//	etcd.client.call.duration        histogram, s   etcd.request.kind, etcd.outcome
//	etcd.client.call.active          updowncounter  etcd.request.kind
//	etcd.client.attempt.duration     histogram, s   etcd.endpoint, etcd.request.kind, etcd.outcome, etcd.retry
//	etcd.client.endpoint.ejections   counter        etcd.endpoint
//	etcd.client.endpoint.probes      counter        etcd.endpoint
//	etcd.client.endpoint.probe_failures counter     etcd.endpoint
//	etcd.client.endpoint.state       gauge          etcd.endpoint, etcd.endpoint.state
//	etcd.client.endpoint.in_flight   gauge          etcd.endpoint
//	etcd.client.endpoint.watches     gauge          etcd.endpoint
//	etcd.client.retries_denied       counter
//	etcd.client.stale_reads          counter
//
// The histograms' counts are the numbers of calls and attempts. The
// attribute values are those of the Prometheus adapter (etcdprom): kinds
// such as "read", outcomes such as "ok" or "connect" (a client.CallClass
// for calls, a client.AttemptClass for attempts), etcd.retry true for
// attempts after the first of a call, endpoint URLs without user
// information; the state gauge is 1 for the endpoint's state and 0 for
// the others. The last six are read from the tracked client's
// client.Stats at each collection.
//
// Spans: a call is a span named "etcd " + kind (such as "etcd read"), of
// kind client, with attributes etcd.request.kind, http.request.method,
// etcd.outcome, etcd.attempts and, when an answer came,
// http.response.status_code. Each attempt is a child span named
// "etcd attempt" with etcd.endpoint, server.address, server.port,
// etcd.attempt (0 for the first), etcd.round, etcd.retry, etcd.outcome and
// http.response.status_code. A call span whose outcome is not "ok", and
// an attempt span that failed (any outcome but "ok" and "stale"), has
// status Error with the outcome as description and the error recorded as
// an event. Spans carry neither keys nor values nor credentials.
package etcdotel

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/etcdv2/client"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/etcdv2/client/observability/etcdotel"

// Attribute keys of the metrics and spans.
const (
	// KeyKind is the request kind, a client.RequestKind such as "read".
	KeyKind = attribute.Key("etcd.request.kind")
	// KeyOutcome is a client.CallClass on calls, a client.AttemptClass on
	// attempts, such as "ok" or "connect".
	KeyOutcome = attribute.Key("etcd.outcome")
	// KeyEndpoint is the endpoint's URL, without user information.
	KeyEndpoint = attribute.Key("etcd.endpoint")
	// KeyRetry is true on attempts after the first of a call.
	KeyRetry = attribute.Key("etcd.retry")
	// KeyAttempt counts the attempts made before this one in its call.
	KeyAttempt = attribute.Key("etcd.attempt")
	// KeyAttempts is the number of attempts a call made.
	KeyAttempts = attribute.Key("etcd.attempts")
	// KeyRound counts the passes over the endpoints completed before the
	// attempt (see client.Config.Rounds).
	KeyRound = attribute.Key("etcd.round")
	// KeyEndpointState is a client.HealthState, such as "ejected".
	KeyEndpointState = attribute.Key("etcd.endpoint.state")
	// KeyMethod is the HTTP method of a call.
	KeyMethod = attribute.Key("http.request.method")
	// KeyStatusCode is the HTTP status of the answer.
	KeyStatusCode = attribute.Key("http.response.status_code")
	// KeyServerAddress is the endpoint's host.
	KeyServerAddress = attribute.Key("server.address")
	// KeyServerPort is the endpoint's port, when it names one.
	KeyServerPort = attribute.Key("server.port")
)

// Options configures Hooks. The zero value uses the global providers.
type Options struct {
	// MeterProvider makes the meter. Nil means otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// TracerProvider makes the tracer. Nil means otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// Buckets are the explicit bounds, in seconds, of the duration
	// histograms. Nil means DefaultBuckets().
	Buckets []float64
}

// DefaultBuckets returns the bounds, in seconds, of the duration
// histograms when Options.Buckets is nil: 0.5 ms doubling up to about 8 s,
// from a warm loopback read to the longest per-attempt timeouts.
func DefaultBuckets() []float64 {
	return []float64{0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192}
}

// Hooks records a client's calls and attempts as OpenTelemetry metrics
// and spans (it is a client.Hooks), and the health counters of the client
// it tracks. Create it with New. It is safe for concurrent use.
type Hooks struct {
	tracer          trace.Tracer
	callDuration    metric.Float64Histogram
	callActive      metric.Int64UpDownCounter
	attemptDuration metric.Float64Histogram
	reg             metric.Registration
	tracked         atomic.Pointer[trackedClient]

	// The attribute sets of the measurements, made once.
	kindOpts [kinds]metric.MeasurementOption
	callOpts [kinds][classes]metric.MeasurementOption
	attMu    sync.RWMutex
	attOpts  map[attemptKey]metric.MeasurementOption
	epAttrs  map[string][]attribute.KeyValue
}

// kinds and classes bound the values of client.RequestKind and
// client.CallClass that get sets of their own; others share the last.
const (
	kinds   = 8
	classes = 16
)

type attemptKey struct {
	endpoint string
	kind     client.RequestKind
	class    client.AttemptClass
	retry    bool
}

type trackedClient struct{ sr client.StatsReporter }

var _ client.Hooks = (*Hooks)(nil)

// New returns Hooks that record with the providers of opts. It fails only
// when the meter refuses an instrument.
func New(opts Options) (*Hooks, error) {
	mp, tp := opts.MeterProvider, opts.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	buckets := opts.Buckets
	if buckets == nil {
		buckets = DefaultBuckets()
	}
	meter := mp.Meter(ScopeName)
	h := &Hooks{tracer: tp.Tracer(ScopeName), attOpts: map[attemptKey]metric.MeasurementOption{}, epAttrs: map[string][]attribute.KeyValue{}}
	for k := range kinds {
		kind := KeyKind.String(client.RequestKind(k).String())
		h.kindOpts[k] = metric.WithAttributeSet(attribute.NewSet(kind))
		for c := range classes {
			h.callOpts[k][c] = metric.WithAttributeSet(attribute.NewSet(kind, KeyOutcome.String(client.CallClass(c).String())))
		}
	}
	var err error
	if h.callDuration, err = meter.Float64Histogram("etcd.client.call.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of calls to the etcd cluster, all attempts included."),
		metric.WithExplicitBucketBoundaries(buckets...)); err != nil {
		return nil, err
	}
	if h.callActive, err = meter.Int64UpDownCounter("etcd.client.call.active", metric.WithUnit("{call}"),
		metric.WithDescription("Calls to the etcd cluster in progress.")); err != nil {
		return nil, err
	}
	if h.attemptDuration, err = meter.Float64Histogram("etcd.client.attempt.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from the start of an attempt at an endpoint to its answer or failure."),
		metric.WithExplicitBucketBoundaries(buckets...)); err != nil {
		return nil, err
	}
	ejections, err := meter.Int64ObservableCounter("etcd.client.endpoint.ejections", metric.WithUnit("{ejection}"),
		metric.WithDescription("Times the endpoint was ejected from selection."))
	if err != nil {
		return nil, err
	}
	probes, err := meter.Int64ObservableCounter("etcd.client.endpoint.probes", metric.WithUnit("{probe}"),
		metric.WithDescription("Readmission probes of the endpoint."))
	if err != nil {
		return nil, err
	}
	probeFailures, err := meter.Int64ObservableCounter("etcd.client.endpoint.probe_failures", metric.WithUnit("{probe}"),
		metric.WithDescription("Readmission probes of the endpoint that failed."))
	if err != nil {
		return nil, err
	}
	state, err := meter.Int64ObservableGauge("etcd.client.endpoint.state",
		metric.WithDescription("Health state of the endpoint: 1 for its state, 0 for the others."))
	if err != nil {
		return nil, err
	}
	inFlight, err := meter.Int64ObservableGauge("etcd.client.endpoint.in_flight", metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts at the endpoint waiting for response headers (watches not counted)."))
	if err != nil {
		return nil, err
	}
	watches, err := meter.Int64ObservableGauge("etcd.client.endpoint.watches", metric.WithUnit("{watch}"),
		metric.WithDescription("Watch long polls open at the endpoint."))
	if err != nil {
		return nil, err
	}
	denied, err := meter.Int64ObservableCounter("etcd.client.retries_denied", metric.WithUnit("{retry}"),
		metric.WithDescription("Retries the retry budget refused."))
	if err != nil {
		return nil, err
	}
	stale, err := meter.Int64ObservableCounter("etcd.client.stale_reads", metric.WithUnit("{read}"),
		metric.WithDescription("Plain reads answered below the monotonic-read floor and sent again as quorum reads."))
	if err != nil {
		return nil, err
	}
	states := []client.HealthState{client.StateHealthy, client.StateProbation, client.StateEjected}
	h.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		t := h.tracked.Load()
		if t == nil {
			return nil
		}
		st := t.sr.Stats()
		o.ObserveInt64(denied, int64(st.RetriesDenied))
		o.ObserveInt64(stale, int64(st.StaleReads))
		for _, e := range st.Endpoints {
			ep := KeyEndpoint.String(EndpointLabel(e.URL))
			set := metric.WithAttributes(ep)
			o.ObserveInt64(ejections, int64(e.Ejections), set)
			o.ObserveInt64(probes, int64(e.Probes), set)
			o.ObserveInt64(probeFailures, int64(e.ProbeFailures), set)
			o.ObserveInt64(inFlight, int64(e.InFlight), set)
			o.ObserveInt64(watches, int64(e.Watches), set)
			for _, s := range states {
				v := int64(0)
				if e.State == s {
					v = 1
				}
				o.ObserveInt64(state, v, metric.WithAttributes(ep, KeyEndpointState.String(s.String())))
			}
		}
		return nil
	}, ejections, probes, probeFailures, state, inFlight, watches, denied, stale)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Track makes the Hooks report the health counters of c (its
// client.Stats) at each collection: ejections, probes, endpoint states,
// requests in flight per endpoint, retry-budget denials. Only the Client
// that New returns reports them; Track with another, or nil, reports
// none. Hooks tracks one client at a time: a later Track replaces it.
func (h *Hooks) Track(c client.Client) {
	sr, ok := c.(client.StatsReporter)
	if !ok {
		h.tracked.Store(nil)
		return
	}
	h.tracked.Store(&trackedClient{sr: sr})
}

// Close unregisters the callback that reports the tracked client's
// counters; the hooks go on recording calls and attempts.
func (h *Hooks) Close() error { return h.reg.Unregister() }

// CallStart implements client.Hooks: it starts the call's span.
func (h *Hooks) CallStart(ctx context.Context, call client.CallInfo) context.Context {
	kind := call.Kind.String()
	h.callActive.Add(ctx, 1, h.kindOpts[min(int(call.Kind), kinds-1)])
	ctx, _ = h.tracer.Start(ctx, "etcd "+kind, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(KeyKind.String(kind), KeyMethod.String(call.Method)))
	return ctx
}

// CallEnd implements client.Hooks: it records the call and ends its span.
func (h *Hooks) CallEnd(ctx context.Context, call client.CallInfo, end client.CallEnd) {
	k := min(int(call.Kind), kinds-1)
	h.callActive.Add(ctx, -1, h.kindOpts[k])
	h.callDuration.Record(ctx, end.Duration.Seconds(), h.callOpts[k][min(int(end.Class), classes-1)])
	outcome := end.Class.String()
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(KeyOutcome.String(outcome), KeyAttempts.Int(end.Attempts))
	if end.StatusCode != 0 {
		span.SetAttributes(KeyStatusCode.Int(end.StatusCode))
	}
	if end.Class != client.CallOK {
		if end.Err != nil {
			span.RecordError(end.Err)
		}
		span.SetStatus(codes.Error, outcome)
	}
	span.End()
}

// AttemptStart implements client.Hooks: it starts the attempt's span, a
// child of the call's.
func (h *Hooks) AttemptStart(ctx context.Context, a client.AttemptInfo) context.Context {
	ep := h.endpointAttrs(a.Endpoint)
	attrs := make([]attribute.KeyValue, 0, len(ep)+3)
	attrs = append(attrs, ep...)
	attrs = append(attrs, KeyAttempt.Int(a.Attempt), KeyRound.Int(a.Round), KeyRetry.Bool(a.Retry))
	ctx, _ = h.tracer.Start(ctx, "etcd attempt", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx
}

// AttemptEnd implements client.Hooks: it records the attempt and ends its
// span.
func (h *Hooks) AttemptEnd(ctx context.Context, a client.AttemptInfo, end client.AttemptEnd) {
	outcome := end.Class.String()
	h.attemptDuration.Record(ctx, end.Latency.Seconds(), h.attemptOpt(attemptKey{a.Endpoint, a.Call.Kind, end.Class, a.Retry}))
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(KeyOutcome.String(outcome))
	if end.StatusCode != 0 {
		span.SetAttributes(KeyStatusCode.Int(end.StatusCode))
	}
	if end.Err != nil {
		span.RecordError(end.Err)
		span.SetStatus(codes.Error, outcome)
	}
	span.End()
}

// attemptOpt returns the attribute set of the attempts of key, made the
// first time it is needed.
func (h *Hooks) attemptOpt(key attemptKey) metric.MeasurementOption {
	h.attMu.RLock()
	o, ok := h.attOpts[key]
	h.attMu.RUnlock()
	if ok {
		return o
	}
	o = metric.WithAttributeSet(attribute.NewSet(KeyEndpoint.String(EndpointLabel(key.endpoint)),
		KeyKind.String(key.kind.String()), KeyOutcome.String(key.class.String()), KeyRetry.Bool(key.retry)))
	h.attMu.Lock()
	if len(h.attOpts) < maxAttemptSets {
		h.attOpts[key] = o
	}
	h.attMu.Unlock()
	return o
}

// endpointAttrs returns the span attributes of endpoint u: etcd.endpoint,
// server.address and server.port.
func (h *Hooks) endpointAttrs(u string) []attribute.KeyValue {
	h.attMu.RLock()
	kv, ok := h.epAttrs[u]
	h.attMu.RUnlock()
	if ok {
		return kv
	}
	ep := EndpointLabel(u)
	kv = []attribute.KeyValue{KeyEndpoint.String(ep)}
	if p, err := url.Parse(ep); err == nil {
		kv = append(kv, KeyServerAddress.String(p.Hostname()))
		if port, err := strconv.Atoi(p.Port()); err == nil {
			kv = append(kv, KeyServerPort.Int(port))
		}
	}
	h.attMu.Lock()
	if len(h.epAttrs) < maxAttemptSets {
		h.epAttrs[u] = kv
	}
	h.attMu.Unlock()
	return kv
}

// maxAttemptSets bounds the cache of attempt attribute sets (a client
// whose endpoints change often would otherwise grow it for ever).
const maxAttemptSets = 4096

// EndpointLabel returns the endpoint URL u as it appears in attributes: as
// it is, without user information should it carry any (the client
// refuses such endpoints, so this is a second line of defence).
func EndpointLabel(u string) string {
	if !strings.Contains(u, "@") {
		return u
	}
	p, err := url.Parse(u)
	if err != nil {
		return "invalid"
	}
	if p.User == nil {
		return u
	}
	p.User = nil
	return p.String()
}
