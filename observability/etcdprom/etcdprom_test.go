package etcdprom_test

import (
	"testing"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/observability/etcdprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTrack checks which health metrics a Collector reports with and
// without a tracked client, under its namespace and constant labels (the
// client does no I/O before its first request).
func TestTrack(t *testing.T) {
	m := etcdprom.New(etcdprom.Options{Namespace: "app_etcd", ConstLabels: prometheus.Labels{"cluster": "a"}})
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(m))
	names := func() map[string]int {
		fams, err := reg.Gather()
		require.NoError(t, err)
		out := map[string]int{}
		for _, f := range fams {
			for _, mt := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range mt.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				assert.Equal(t, "a", labels["cluster"], f.GetName())
			}
			out[f.GetName()] = len(f.GetMetric())
		}
		return out
	}
	assert.Empty(t, names(), "nothing before a call or a tracked client")

	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}})
	require.NoError(t, err)
	defer c.Close()
	m.Track(c)
	got := names()
	assert.Equal(t, 2, got["app_etcd_endpoint_ejections_total"])
	assert.Equal(t, 6, got["app_etcd_endpoint_state"], "three states of two endpoints")
	assert.Equal(t, 1, got["app_etcd_retries_denied_total"])
	healthy, err := testutil.GatherAndCount(reg, "app_etcd_endpoint_state")
	require.NoError(t, err)
	assert.Equal(t, 6, healthy)
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != "app_etcd_endpoint_state" {
			continue
		}
		for _, mt := range f.GetMetric() {
			want := 0.0
			for _, l := range mt.GetLabel() {
				if l.GetName() == "state" && l.GetValue() == "healthy" {
					want = 1
				}
			}
			assert.Equal(t, want, mt.GetGauge().GetValue(), "%v", mt.GetLabel())
		}
	}

	m.Track(nil)
	assert.Empty(t, names(), "Track(nil) stops reporting")
}

func TestEndpointLabel(t *testing.T) {
	assert.Equal(t, "http://10.0.0.1:2379", etcdprom.EndpointLabel("http://10.0.0.1:2379"))
	assert.Equal(t, "http://10.0.0.1:2379", etcdprom.EndpointLabel("http://root:pw@10.0.0.1:2379"))
	assert.Equal(t, "https://h:1/p", etcdprom.EndpointLabel("https://pw@h:1/p"))
	assert.Equal(t, "invalid", etcdprom.EndpointLabel("http://a@[::1"))
}
