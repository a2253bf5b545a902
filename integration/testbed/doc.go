// Package testbed runs real etcd server processes for integration tests of
// github.com/etcdv2/client. (Full usage notes follow in a later commit.)
package testbed
