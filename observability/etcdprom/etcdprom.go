// Package etcdprom exports the metrics of a github.com/etcdv2/client
// Client to Prometheus.
//
// A Collector is both the client's Hooks (it counts calls and attempts as
// they happen) and a prometheus.Collector (it also reports, at each
// scrape, the health counters of the client it tracks):
//
//	m := etcdprom.New(etcdprom.Options{})
//	c, err := client.New(client.Config{Endpoints: eps, Hooks: m})
//	...
//	m.Track(c)
//	prometheus.MustRegister(m)
//
// With the default namespace, the metrics are:
//
//	etcd_client_calls_total{kind,outcome}                      counter
//	etcd_client_call_duration_seconds{kind,outcome}            histogram
//	etcd_client_calls_in_flight{kind}                          gauge
//	etcd_client_attempts_total{endpoint,kind,outcome,retry}    counter
//	etcd_client_attempt_duration_seconds{endpoint,kind,outcome} histogram
//	etcd_client_endpoint_ejections_total{endpoint}             counter
//	etcd_client_endpoint_ejected_seconds_total{endpoint}       counter
//	etcd_client_endpoint_probes_total{endpoint}                counter
//	etcd_client_endpoint_probe_failures_total{endpoint}        counter
//	etcd_client_endpoint_state{endpoint,state}                 gauge
//	etcd_client_endpoint_in_flight{endpoint}                   gauge
//	etcd_client_endpoint_watches{endpoint}                     gauge
//	etcd_client_endpoint_latency_seconds{endpoint}             gauge
//	etcd_client_retries_denied_total                           counter
//	etcd_client_stale_reads_total                              counter
//	etcd_client_attempt_timeout_seconds                        gauge
//
// kind is a client.RequestKind ("read", "quorum-read", "write", "watch",
// "cluster"), outcome a client.CallClass for calls and a
// client.AttemptClass for attempts ("ok", "connect", "timeout",
// "no_leader", ...), retry "true" for attempts after the first of a call,
// endpoint the endpoint's URL (never with user information), and state a
// client.HealthState ("healthy", "probation", "ejected"; the gauge is 1
// for the endpoint's state and 0 for the others). The first five come
// from the hooks and so count only what happened since the Collector was
// set in client.Config.Hooks; the others are read from the tracked
// client's client.Stats at each scrape.
package etcdprom

import (
	"context"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/etcdv2/client"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Collector. The zero value is usable.
type Options struct {
	// Namespace prefixes every metric name. Empty means "etcd_client".
	Namespace string
	// ConstLabels are added to every metric, for instance to tell apart
	// several clients registered in one registry. Nil means none.
	ConstLabels prometheus.Labels
	// Buckets are the upper bounds, in seconds, of the latency histograms.
	// Nil means DefaultBuckets().
	Buckets []float64
}

// DefaultBuckets returns the bounds, in seconds, of the duration
// histograms when Options.Buckets is nil: 0.5 ms doubling up to about 8 s,
// from a warm loopback read to the longest per-attempt timeouts.
func DefaultBuckets() []float64 {
	return []float64{0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192}
}

// Collector counts a client's calls and attempts (as its client.Hooks)
// and reports them, with the health counters of the client it tracks, as
// Prometheus metrics (as a prometheus.Collector). Create it with New. It
// is safe for concurrent use; its hooks do no I/O and only update
// counters in memory.
type Collector struct {
	calls           *prometheus.CounterVec
	callDuration    *prometheus.HistogramVec
	callsInFlight   *prometheus.GaugeVec
	attempts        *prometheus.CounterVec
	attemptDuration *prometheus.HistogramVec

	ejections, ejectedSeconds, probes, probeFailures *prometheus.Desc
	state, inFlight, watches, latency                *prometheus.Desc
	retriesDenied, staleReads, attemptTimeout        *prometheus.Desc
	tracked                                          atomic.Pointer[trackedClient]
}

type trackedClient struct{ sr client.StatsReporter }

var _ client.Hooks = (*Collector)(nil)
var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector configured by opts.
func New(opts Options) *Collector {
	ns := opts.Namespace
	if ns == "" {
		ns = "etcd_client"
	}
	buckets := opts.Buckets
	if buckets == nil {
		buckets = DefaultBuckets()
	}
	cl := opts.ConstLabels
	name := func(s string) string { return prometheus.BuildFQName(ns, "", s) }
	desc := func(s, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name(s), help, labels, cl)
	}
	return &Collector{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("calls_total"), Help: "Calls to the etcd cluster, by request kind and outcome.", ConstLabels: cl,
		}, []string{"kind", "outcome"}),
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: name("call_duration_seconds"), Help: "Duration of calls to the etcd cluster, all attempts included.", ConstLabels: cl, Buckets: buckets,
		}, []string{"kind", "outcome"}),
		callsInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: name("calls_in_flight"), Help: "Calls to the etcd cluster in progress.", ConstLabels: cl,
		}, []string{"kind"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("attempts_total"), Help: "Attempts of calls at each endpoint, by outcome; retry=\"true\" for attempts after the first of a call.", ConstLabels: cl,
		}, []string{"endpoint", "kind", "outcome", "retry"}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: name("attempt_duration_seconds"), Help: "Time from the start of an attempt to its answer or failure.", ConstLabels: cl, Buckets: buckets,
		}, []string{"endpoint", "kind", "outcome"}),
		ejections:      desc("endpoint_ejections_total", "Times the endpoint was ejected from selection.", "endpoint"),
		ejectedSeconds: desc("endpoint_ejected_seconds_total", "Time the endpoint spent ejected.", "endpoint"),
		probes:         desc("endpoint_probes_total", "Readmission probes of the endpoint.", "endpoint"),
		probeFailures:  desc("endpoint_probe_failures_total", "Readmission probes of the endpoint that failed.", "endpoint"),
		state:          desc("endpoint_state", "Health state of the endpoint: 1 for its state, 0 for the others.", "endpoint", "state"),
		inFlight:       desc("endpoint_in_flight", "Attempts at the endpoint waiting for response headers (watches not counted).", "endpoint"),
		watches:        desc("endpoint_watches", "Watch long polls open at the endpoint.", "endpoint"),
		latency:        desc("endpoint_latency_seconds", "Peak-sensitive moving average of the endpoint's time to response headers; 0 before any sample.", "endpoint"),
		retriesDenied:  desc("retries_denied_total", "Retries the retry budget refused."),
		staleReads:     desc("stale_reads_total", "Plain reads answered below the monotonic-read floor and sent again as quorum reads."),
		attemptTimeout: desc("attempt_timeout_seconds", "The per-attempt timeout now; 0 means none."),
	}
}

// Track makes the Collector report, at each scrape, the health counters of
// c (its client.Stats): ejections, probes, endpoint states, requests in
// flight per endpoint, retry-budget denials. Only the Client that New
// returns reports them; Track with another, or nil, reports none. A
// Collector tracks one client at a time: a later Track replaces it.
func (m *Collector) Track(c client.Client) {
	sr, ok := c.(client.StatsReporter)
	if !ok {
		m.tracked.Store(nil)
		return
	}
	m.tracked.Store(&trackedClient{sr: sr})
}

// CallStart implements client.Hooks.
func (m *Collector) CallStart(ctx context.Context, call client.CallInfo) context.Context {
	m.callsInFlight.WithLabelValues(call.Kind.String()).Inc()
	return ctx
}

// CallEnd implements client.Hooks.
func (m *Collector) CallEnd(_ context.Context, call client.CallInfo, end client.CallEnd) {
	kind, outcome := call.Kind.String(), end.Class.String()
	m.callsInFlight.WithLabelValues(kind).Dec()
	m.calls.WithLabelValues(kind, outcome).Inc()
	m.callDuration.WithLabelValues(kind, outcome).Observe(end.Duration.Seconds())
}

// AttemptStart implements client.Hooks.
func (m *Collector) AttemptStart(ctx context.Context, _ client.AttemptInfo) context.Context {
	return ctx
}

// AttemptEnd implements client.Hooks.
func (m *Collector) AttemptEnd(_ context.Context, a client.AttemptInfo, end client.AttemptEnd) {
	ep, kind, outcome := EndpointLabel(a.Endpoint), a.Call.Kind.String(), end.Class.String()
	retry := "false"
	if a.Retry {
		retry = "true"
	}
	m.attempts.WithLabelValues(ep, kind, outcome, retry).Inc()
	m.attemptDuration.WithLabelValues(ep, kind, outcome).Observe(end.Latency.Seconds())
}

// Describe implements prometheus.Collector.
func (m *Collector) Describe(ch chan<- *prometheus.Desc) {
	m.calls.Describe(ch)
	m.callDuration.Describe(ch)
	m.callsInFlight.Describe(ch)
	m.attempts.Describe(ch)
	m.attemptDuration.Describe(ch)
	for _, d := range []*prometheus.Desc{m.ejections, m.ejectedSeconds, m.probes, m.probeFailures, m.state, m.inFlight, m.watches, m.latency, m.retriesDenied, m.staleReads, m.attemptTimeout} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Collector) Collect(ch chan<- prometheus.Metric) {
	m.calls.Collect(ch)
	m.callDuration.Collect(ch)
	m.callsInFlight.Collect(ch)
	m.attempts.Collect(ch)
	m.attemptDuration.Collect(ch)
	t := m.tracked.Load()
	if t == nil {
		return
	}
	st := t.sr.Stats()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(m.retriesDenied, float64(st.RetriesDenied))
	counter(m.staleReads, float64(st.StaleReads))
	gauge(m.attemptTimeout, st.AttemptTimeout.Seconds())
	for _, e := range st.Endpoints {
		ep := EndpointLabel(e.URL)
		counter(m.ejections, float64(e.Ejections), ep)
		counter(m.ejectedSeconds, e.TimeEjected.Seconds(), ep)
		counter(m.probes, float64(e.Probes), ep)
		counter(m.probeFailures, float64(e.ProbeFailures), ep)
		for _, s := range []client.HealthState{client.StateHealthy, client.StateProbation, client.StateEjected} {
			v := 0.0
			if e.State == s {
				v = 1
			}
			gauge(m.state, v, ep, s.String())
		}
		gauge(m.inFlight, float64(e.InFlight), ep)
		gauge(m.watches, float64(e.Watches), ep)
		gauge(m.latency, e.Latency.Seconds(), ep)
	}
}

// EndpointLabel returns the endpoint URL u as it appears in labels: as it
// is, without user information should it carry any (the client refuses
// such endpoints, so this is a second line of defence).
func EndpointLabel(u string) string {
	if !strings.Contains(u, "@") {
		return u
	}
	p, err := url.Parse(u)
	if err != nil {
		return "invalid"
	}
	p.User = nil
	return p.String()
}
