module github.com/etcdv2/client/bench

go 1.26.0

replace github.com/etcdv2/client => ../

replace github.com/etcdv2/client/integration => ../integration

require (
	github.com/etcdv2/client v0.0.0
	github.com/etcdv2/client/integration v0.0.0
	go.etcd.io/etcd/client/v2 v2.305.35
)

require (
	github.com/coreos/go-semver v0.3.0 // indirect
	github.com/json-iterator/go v1.1.11 // indirect
	github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd // indirect
	github.com/modern-go/reflect2 v1.0.1 // indirect
	go.etcd.io/etcd/api/v3 v3.5.35 // indirect
	go.etcd.io/etcd/client/pkg/v3 v3.5.35 // indirect
)
