// Package bench compares github.com/etcdv2/client ("ours") with the
// archived official etcd v2 client (go.etcd.io/etcd/client/v2, "official")
// and with hand-written net/http requests ("raw") against one real
// 3-member etcd cluster started by the integration test bed.
//
// Everything lives in the _test.go files; this file only gives the
// package a name. Run the benchmarks with run.sh beside this file, which
// also writes ../docs/benchmarks.md; `go test ./...` without -bench runs
// only quick checks that need no etcd.
package bench
