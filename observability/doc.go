// Package observability holds adapters that export the metrics and traces
// of a github.com/etcdv2/client Client: etcdprom for Prometheus and
// etcdotel for OpenTelemetry. The client library itself depends on
// neither; it offers client.Config.Hooks (calls and attempts as they
// happen) and client.StatsReporter (health counters), which the adapters
// turn into metrics and spans.
//
// This package itself holds only the tests that run both adapters on a
// real etcd cluster.
package observability
