module github.com/etcdv2/client

go 1.23
