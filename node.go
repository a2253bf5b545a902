package client

import (
	"fmt"
	"time"
)

// Response is the answer of a KeysAPI call, or one event of a Watcher.
//
// Action, Node, PrevNode, Index and ClusterID are those of the original
// client. RaftIndex, RaftTerm and Endpoint are added by this package; like
// Index and ClusterID they come from the answer's headers, not its body.
type Response struct {
	// Action is the name of the operation that occurred. Possible values
	// include get, set, delete, update, create, compareAndSwap,
	// compareAndDelete and expire.
	Action string `json:"action"`

	// Node represents the state of the relevant etcd Node.
	Node *Node `json:"node"`

	// PrevNode represents the previous state of the Node. PrevNode is non-nil
	// only if the Node existed before the action occurred and the action
	// caused a change to the Node.
	PrevNode *Node `json:"prevNode"`

	// Index holds the cluster-level index at the time the Response was generated.
	// This index is not tied to the Node(s) contained in this Response.
	//
	// It is the X-Etcd-Index header. On a watch event it is the store
	// index when the watch was registered, not the event's index: use
	// Node.ModifiedIndex for that.
	Index uint64 `json:"-"`

	// ClusterID holds the cluster-level ID reported by the server.  This
	// should be different for different etcd clusters.
	ClusterID string `json:"-"`

	// RaftIndex is the committed raft index of the member that answered
	// (the X-Raft-Index header), 0 when the answer had none.
	RaftIndex uint64 `json:"-"`

	// RaftTerm is the raft term of the member that answered (the
	// X-Raft-Term header), 0 when the answer had none. It grows with every
	// leader election.
	RaftTerm uint64 `json:"-"`

	// Endpoint is the endpoint (as in Client.Endpoints) that answered.
	Endpoint string `json:"-"`
}

// Node is one key or directory of the etcd store.
type Node struct {
	// Key represents the unique location of this Node (e.g. "/foo/bar").
	// It is empty for the root directory.
	Key string `json:"key"`

	// Dir reports whether node describes a directory.
	Dir bool `json:"dir,omitempty"`

	// Value is the current data stored on this Node. If this Node
	// is a directory, Value will be empty.
	Value string `json:"value"`

	// Nodes holds the children of this Node, only if this Node is a directory.
	// This slice of will be arbitrarily deep (children, grandchildren, great-
	// grandchildren, etc.) if a recursive Get or Watch request were made.
	// It is nil for an empty directory.
	Nodes Nodes `json:"nodes"`

	// CreatedIndex is the etcd index at-which this Node was created.
	CreatedIndex uint64 `json:"createdIndex"`

	// ModifiedIndex is the etcd index at-which this Node was last modified.
	ModifiedIndex uint64 `json:"modifiedIndex"`

	// Expiration is the server side expiration time of the key.
	Expiration *time.Time `json:"expiration,omitempty"`

	// TTL is the time to live of the key in second.
	TTL int64 `json:"ttl,omitempty"`
}

// String describes the node's key, indexes and TTL.
func (n *Node) String() string {
	return fmt.Sprintf("{Key: %s, CreatedIndex: %d, ModifiedIndex: %d, TTL: %s}", n.Key, n.CreatedIndex, n.ModifiedIndex, n.TTLDuration())
}

// TTLDuration returns the Node's TTL as a time.Duration object
func (n *Node) TTLDuration() time.Duration {
	return time.Duration(n.TTL) * time.Second
}

// Nodes is a list of nodes. It implements sort.Interface, ordering by Key.
type Nodes []*Node

// Len is the number of nodes.
func (ns Nodes) Len() int { return len(ns) }

// Less orders nodes by Key, byte-wise.
func (ns Nodes) Less(i, j int) bool { return ns[i].Key < ns[j].Key }

// Swap swaps two nodes.
func (ns Nodes) Swap(i, j int) { ns[i], ns[j] = ns[j], ns[i] }

// PrevExistType is used to define an existence condition when setting or deleting Nodes.
type PrevExistType string

// The existence conditions of SetOptions.PrevExist.
const (
	// PrevIgnore sets no existence condition.
	PrevIgnore = PrevExistType("")
	// PrevExist requires the node to exist (an update).
	PrevExist = PrevExistType("true")
	// PrevNoExist requires the node not to exist (a create).
	PrevNoExist = PrevExistType("false")
)
