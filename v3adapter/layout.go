package v3adapter

import (
	"encoding/binary"
	"errors"
	"path"
	"strings"
	"time"
)

// The v3 keyspace layout (docs/v3adapter.md tells the whole story):
//
//	<prefix><v2 path>  one v3 key per v2 node, file or directory
//
// so /a/b is "<prefix>/a/b", the children of /a are the keys under
// "<prefix>/a/" and the root directory is implicit (it has no key). A
// node's v3 value is a header followed by the v2 value:
//
//	byte 0     'f' file or 'd' directory
//	byte 1     flags: flagTarget (this put is the operation's own node, not
//	           an implicitly created parent), flagRefresh (a TTL refresh,
//	           hidden from watchers), flagRecreated, flagModified
//	byte 2     the v2 action of the write that stored it
//	bytes 3-10 expiration, Unix nanoseconds, big endian; 0 = no TTL
//	bytes 11-18 v2 createdIndex when it differs from the v3 create
//	           revision (see created), big endian; 0 = the create revision
//	bytes 19-  the value (files only), after 8 more header bytes when
//	           flagModified is set: the v2 modifiedIndex, big endian
//
// A node with a TTL is attached to a v3 lease of that TTL, which deletes it
// when it expires.
//
// Beside the tree, one key records deletes (see deleteMarker).
const headerLen = 19

// deleteMarker returns the v3 key that every adapter transaction deleting
// nodes (Delete, Migrate's sweep) also puts, with the v2 action ("delete"
// or "compareAndDelete") as its value. A v3 delete event looks the same
// whether a write or a lease's expiry caused it; the marker tells them
// apart for good: a watcher reads it at the event's revision, and a mod
// revision equal to the event's means a write deleted the nodes, none
// means their lease expired. The key is outside the tree (it does not
// start with <prefix>/), so no listing, watch range or sweep meets it.
func (k *keysAPI) deleteMarker() string { return k.prefix + "\x00delete" }

const (
	kindFile = 'f'
	kindDir  = 'd'

	flagTarget  = 1
	flagRefresh = 2
	// flagRecreated marks a node that a plain set replaced: v2 gives it a
	// new createdIndex, the revision of that write, while the v3 key keeps
	// its create revision.
	flagRecreated = 4
	// flagModified marks a node re-put by a write that did not modify it
	// in v2's terms (its directory's TTL changed and it moved to the new
	// lease): 8 bytes after the header keep its v2 modifiedIndex, which
	// is no longer the key's mod revision.
	flagModified = 8
)

// numActions is the number of action codes stored in byte 2 (see action).
const numActions = 5

// action returns the v2 action of code c: 0 none (an implicit parent),
// 1 set, 2 create, 3 update, 4 compareAndSwap.
func action(c byte) string {
	switch c {
	case 1:
		return "set"
	case 2:
		return "create"
	case 3:
		return "update"
	case 4:
		return "compareAndSwap"
	}
	return ""
}

func actionCode(a string) byte {
	for c := byte(0); c < numActions; c++ {
		if action(c) == a {
			return c
		}
	}
	return 0
}

// stored is a decoded node value.
type stored struct {
	dir      bool
	flags    byte
	action   string
	expires  int64 // Unix ns, 0 = none
	created  int64 // explicit createdIndex, 0 = see flags and the kv
	modified int64 // explicit modifiedIndex (flagModified), 0 = the mod revision
	value    string
}

var errBadValue = errors.New("v3adapter: value not written by the adapter")

func encode(s stored) []byte {
	n := headerLen
	if s.modified != 0 {
		n += 8
	}
	b := make([]byte, n+len(s.value))
	b[0] = kindFile
	if s.dir {
		b[0] = kindDir
	}
	b[1] = s.flags &^ flagModified
	b[2] = actionCode(s.action)
	binary.BigEndian.PutUint64(b[3:11], uint64(s.expires))
	binary.BigEndian.PutUint64(b[11:19], uint64(s.created))
	if s.modified != 0 {
		b[1] |= flagModified
		binary.BigEndian.PutUint64(b[19:27], uint64(s.modified))
	}
	copy(b[n:], s.value)
	return b
}

func decode(b []byte) (stored, error) {
	if len(b) < headerLen || (b[0] != kindFile && b[0] != kindDir) || b[2] >= numActions {
		return stored{}, errBadValue
	}
	s := stored{
		dir:     b[0] == kindDir,
		flags:   b[1],
		action:  action(b[2]),
		expires: int64(binary.BigEndian.Uint64(b[3:11])),
		created: int64(binary.BigEndian.Uint64(b[11:19])),
	}
	n := headerLen
	if s.flags&flagModified != 0 {
		if len(b) < headerLen+8 {
			return stored{}, errBadValue
		}
		s.modified = int64(binary.BigEndian.Uint64(b[19:27]))
		n += 8
	}
	if !s.dir {
		s.value = string(b[n:])
	}
	return s, nil
}

// ttlAt returns the v2 remaining TTL (ceiling of the remaining seconds, at
// least 1 while the key exists) and the expiration, or 0 and nil.
func (s stored) ttlAt(now time.Time) (int64, *time.Time) {
	if s.expires == 0 {
		return 0, nil
	}
	exp := time.Unix(0, s.expires).UTC()
	rem := exp.Sub(now)
	ttl := int64(rem / time.Second)
	if rem%time.Second > 0 {
		ttl++
	}
	if ttl < 1 {
		ttl = 1
	}
	return ttl, &exp
}

// cleanPath turns a v2 key into its canonical path: "/" for the root,
// otherwise "/a/b" with no trailing slash.
func cleanPath(key string) string {
	return path.Clean("/" + key)
}

// parentOf returns the parent path of p ("/" for a top-level node).
func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// ancestors returns the paths above p, nearest to the root first, without
// the root: ancestors("/a/b/c") = ["/a", "/a/b"].
func ancestors(p string) []string {
	var out []string
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return out
}

// isHidden reports whether an element of p below base starts with '_'.
func isHidden(base, p string) bool {
	rest := strings.TrimPrefix(p, base)
	for _, seg := range strings.Split(rest, "/") {
		if strings.HasPrefix(seg, "_") {
			return true
		}
	}
	return false
}
