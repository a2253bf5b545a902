// Package fakeparity keeps the fake v2 member of the unit tests
// (internal/v2fake) honest: its test runs the shared scenarios of
// internal/v2fake/parity against the fake and against a real etcd 3.5
// member, through the client, and requires identical records.
package fakeparity
