// Package v3adapter runs programs written against the etcd v2 keys and
// members APIs on etcd's v3 API (etcd 3.5, 3.6 and later, which no longer
// serve v2): NewKeysAPI returns a client.KeysAPI (with its Watcher) that
// keeps a v2 tree in the v3 keyspace, NewMembersAPI a client.MembersAPI, and
// Migrate copies a live v2 tree into that layout.
//
// The layout, the guarantees and every difference from a v2 server are in
// docs/v3adapter.md.
package v3adapter
