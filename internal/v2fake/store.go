package v2fake

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Error is a keys API error, encoded as etcd 3.5 encodes it.
type Error struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause,omitempty"`
	Index     uint64 `json:"index"`
}

func (e *Error) Error() string { return e.Message + " (" + e.Cause + ")" }

// status is the HTTP status etcd answers the error with.
func (e *Error) status() int {
	switch e.ErrorCode {
	case 100:
		return 404
	case 102, 108:
		return 403
	case 110:
		return 401
	case 101, 105:
		return 412
	case 300, 301:
		return 500
	}
	return 400
}

var messages = map[int]string{
	100: "Key not found",
	101: "Compare failed",
	102: "Not a file",
	104: "Not a directory",
	105: "Key already exists",
	107: "Root is read only",
	108: "Directory not empty",
	110: "The request requires user authentication",
	201: "PrevValue is Required in POST form",
	202: "The given TTL in POST form is not a number",
	203: "The given index in POST form is not a number",
	209: "Invalid field",
	210: "Invalid POST form",
	211: "Value provided on refresh",
	212: "A TTL must be provided on refresh",
	300: "Raft Internal Error",
	301: "During Leader Election",
	401: "The event in requested index is outdated and cleared",
}

func newError(code int, cause string, index uint64) *Error {
	return &Error{ErrorCode: code, Message: messages[code], Cause: cause, Index: index}
}

// Node is a node as the keys API encodes it.
type Node struct {
	Key           string     `json:"key,omitempty"`
	Value         *string    `json:"value,omitempty"`
	Dir           bool       `json:"dir,omitempty"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	TTL           int64      `json:"ttl,omitempty"`
	Nodes         []*Node    `json:"nodes,omitempty"`
	ModifiedIndex uint64     `json:"modifiedIndex,omitempty"`
	CreatedIndex  uint64     `json:"createdIndex,omitempty"`
}

// Event is a keys API answer (an action on a node).
type Event struct {
	Action   string `json:"action"`
	Node     *Node  `json:"node,omitempty"`
	PrevNode *Node  `json:"prevNode,omitempty"`
	// Refresh marks a TTL refresh, which watches do not see; etcd does not
	// send it.
	Refresh bool `json:"-"`

	etcdIndex uint64
}

type node struct {
	path              string
	value             string
	dir               bool
	children          map[string]*node
	parent            *node
	created, modified uint64
	expire            time.Time // zero: permanent
}

// historySize is the number of events a watch can reach back, as in etcd.
const historySize = 1000

// store is the v2 key space: a tree of nodes and the event history.
type store struct {
	index   uint64
	root    *node
	now     func() time.Time
	history []*Event // the last size events, oldest first
	size    int      // events kept in history
	cleared uint64   // index of the oldest event a watch may ask for
	changed chan struct{}
}

func newStore(index uint64, now func() time.Time, size int) *store {
	return &store{
		size:    size,
		index:   index,
		root:    &node{path: "/", dir: true, children: map[string]*node{}},
		now:     now,
		changed: make(chan struct{}),
	}
}

func (n *node) ttl(now time.Time) (*time.Time, int64) {
	if n.expire.IsZero() {
		return nil, 0
	}
	d := n.expire.Sub(now)
	ttl := d / time.Second
	if d%time.Second > 0 {
		ttl++
	}
	t := n.expire.UTC()
	return &t, int64(ttl)
}

func hidden(name string) bool { return strings.HasPrefix(name, "_") }

// repr is the node as etcd encodes it; a directory lists its children if
// recursive, and never its hidden ones.
func (s *store) repr(n *node, recursive, sorted bool) *Node {
	out := &Node{Key: n.path, Dir: n.dir, ModifiedIndex: n.modified, CreatedIndex: n.created}
	if n == s.root {
		out.Key = ""
	}
	out.Expiration, out.TTL = n.ttl(s.now())
	if !n.dir {
		v := n.value
		out.Value = &v
		return out
	}
	if !recursive {
		return out
	}
	out.Nodes = s.list(n, true, sorted)
	return out
}

func (s *store) list(n *node, recursive, sorted bool) []*Node {
	out := make([]*Node, 0, len(n.children))
	for name, c := range n.children {
		if hidden(name) {
			continue
		}
		out = append(out, s.repr(c, recursive, sorted))
	}
	// Go map order is random like etcd's; tests need a stable order, and
	// a client must not depend on it, so unsorted listings are sorted too.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func cleanPath(p string) string { return path.Clean(path.Join("/", p)) }

// lookup finds the node at p.
func (s *store) lookup(p string) (*node, *Error) {
	cur := s.root
	if p == "/" {
		return cur, nil
	}
	for _, name := range strings.Split(p[1:], "/") {
		if !cur.dir {
			return nil, newError(104, cur.path, s.index)
		}
		c, ok := cur.children[name]
		if !ok {
			return nil, newError(100, path.Join(cur.path, name), s.index)
		}
		cur = c
	}
	return cur, nil
}

// parentDir finds or creates the directories above p.
func (s *store) parentDir(p string) (*node, *Error) {
	dir, _ := path.Split(p)
	cur := s.root
	for _, name := range strings.Split(strings.Trim(dir, "/"), "/") {
		if name == "" {
			continue
		}
		c, ok := cur.children[name]
		if !ok {
			c = &node{path: path.Join(cur.path, name), dir: true, children: map[string]*node{}, parent: cur,
				created: s.index + 1, modified: s.index + 1}
			cur.children[name] = c
		} else if !c.dir {
			return nil, newError(104, c.path, s.index)
		}
		cur = c
	}
	return cur, nil
}

func (s *store) remove(n *node) {
	if n.parent != nil {
		delete(n.parent.children, path.Base(n.path))
	}
}

// record appends ev to the history and wakes the watches.
func (s *store) record(ev *Event) {
	ev.etcdIndex = s.index
	s.history = append(s.history, ev)
	if len(s.history) > s.size {
		s.history = s.history[len(s.history)-s.size:]
		s.cleared = s.history[0].Node.ModifiedIndex
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// create adds a node; replace allows replacing a file (set).
func (s *store) create(p string, dir bool, value string, unique, replace bool, expire time.Time, action string) (*Event, *Error) {
	cur, next := s.index, s.index+1
	if unique {
		p += "/" + fmt.Sprintf("%020s", strconv.FormatUint(next, 10))
	}
	p = cleanPath(p)
	if p == "/" {
		return nil, newError(107, "/", cur)
	}
	d, err := s.parentDir(p)
	if err != nil {
		err.Index = cur
		return nil, err
	}
	ev := &Event{Action: action, Node: &Node{Key: p, ModifiedIndex: next, CreatedIndex: next}}
	name := path.Base(p)
	if old, ok := d.children[name]; ok {
		if !replace {
			return nil, newError(105, p, cur)
		}
		if old.dir {
			return nil, newError(102, p, cur)
		}
		ev.PrevNode = s.repr(old, false, false)
		s.remove(old)
	}
	n := &node{path: p, dir: dir, parent: d, created: next, modified: next, expire: expire}
	if dir {
		n.children = map[string]*node{}
		ev.Node.Dir = true
	} else {
		n.value = value
		v := value
		ev.Node.Value = &v
	}
	d.children[name] = n
	ev.Node.Expiration, ev.Node.TTL = n.ttl(s.now())
	s.index = next
	return ev, nil
}

func (s *store) set(p string, dir bool, value string, expire time.Time, refresh bool) (*Event, *Error) {
	n, getErr := s.lookup(p)
	if getErr != nil && getErr.ErrorCode != 100 {
		return nil, getErr
	}
	if refresh {
		if getErr != nil {
			return nil, getErr
		}
		value = n.value
	}
	ev, err := s.create(p, dir, value, false, true, expire, "set")
	if err != nil {
		return nil, err
	}
	if getErr == nil {
		// etcd reports the previous node as it was, listed without children.
		ev.PrevNode = s.reprOld(n)
	}
	ev.Refresh = refresh
	s.record(ev)
	return ev, nil
}

// reprOld is the representation of a node that has just been replaced.
func (s *store) reprOld(n *node) *Node { return s.repr(n, false, false) }

func compareCause(n *node, prevValue string, prevIndex uint64) (string, bool) {
	valueOK := prevValue == "" || n.value == prevValue
	indexOK := prevIndex == 0 || n.modified == prevIndex
	switch {
	case valueOK && indexOK:
		return "", true
	case valueOK:
		return fmt.Sprintf("[%v != %v]", prevIndex, n.modified), false
	case indexOK:
		return fmt.Sprintf("[%v != %v]", prevValue, n.value), false
	}
	return fmt.Sprintf("[%v != %v] [%v != %v]", prevValue, n.value, prevIndex, n.modified), false
}

func (s *store) compareAndSwap(p, prevValue string, prevIndex uint64, value string, expire time.Time, refresh bool) (*Event, *Error) {
	if p == "/" {
		return nil, newError(107, "/", s.index)
	}
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, newError(102, p, s.index)
	}
	if cause, ok := compareCause(n, prevValue, prevIndex); !ok {
		return nil, newError(101, cause, s.index)
	}
	if refresh {
		value = n.value
	}
	s.index++
	ev := &Event{Action: "compareAndSwap", Node: &Node{Key: p, ModifiedIndex: s.index, CreatedIndex: n.created}}
	ev.PrevNode = s.repr(n, false, false)
	n.value, n.modified, n.expire = value, s.index, expire
	v := value
	ev.Node.Value = &v
	ev.Node.Expiration, ev.Node.TTL = n.ttl(s.now())
	ev.Refresh = refresh
	s.record(ev)
	return ev, nil
}

func (s *store) update(p, value string, expire time.Time, refresh bool) (*Event, *Error) {
	if p == "/" {
		return nil, newError(107, "/", s.index)
	}
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.dir && value != "" {
		return nil, newError(102, p, s.index)
	}
	if refresh {
		value = n.value
	}
	next := s.index + 1
	ev := &Event{Action: "update", Node: &Node{Key: p, ModifiedIndex: next, CreatedIndex: n.created}}
	ev.PrevNode = s.repr(n, false, false)
	n.modified, n.expire = next, expire
	if n.dir {
		ev.Node.Dir = true
	} else {
		n.value = value
		v := value
		ev.Node.Value = &v
	}
	ev.Node.Expiration, ev.Node.TTL = n.ttl(s.now())
	ev.Refresh = refresh
	s.index = next
	s.record(ev)
	return ev, nil
}

func (s *store) delete(p string, dir, recursive bool) (*Event, *Error) {
	if p == "/" {
		return nil, newError(107, "/", s.index)
	}
	if recursive {
		dir = true
	}
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.dir {
		if !dir {
			return nil, newError(102, p, s.index)
		}
		if len(n.children) > 0 && !recursive {
			return nil, newError(108, p, s.index)
		}
	}
	next := s.index + 1
	ev := &Event{Action: "delete", Node: &Node{Key: p, Dir: n.dir, ModifiedIndex: next, CreatedIndex: n.created}}
	ev.PrevNode = s.repr(n, false, false)
	s.remove(n)
	s.index = next
	s.record(ev)
	return ev, nil
}

func (s *store) compareAndDelete(p, prevValue string, prevIndex uint64) (*Event, *Error) {
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, newError(102, p, s.index)
	}
	if cause, ok := compareCause(n, prevValue, prevIndex); !ok {
		return nil, newError(101, cause, s.index)
	}
	s.index++
	ev := &Event{Action: "compareAndDelete", Node: &Node{Key: p, ModifiedIndex: s.index, CreatedIndex: n.created}}
	ev.PrevNode = s.repr(n, false, false)
	s.remove(n)
	s.record(ev)
	return ev, nil
}

func (s *store) get(p string, recursive, sorted bool) (*Event, *Error) {
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	ev := &Event{Action: "get", etcdIndex: s.index}
	ev.Node = s.repr(n, false, sorted)
	if n.dir {
		ev.Node.Nodes = s.list(n, recursive, sorted)
	}
	return ev, nil
}

// expire deletes the keys whose TTL has run out, as etcd's periodic sync
// does, each with an "expire" event.
func (s *store) expire() {
	now := s.now()
	var due []*node
	var walk func(n *node)
	walk = func(n *node) {
		for _, c := range n.children {
			if !c.expire.IsZero() && !c.expire.After(now) {
				due = append(due, c)
				continue
			}
			if c.dir {
				walk(c)
			}
		}
	}
	walk(s.root)
	sort.Slice(due, func(i, j int) bool {
		if !due[i].expire.Equal(due[j].expire) {
			return due[i].expire.Before(due[j].expire)
		}
		return due[i].path < due[j].path
	})
	for _, n := range due {
		s.index++
		ev := &Event{Action: "expire", Node: &Node{Key: n.path, Dir: n.dir, ModifiedIndex: s.index, CreatedIndex: n.created}}
		ev.PrevNode = s.repr(n, false, false)
		s.remove(n)
		s.record(ev)
	}
}

// scan finds the first event at or after since that a watch of key would
// see, as etcd's event history does.
func (s *store) scan(key string, recursive bool, since uint64) (*Event, *Error) {
	if since < s.cleared {
		return nil, newError(401, fmt.Sprintf("the requested history has been cleared [%v/%v]", s.cleared, since), s.index)
	}
	prefix := key
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	for _, ev := range s.history {
		if ev.Node.ModifiedIndex < since || ev.Refresh {
			continue
		}
		ok := ev.Node.Key == key || recursive && strings.HasPrefix(ev.Node.Key, prefix)
		if (ev.Action == "delete" || ev.Action == "expire") && ev.PrevNode != nil && ev.PrevNode.Dir {
			ok = ok || strings.HasPrefix(key, ev.PrevNode.Key)
		}
		if ok {
			return ev, nil
		}
	}
	return nil, nil
}

// notifies tells whether a watch of key registered before ev sees it, as
// etcd's watcher hub decides (hidden keys are not sent to a recursive watch
// above them).
func notifies(ev *Event, key string, recursive bool) bool {
	k := ev.Node.Key
	if k == key {
		return true
	}
	deletedDir := (ev.Action == "delete" || ev.Action == "expire" || ev.Action == "compareAndDelete") &&
		ev.PrevNode != nil && ev.PrevNode.Dir
	if deletedDir && strings.HasPrefix(key, k+"/") {
		return true
	}
	if !recursive {
		return false
	}
	prefix := key
	if prefix != "/" {
		prefix += "/"
	}
	if !strings.HasPrefix(k, prefix) {
		return false
	}
	return !strings.Contains(path.Clean("/"+k[len(prefix)-1:]), "/_")
}
