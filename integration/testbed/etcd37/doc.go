// Package etcd37 pins etcd server v3.7.3 for the test bed: its go.mod holds a
// "tool" directive for go.etcd.io/etcd/server/v3, and testbed.EtcdBinaryVersion
// builds that tool from this module so that the integration module's
// dependencies do not move.
package etcd37
