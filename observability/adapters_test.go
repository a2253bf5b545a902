package observability_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestAdaptersOnAKilledMember runs a client with both adapters on a real
// 3-member etcd cluster, kills a member, and checks that the failed
// attempts, the retries that answered, the ejection and the failed probes
// show up with the right labels in a Prometheus scrape, in the
// OpenTelemetry metrics and in the spans; then stops (SIGSTOP) another
// member and checks its timeouts and ejection the same way.
func TestAdaptersOnAKilledMember(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3, Plain: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tm := newTelemetry(t)
	c, err := client.New(client.Config{
		Endpoints: cl.ClientURLs(),
		Selector:  client.RoundRobin(), // every endpoint gets attempts
		Hooks:     client.JoinHooks(tm.prom, tm.otel),
	})
	require.NoError(t, err)
	defer c.Close()
	tm.prom.Track(c)
	tm.otel.Track(c)
	kapi := client.NewKeysAPI(c)

	_, err = kapi.Set(ctx, "/metrics/k", "v", nil)
	require.NoError(t, err)
	reads := 0
	get := func() {
		t.Helper()
		_, err := kapi.Get(ctx, "/metrics/k", nil)
		if !client.IsKeyNotFound(err) { // a follower may not have applied the write yet: an answer all the same
			require.NoError(t, err)
		}
		reads++
	}
	for range 9 {
		get()
	}

	leader, err := cl.Leader(ctx)
	require.NoError(t, err)
	var victim *testbed.Member
	for _, m := range cl.Members() {
		if m != leader {
			victim = m
		}
	}
	victim.Kill(t)
	dead := victim.ClientURL()

	// Read until the dead member is ejected and a readmission probe
	// has failed on it.
	victimStats := func() client.EndpointStats {
		for _, e := range c.(client.StatsReporter).Stats().Endpoints {
			if e.URL == dead {
				return e
			}
		}
		t.Fatalf("%s is not an endpoint", dead)
		return client.EndpointStats{}
	}
	deadline := time.Now().Add(30 * time.Second)
	for e := victimStats(); e.Ejections == 0 || e.ProbeFailures == 0; e = victimStats() {
		require.True(t, time.Now().Before(deadline), "no ejection and failed probe of %s: %+v", dead, e)
		get()
		time.Sleep(20 * time.Millisecond) // the probe runs in the background, after the ejection
	}
	vs := victimStats()

	// Prometheus, through its HTTP handler and its own parser.
	_, fams := tm.scrape(t)
	assert.Equal(t, float64(reads), sum(fams, "etcd_client_calls_total", map[string]string{"kind": "read", "outcome": "ok"}))
	assert.Equal(t, float64(1), sum(fams, "etcd_client_calls_total", map[string]string{"kind": "write", "outcome": "ok"}))
	assert.Equal(t, float64(reads+1), sum(fams, "etcd_client_calls_total", nil), "no call failed")
	assert.Equal(t, float64(reads), sum(fams, "etcd_client_call_duration_seconds", map[string]string{"kind": "read", "outcome": "ok"}))
	assert.Equal(t, float64(0), sum(fams, "etcd_client_calls_in_flight", nil))
	failedAtDead := sum(fams, "etcd_client_attempts_total", map[string]string{"endpoint": dead, "outcome": "connect"}) +
		sum(fams, "etcd_client_attempts_total", map[string]string{"endpoint": dead, "outcome": "broken"})
	assert.GreaterOrEqual(t, failedAtDead, float64(1), "failed attempts at the dead member")
	retriedOK := sum(fams, "etcd_client_attempts_total", map[string]string{"outcome": "ok", "retry": "true"})
	assert.GreaterOrEqual(t, retriedOK, float64(1), "a retry answered")
	for _, m := range cl.Members() {
		if m != victim {
			assert.Equal(t, float64(0), sum(fams, "etcd_client_attempts_total", map[string]string{"endpoint": m.ClientURL(), "outcome": "connect"}))
			assert.Greater(t, sum(fams, "etcd_client_attempts_total", map[string]string{"endpoint": m.ClientURL(), "outcome": "ok"}), float64(0))
		}
	}
	attempts := sum(fams, "etcd_client_attempts_total", nil)
	assert.Equal(t, attempts, sum(fams, "etcd_client_attempt_duration_seconds", nil))
	assert.Equal(t, float64(reads+1)+failedAtDead, attempts, "one attempt per call, plus one per failure")
	assert.GreaterOrEqual(t, sum(fams, "etcd_client_endpoint_ejections_total", map[string]string{"endpoint": dead}), float64(vs.Ejections))
	assert.GreaterOrEqual(t, sum(fams, "etcd_client_endpoint_probes_total", map[string]string{"endpoint": dead}), float64(vs.Probes))
	assert.GreaterOrEqual(t, sum(fams, "etcd_client_endpoint_probe_failures_total", map[string]string{"endpoint": dead}), float64(1))
	assert.Equal(t, float64(1), sum(fams, "etcd_client_endpoint_state", map[string]string{"endpoint": dead, "state": "ejected"}))
	assert.Equal(t, float64(0), sum(fams, "etcd_client_endpoint_state", map[string]string{"endpoint": dead, "state": "healthy"}))
	assert.Equal(t, float64(0), sum(fams, "etcd_client_endpoint_ejections_total", map[string]string{"endpoint": leader.ClientURL()}))
	assert.Equal(t, float64(1), sum(fams, "etcd_client_endpoint_state", map[string]string{"endpoint": leader.ClientURL(), "state": "healthy"}))
	assert.Equal(t, float64(0), sum(fams, "etcd_client_retries_denied_total", nil))
	assert.Equal(t, float64(0), sum(fams, "etcd_client_endpoint_in_flight", nil), "nothing in flight")
	assert.Equal(t, float64(0), sum(fams, "etcd_client_endpoint_watches", nil))
	t.Logf("%d reads; %v attempts, %v failed at the dead member %s, %v retries answered; dead member: %+v", reads, attempts, failedAtDead, dead, retriedOK, vs)

	// OpenTelemetry metrics, from a ManualReader.
	rm := tm.collect(t)
	assert.Equal(t, int64(reads), otelSum(rm, "etcd.client.call.duration", map[string]string{"etcd.request.kind": "read", "etcd.outcome": "ok"}))
	assert.Equal(t, int64(0), otelSum(rm, "etcd.client.call.active", nil))
	assert.Equal(t, int64(attempts), otelSum(rm, "etcd.client.attempt.duration", nil))
	assert.Equal(t, int64(failedAtDead),
		otelSum(rm, "etcd.client.attempt.duration", map[string]string{"etcd.endpoint": dead, "etcd.outcome": "connect"})+
			max(0, otelSum(rm, "etcd.client.attempt.duration", map[string]string{"etcd.endpoint": dead, "etcd.outcome": "broken"})))
	assert.Equal(t, int64(retriedOK), otelSum(rm, "etcd.client.attempt.duration", map[string]string{"etcd.outcome": "ok", "etcd.retry": "true"}))
	assert.GreaterOrEqual(t, otelSum(rm, "etcd.client.endpoint.ejections", map[string]string{"etcd.endpoint": dead}), int64(vs.Ejections))
	assert.GreaterOrEqual(t, otelSum(rm, "etcd.client.endpoint.probe_failures", map[string]string{"etcd.endpoint": dead}), int64(1))
	assert.GreaterOrEqual(t, otelSum(rm, "etcd.client.endpoint.probes", map[string]string{"etcd.endpoint": dead}), int64(vs.Probes))
	assert.Equal(t, int64(1), otelSum(rm, "etcd.client.endpoint.state", map[string]string{"etcd.endpoint": dead, "etcd.endpoint.state": "ejected"}))
	assert.Equal(t, int64(0), otelSum(rm, "etcd.client.retries_denied", nil))
	assert.Equal(t, int64(0), otelSum(rm, "etcd.client.endpoint.in_flight", nil))

	// Spans: one per call, one child per attempt.
	spans := tm.spans.Ended()
	calls := map[string]sdktrace.ReadOnlySpan{}
	children := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.Name() != "etcd attempt" {
			calls[s.SpanContext().SpanID().String()] = s
		}
	}
	for _, s := range spans {
		if s.Name() == "etcd attempt" {
			p := s.Parent().SpanID().String()
			require.Contains(t, calls, p, "an attempt span's parent is a call span")
			children[p] = append(children[p], s)
		}
	}
	assert.Len(t, calls, reads+1)
	assert.Equal(t, int(attempts), len(spans)-len(calls))
	failovers := 0
	for id, call := range calls {
		kids := children[id]
		slices.SortFunc(kids, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
		assert.Equal(t, fmt.Sprint(len(kids)), spanAttr(call, "etcd.attempts"))
		assert.Equal(t, "ok", spanAttr(call, "etcd.outcome"))
		assert.Equal(t, codes.Unset, call.Status().Code)
		for i, k := range kids {
			assert.Equal(t, fmt.Sprint(i), spanAttr(k, "etcd.attempt"))
			assert.Equal(t, fmt.Sprint(i > 0), spanAttr(k, "etcd.retry"))
		}
		if len(kids) == 2 && spanAttr(kids[0], "etcd.endpoint") == dead {
			failovers++
			assert.Contains(t, []string{"connect", "broken"}, spanAttr(kids[0], "etcd.outcome"))
			assert.Equal(t, codes.Error, kids[0].Status().Code)
			assert.NotEmpty(t, kids[0].Events(), "the error is recorded")
			assert.Equal(t, "ok", spanAttr(kids[1], "etcd.outcome"))
			assert.Contains(t, []string{"200", "404"}, spanAttr(kids[1], "http.response.status_code"))
			assert.NotEqual(t, dead, spanAttr(kids[1], "etcd.endpoint"))
		}
	}
	assert.GreaterOrEqual(t, failovers, 1, "a call whose first attempt met the dead member and whose retry answered")
	assert.Equal(t, int(failedAtDead), failovers)

	// Then a member hangs (SIGSTOP): its attempts time out, the reads
	// fail over to the leader, and it is ejected after two timeouts.
	var hung *testbed.Member
	for _, m := range cl.Members() {
		if m != leader && m != victim {
			hung = m
		}
	}
	hung.Stop(t)
	defer hung.Continue(t)
	hungURL := hung.ClientURL()
	ejected := func() bool {
		for _, e := range c.(client.StatsReporter).Stats().Endpoints {
			if e.URL == hungURL {
				return e.Ejections > 0
			}
		}
		return false
	}
	deadline = time.Now().Add(40 * time.Second)
	for !ejected() {
		require.True(t, time.Now().Before(deadline), "%s not ejected", hungURL)
		get()
	}
	_, fams = tm.scrape(t)
	timeouts := sum(fams, "etcd_client_attempts_total", map[string]string{"endpoint": hungURL, "outcome": "timeout"})
	assert.GreaterOrEqual(t, timeouts, float64(2), "timeouts at the hung member")
	assert.Equal(t, float64(1), sum(fams, "etcd_client_endpoint_state", map[string]string{"endpoint": hungURL, "state": "ejected"}))
	assert.GreaterOrEqual(t, sum(fams, "etcd_client_endpoint_ejections_total", map[string]string{"endpoint": hungURL}), float64(1))
	assert.Equal(t, retriedOK+timeouts, sum(fams, "etcd_client_attempts_total", map[string]string{"outcome": "ok", "retry": "true"}),
		"each timeout was followed by a retry that answered")
	assert.Equal(t, float64(reads+1), sum(fams, "etcd_client_calls_total", map[string]string{"outcome": "ok"}))
	timedOut := 0
	for _, s := range tm.spans.Ended() {
		if s.Name() == "etcd attempt" && spanAttr(s, "etcd.outcome") == "timeout" {
			timedOut++
			assert.Equal(t, hungURL, spanAttr(s, "etcd.endpoint"))
			assert.Equal(t, codes.Error, s.Status().Code)
		}
	}
	assert.Equal(t, int(timeouts), timedOut)
	t.Logf("%v timeouts at the hung member %s", timeouts, hungURL)
}
