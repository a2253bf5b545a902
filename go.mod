module github.com/etcdv2/client

go 1.23

require github.com/ugorji/go/codec v1.3.1
