package etcdprom_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/observability/etcdprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// Example counts a client's calls and serves them to Prometheus.
func Example() {
	cluster, stop := testbed.ExampleCluster(testbed.Options{})
	defer stop()

	metrics := etcdprom.New(etcdprom.Options{})
	c, err := client.New(client.Config{Endpoints: cluster.ClientURLs(), Hooks: metrics})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	metrics.Track(c) // ejections, probes, endpoint states at each scrape
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics)
	// A program serves the registry on its metrics port:
	_ = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})

	ctx := context.Background()
	kapi := client.NewKeysAPI(c)
	if _, err := kapi.Set(ctx, "/config/a", "1", nil); err != nil {
		panic(err)
	}
	for range 3 {
		if _, err := kapi.Get(ctx, "/config/a", nil); err != nil {
			panic(err)
		}
	}
	_, err = kapi.Get(ctx, "/config/missing", nil)
	fmt.Println(client.IsKeyNotFound(err)) // an answer: the call is "ok"

	fams, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range fams {
		if f.GetName() != "etcd_client_calls_total" {
			continue
		}
		var b strings.Builder
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			panic(err)
		}
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(line, "etcd_client_calls_total{") {
				fmt.Println(line)
			}
		}
	}
	// Output:
	// true
	// etcd_client_calls_total{kind="read",outcome="ok"} 4
	// etcd_client_calls_total{kind="write",outcome="ok"} 1
}
