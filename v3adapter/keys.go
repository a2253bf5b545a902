package v3adapter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/etcdv2/client"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultPrefix is the v3 key prefix under which NewKeysAPI keeps the v2
// tree when no WithPrefix option is given.
const DefaultPrefix = "/v2keys"

// maxRetries bounds the optimistic retries of one write whose transaction
// lost a race with another writer.
const maxRetries = 64

// Option configures NewKeysAPI (and NewMembersAPI, which uses only
// WithRequestTimeout).
type Option func(*keysAPI)

// WithPrefix keeps the v2 tree under prefix in the v3 keyspace (a trailing
// slash is ignored). Programs that share a tree must use the same prefix.
// The default is DefaultPrefix.
func WithPrefix(prefix string) Option {
	return func(k *keysAPI) { k.prefix = strings.TrimRight(prefix, "/") }
}

type keysAPI struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration // per request; see WithRequestTimeout
}

// NewKeysAPI returns a client.KeysAPI that keeps a v2 tree in etcd's v3
// keyspace through cli (layout in docs/v3adapter.md). Every write is one v3
// transaction; reads are linearizable. It does not close cli.
func NewKeysAPI(cli *clientv3.Client, opts ...Option) client.KeysAPI {
	k := &keysAPI{cli: cli, prefix: DefaultPrefix}
	for _, o := range opts {
		o(k)
	}
	return k
}

// key returns the v3 key of a clean v2 path.
func (k *keysAPI) key(p string) string {
	if p == "/" {
		return k.prefix
	}
	return k.prefix + p
}

// below returns the v3 prefix of every node under a clean v2 path.
func (k *keysAPI) below(p string) string {
	if p == "/" {
		return k.prefix + "/"
	}
	return k.prefix + p + "/"
}

func (k *keysAPI) pathOf(key []byte) string { return string(key[len(k.prefix):]) }

// v2 error codes the client package has no name for.
const (
	codeRefreshValue       = 211
	codeRefreshTTLRequired = 212
)

// message is v2's fixed text for an error code.
func message(code int) string {
	switch code {
	case client.ErrorCodeKeyNotFound:
		return "Key not found"
	case client.ErrorCodeTestFailed:
		return "Compare failed"
	case client.ErrorCodeNotFile:
		return "Not a file"
	case client.ErrorCodeNotDir:
		return "Not a directory"
	case client.ErrorCodeNodeExist:
		return "Key already exists"
	case client.ErrorCodeRootROnly:
		return "Root is read only"
	case client.ErrorCodeDirNotEmpty:
		return "Directory not empty"
	case client.ErrorCodeEventIndexCleared:
		return "The event in requested index is outdated and cleared"
	case client.ErrorCodeInvalidField:
		return "Invalid field"
	case codeRefreshValue:
		return "Value provided on refresh"
	case codeRefreshTTLRequired:
		return "A TTL must be provided on refresh"
	}
	return ""
}

// rootReadOnly is v2's answer to a write to the root directory: error 107
// at the current index.
func (k *keysAPI) rootReadOnly(ctx context.Context) error {
	r, err := call(ctx, k.timeout, func(ctx context.Context) (*clientv3.GetResponse, error) {
		return k.cli.Get(ctx, k.prefix+"/", clientv3.WithCountOnly())
	})
	if err != nil {
		return err
	}
	return v2err(client.ErrorCodeRootROnly, "/", r.Header.Revision)
}

func v2err(code int, cause string, index int64) error {
	return client.Error{Code: code, Message: message(code), Cause: cause, Index: uint64(index)}
}

// snap is what one read transaction saw.
type snap struct {
	rev     int64
	header  *etcdserverpb.ResponseHeader
	anc     []*mvccpb.KeyValue // per ancestor of the path, root excluded; nil = missing
	self    *mvccpb.KeyValue
	below   []*mvccpb.KeyValue // the subtree (when asked for)
	nBelow  int64              // number of keys in the subtree (when asked for)
	lastSeq *mvccpb.KeyValue   // last in-order child (when asked for)
}

type readWhat struct {
	below     bool // all keys of the subtree
	countOnly bool // only the number of keys of the subtree
	lastSeq   bool
}

func (k *keysAPI) read(ctx context.Context, p string, w readWhat) (*snap, error) {
	anc := ancestors(p)
	ops := make([]clientv3.Op, 0, len(anc)+3)
	for _, a := range anc {
		ops = append(ops, clientv3.OpGet(k.key(a)))
	}
	if p != "/" {
		ops = append(ops, clientv3.OpGet(k.key(p)))
	}
	if w.below {
		ops = append(ops, clientv3.OpGet(k.below(p), clientv3.WithPrefix()))
	} else if w.countOnly {
		ops = append(ops, clientv3.OpGet(k.below(p), clientv3.WithPrefix(), clientv3.WithCountOnly()))
	}
	if w.lastSeq {
		ops = append(ops, clientv3.OpGet(k.below(p)+"0", clientv3.WithRange(k.below(p)+":"),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1)))
	}
	var resp *clientv3.TxnResponse
	var err error
	for attempt := 1; ; attempt++ {
		resp, err = call(ctx, k.timeout, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return k.cli.Txn(ctx).Then(ops...).Commit()
		})
		if err == nil || attempt == readAttempts || !retryableRead(err) {
			break
		}
		t := time.NewTimer(readRetryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
	if err != nil {
		return nil, err
	}
	s := &snap{rev: resp.Header.Revision, header: resp.Header}
	i := 0
	one := func() *mvccpb.KeyValue {
		kvs := resp.Responses[i].GetResponseRange().Kvs
		i++
		if len(kvs) == 0 {
			return nil
		}
		return kvs[0]
	}
	for range anc {
		s.anc = append(s.anc, one())
	}
	if p != "/" {
		s.self = one()
	}
	if w.below || w.countOnly {
		r := resp.Responses[i].GetResponseRange()
		i++
		s.below, s.nBelow = r.Kvs, r.Count
	}
	if w.lastSeq {
		s.lastSeq = one()
	}
	return s, nil
}

// withHeader fills the Response fields v2 took from its headers: the
// cluster ID (hexadecimal, as X-Etcd-Cluster-Id) and the raft term. v3
// answers carry no raft index, so RaftIndex stays 0.
func withHeader(r *client.Response, h *etcdserverpb.ResponseHeader) *client.Response {
	if h != nil {
		r.ClusterID = strconv.FormatUint(h.ClusterId, 16)
		r.RaftTerm = h.RaftTerm
	}
	return r
}

// A read that failed because the cluster was electing a leader is tried
// again, up to readAttempts times readRetryDelay apart: reading twice is
// harmless.
const (
	readAttempts   = 5
	readRetryDelay = 200 * time.Millisecond
)

func retryableRead(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrGRPCLeaderChanged) ||
		errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrGRPCNoLeader) ||
		status.Code(err) == codes.Unavailable
}

// compares pins everything a read saw, so that the write transaction
// applies only if none of it changed.
func (k *keysAPI) compares(p string, s *snap, w readWhat) []clientv3.Cmp {
	var cmps []clientv3.Cmp
	modOf := func(kv *mvccpb.KeyValue) int64 {
		if kv == nil {
			return 0
		}
		return kv.ModRevision
	}
	for i, a := range ancestors(p) {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k.key(a)), "=", modOf(s.anc[i])))
	}
	if p != "/" {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k.key(p)), "=", modOf(s.self)))
	}
	if w.below {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k.below(p)), "<", s.rev+1).WithPrefix())
	}
	if w.countOnly || w.below {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k.below(p)), "<", s.rev+1).WithPrefix())
	}
	if w.lastSeq {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k.below(p)+"0"), "<", s.rev+1).WithRange(k.below(p)+":"))
	}
	return cmps
}

// walk checks the ancestors of a snapshot the way v2 walks a path: a
// missing one is 100 (unless create, which makes it) and a file is 104.
func walk(p string, s *snap, create bool) error {
	for i, a := range ancestors(p) {
		kv := s.anc[i]
		if kv == nil {
			if create {
				continue
			}
			return v2err(client.ErrorCodeKeyNotFound, a, s.rev)
		}
		st, err := decode(kv.Value)
		if err != nil {
			return err
		}
		if !st.dir {
			return v2err(client.ErrorCodeNotDir, a, s.rev)
		}
	}
	return nil
}

// node renders one stored key as a v2 node (without children).
func (k *keysAPI) node(kv *mvccpb.KeyValue, now time.Time) (*client.Node, stored, error) {
	st, err := decode(kv.Value)
	if err != nil {
		return nil, st, fmt.Errorf("%w: %q", err, kv.Key)
	}
	n := &client.Node{
		Key:           k.pathOf(kv.Key),
		Dir:           st.dir,
		Value:         st.value,
		CreatedIndex:  createdIndex(kv, st),
		ModifiedIndex: modifiedIndex(kv, st),
	}
	n.TTL, n.Expiration = st.ttlAt(now)
	return n, st, nil
}

// modifiedIndex is the v2 modifiedIndex of a stored key: its mod revision,
// unless a write that did not modify it in v2's terms re-put it.
func modifiedIndex(kv *mvccpb.KeyValue, st stored) uint64 {
	if st.modified != 0 {
		return uint64(st.modified)
	}
	return uint64(kv.ModRevision)
}

func createdIndex(kv *mvccpb.KeyValue, st stored) uint64 {
	switch {
	case st.flags&flagRecreated != 0:
		return uint64(kv.ModRevision)
	case st.created != 0:
		return uint64(st.created)
	}
	return uint64(kv.CreateRevision)
}

// Get implements client.KeysAPI. Reads are linearizable whatever
// GetOptions.Quorum says, and children are always sorted by key.
func (k *keysAPI) Get(ctx context.Context, key string, opts *client.GetOptions) (*client.Response, error) {
	var o client.GetOptions
	if opts != nil {
		o = *opts
	}
	p := cleanPath(key)
	s, err := k.read(ctx, p, readWhat{below: true})
	if err != nil {
		return nil, err
	}
	if err := walk(p, s, false); err != nil {
		return nil, err
	}
	now := time.Now()
	var root *client.Node
	if p == "/" {
		root = &client.Node{Dir: true}
	} else {
		if s.self == nil {
			return nil, v2err(client.ErrorCodeKeyNotFound, p, s.rev)
		}
		if root, _, err = k.node(s.self, now); err != nil {
			return nil, err
		}
	}
	if root.Dir {
		if err := k.fill(root, p, s.below, o.Recursive, now); err != nil {
			return nil, err
		}
	}
	return withHeader(&client.Response{Action: "get", Node: root, Index: uint64(s.rev)}, s.header), nil
}

// fill attaches the listed keys (the subtree of p, in key order) to the
// directory node root: one level, or every level when recursive. Hidden
// nodes are left out; so is anything below a missing directory.
func (k *keysAPI) fill(root *client.Node, p string, kvs []*mvccpb.KeyValue, recursive bool, now time.Time) error {
	dirs := map[string]*client.Node{p: root}
	for _, kv := range kvs {
		cp := k.pathOf(kv.Key)
		par := parentOf(cp)
		parent := dirs[par]
		if parent == nil || strings.HasPrefix(cp[len(strings.TrimSuffix(par, "/"))+1:], "_") {
			continue
		}
		n, _, err := k.node(kv, now)
		if err != nil {
			return err
		}
		parent.Nodes = append(parent.Nodes, n)
		if n.Dir && recursive {
			dirs[cp] = n
		}
	}
	// Key order of the v3 keys is not v2's order of a directory's
	// children ("/a/b/c" sorts before "/a/b0"), so sort each level.
	var sortAll func(n *client.Node)
	sortAll = func(n *client.Node) {
		sort.Sort(n.Nodes)
		for _, c := range n.Nodes {
			if c.Dir {
				sortAll(c)
			}
		}
	}
	sortAll(root)
	return nil
}

// Set implements client.KeysAPI.
func (k *keysAPI) Set(ctx context.Context, key, value string, opts *client.SetOptions) (*client.Response, error) {
	return k.set(ctx, "Set", key, value, opts)
}

// Create implements client.KeysAPI.
func (k *keysAPI) Create(ctx context.Context, key, value string) (*client.Response, error) {
	return k.set(ctx, "Create", key, value, &client.SetOptions{PrevExist: client.PrevNoExist})
}

// Update implements client.KeysAPI.
func (k *keysAPI) Update(ctx context.Context, key, value string) (*client.Response, error) {
	return k.set(ctx, "Update", key, value, &client.SetOptions{PrevExist: client.PrevExist})
}

func invalid(op, field, reason string) error {
	return &client.InvalidRequestError{Op: op, Field: field, Reason: reason}
}

func checkTTL(op, field string, ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, nil
	}
	if ttl < time.Second {
		return 0, invalid(op, field, "a TTL below one second would be sent as 0 seconds, which expires the key at once")
	}
	return int64(ttl / time.Second), nil
}

// lease is a v3 lease granted for one write; expires is the earliest the
// key may expire (taken before the grant, so never later than the
// server's expiry).
type lease struct {
	id      clientv3.LeaseID
	expires int64
}

func (k *keysAPI) grant(ctx context.Context, ttl int64) (*lease, error) {
	start := time.Now()
	r, err := call(ctx, k.timeout, func(ctx context.Context) (*clientv3.LeaseGrantResponse, error) {
		return k.cli.Grant(ctx, ttl)
	})
	if err != nil {
		return nil, err
	}
	return &lease{id: r.ID, expires: start.Add(time.Duration(ttl) * time.Second).UnixNano()}, nil
}

// release revokes a lease the write did not use (best effort: an unused
// lease expires by itself). After a write of unknown outcome (err) the
// lease is kept: the transaction may have applied and attached the node to
// it, and revoking it would delete the node.
func (k *keysAPI) release(l *lease, err error) {
	if l == nil || errors.Is(err, client.ErrOutcomeUnknown) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = call(ctx, k.timeout, func(ctx context.Context) (*clientv3.LeaseRevokeResponse, error) {
		return k.cli.Revoke(ctx, l.id)
	})
}

// write runs plan against fresh snapshots until its transaction applies
// (the read was still current) or plan fails.
func (k *keysAPI) write(ctx context.Context, p string, w readWhat, plan func(s *snap) ([]clientv3.Op, func(rev int64) *client.Response, error)) (*client.Response, error) {
	for attempt := 0; attempt < maxRetries; attempt++ {
		s, err := k.read(ctx, p, w)
		if err != nil {
			return nil, err
		}
		ops, answer, err := plan(s)
		if err != nil {
			return nil, err
		}
		resp, err := call(ctx, k.timeout, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return k.cli.Txn(ctx).If(k.compares(p, s, w)...).Then(ops...).Commit()
		})
		if err != nil {
			return nil, k.writeErr(err)
		}
		if resp.Succeeded {
			return withHeader(answer(resp.Header.Revision), resp.Header), nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("v3adapter: %s: gave up after %d conflicting concurrent writes", p, maxRetries)
}

// parents returns the puts that create the missing ancestors of p as
// directories, and the lease a new child inherits from the nearest
// ancestor directory with a TTL (0 if none).
func (k *keysAPI) parents(p string, s *snap) ([]clientv3.Op, clientv3.LeaseID) {
	var ops []clientv3.Op
	var inherit clientv3.LeaseID
	for i, a := range ancestors(p) {
		kv := s.anc[i]
		if kv == nil {
			v := encode(stored{dir: true})
			if inherit != 0 {
				ops = append(ops, clientv3.OpPut(k.key(a), string(v), clientv3.WithLease(inherit)))
			} else {
				ops = append(ops, clientv3.OpPut(k.key(a), string(v)))
			}
			continue
		}
		if kv.Lease != 0 {
			inherit = clientv3.LeaseID(kv.Lease)
		}
	}
	return ops, inherit
}

// ancestorDeath returns the earliest expiry among the ancestors of a
// snapshot and the lease of the ancestor that has it (0, 0 if none has a
// TTL): the time a new node below them dies at the latest, and the lease
// that deletes it then.
func ancestorDeath(s *snap) (int64, clientv3.LeaseID) {
	var death int64
	var id clientv3.LeaseID
	for _, kv := range s.anc {
		if kv == nil || kv.Lease == 0 {
			continue
		}
		if st, err := decode(kv.Value); err == nil && st.expires != 0 && (death == 0 || st.expires < death) {
			death, id = st.expires, clientv3.LeaseID(kv.Lease)
		}
	}
	return death, id
}

// leaseFor returns the lease of a node of its own expiry expires (0: none)
// below a directory that dies at death on lease dirLease (0, 0: never): the
// directory's if the node would outlive it (v2 deletes it with the
// directory, in the same event), else own (granted by the caller for
// expires; 0 when the node has no TTL and no directory dies).
func leaseFor(expires, death int64, dirLease, own clientv3.LeaseID) (clientv3.LeaseID, int64) {
	if dirLease != 0 && (expires == 0 || expires >= death) {
		return dirLease, death
	}
	return own, expires
}

func (k *keysAPI) set(ctx context.Context, op, key, value string, opts *client.SetOptions) (_ *client.Response, err error) {
	var o client.SetOptions
	if opts != nil {
		o = *opts
	}
	p := cleanPath(key)
	// The checks a v2 server makes, in its order, with its errors: first
	// the request's fields, then the store's read-only root.
	switch o.PrevExist {
	case client.PrevIgnore, client.PrevExist, client.PrevNoExist:
	default:
		return nil, v2err(client.ErrorCodeInvalidField, "invalid value for prevExist", 0)
	}
	ttl, err := checkTTL(op, "SetOptions.TTL", o.TTL)
	if err != nil {
		return nil, err
	}
	if o.Refresh {
		if value != "" && !o.Dir {
			return nil, v2err(codeRefreshValue, "A value was provided on a refresh", 0)
		}
		if ttl == 0 {
			return nil, v2err(codeRefreshTTLRequired, "No TTL value set", 0)
		}
		if o.PrevExist == client.PrevNoExist {
			return nil, invalid(op, "SetOptions.PrevExist", "a refresh needs an existing node")
		}
		if o.PrevExist == client.PrevIgnore {
			o.PrevExist = client.PrevExist
		}
	}
	if p == "/" {
		return nil, k.rootReadOnly(ctx)
	}
	if o.Dir {
		o.PrevValue = ""
		value = ""
	}
	action := "set"
	compare := o.PrevValue != "" || o.PrevIndex != 0
	switch {
	case o.PrevExist == client.PrevNoExist:
		action = "create"
	case compare:
		action = "compareAndSwap"
	case o.PrevExist == client.PrevExist:
		action = "update"
	}

	var l *lease
	if ttl > 0 {
		if l, err = k.grant(ctx, ttl); err != nil {
			return nil, err
		}
	}
	used := false
	defer func() {
		if !used {
			k.release(l, err)
		}
	}()
	if action == "set" && !o.Dir {
		resp, prevLease, err := k.fastSet(ctx, p, value, l, o.NoValueOnSuccess)
		if err != nil || resp != nil {
			if err == nil {
				used = true
				if prevLease != 0 {
					k.dropLease(ctx, prevLease, p)
				}
			}
			return resp, err
		}
	}
	// A directory whose TTL changes takes its subtree to the new lease.
	w := readWhat{below: action == "update"}
	var oldLease int64 // the node's own lease, left without keys by the write
	lUsed := false     // l carries the node (else it rides an ancestor's lease)
	var granted []*lease
	var dropped []struct {
		id int64
		p  string
	}
	defer func() {
		if err != nil {
			for _, g := range granted {
				k.release(g, err)
			}
		}
	}()
	resp, err := k.write(ctx, p, w, func(s *snap) ([]clientv3.Op, func(int64) *client.Response, error) {
		// Leases granted for an attempt whose transaction did not apply.
		for _, g := range granted {
			k.release(g, nil)
		}
		granted, dropped = nil, nil
		create := action == "set" || action == "create"
		if err := walk(p, s, create); err != nil {
			return nil, nil, err
		}
		cur := s.self
		var curSt stored
		if cur != nil {
			var err error
			if curSt, err = decode(cur.Value); err != nil {
				return nil, nil, err
			}
		}
		now := time.Now()
		var prev *client.Node
		if cur != nil {
			prev, _, _ = k.node(cur, now)
		}
		newSt := stored{dir: o.Dir, flags: flagTarget, action: action, value: value}
		switch action {
		case "create":
			if cur != nil {
				return nil, nil, v2err(client.ErrorCodeNodeExist, p, s.rev)
			}
		case "set":
			if cur != nil {
				if curSt.dir {
					return nil, nil, v2err(client.ErrorCodeNotFile, p, s.rev)
				}
				newSt.flags |= flagRecreated
			}
		case "update", "compareAndSwap":
			if cur == nil {
				return nil, nil, v2err(client.ErrorCodeKeyNotFound, p, s.rev)
			}
			if curSt.dir && (action == "compareAndSwap" || value != "") {
				return nil, nil, v2err(client.ErrorCodeNotFile, p, s.rev)
			}
			if action == "compareAndSwap" {
				valueOK := o.PrevValue == "" || curSt.value == o.PrevValue
				curMod := modifiedIndex(cur, curSt)
				indexOK := o.PrevIndex == 0 || curMod == o.PrevIndex
				if !valueOK || !indexOK {
					var cause string
					switch {
					case !valueOK && !indexOK:
						cause = fmt.Sprintf("[%v != %v] [%v != %v]", o.PrevValue, curSt.value, o.PrevIndex, curMod)
					case !valueOK:
						cause = fmt.Sprintf("[%v != %v]", o.PrevValue, curSt.value)
					default:
						cause = fmt.Sprintf("[%v != %v]", o.PrevIndex, curMod)
					}
					return nil, nil, v2err(client.ErrorCodeTestFailed, cause, s.rev)
				}
			}
			// Kept in place: same kind, same createdIndex.
			newSt.dir = curSt.dir
			newSt.created = int64(createdIndex(cur, curSt))
			if newSt.created == cur.CreateRevision {
				newSt.created = 0
			}
			if o.Refresh {
				newSt.value = curSt.value
				newSt.flags |= flagRefresh
			}
		}
		ops, inherit := k.parents(p, s)
		death, dirLease := ancestorDeath(s)
		if dirLease == 0 {
			dirLease = inherit // an ancestor's lease without a stored expiry
		}
		var own clientv3.LeaseID
		if l != nil {
			newSt.expires = l.expires
			own = l.id
		}
		id, newDeath := leaseFor(newSt.expires, death, dirLease, own)
		lUsed = l != nil && id == l.id
		oldLease = 0
		if cur != nil && cur.Lease != 0 && curSt.expires != 0 && clientv3.LeaseID(cur.Lease) != id {
			oldLease = cur.Lease
		}
		var leaseOpt []clientv3.OpOption
		if id != 0 {
			leaseOpt = []clientv3.OpOption{clientv3.WithLease(id)}
		}
		ops = append(ops, clientv3.OpPut(k.key(p), string(encode(newSt)), leaseOpt...))
		if newSt.dir && cur != nil && (cur.Lease != 0 || id != 0) {
			// Each node below keeps the lease of its death, the earlier of
			// its own expiry and its directory's. Nodes that die with the
			// directory move to its new lease (or to none); a node with a
			// TTL of its own that rode the old one and would now outlive it
			// gets a lease of its own; one on its own lease that would now
			// outlive the directory joins the directory's.
			type eff struct {
				death    int64
				id, old  clientv3.LeaseID
				oldDeath int64
			}
			curDeath := curSt.expires
			if curDeath == 0 || (death != 0 && death < curDeath) {
				curDeath = death
			}
			dirs := map[string]eff{p: {death: newDeath, id: id, old: clientv3.LeaseID(cur.Lease), oldDeath: curDeath}}
			now := time.Now()
			for _, kv := range s.below {
				cp := k.pathOf(kv.Key)
				par, ok := dirs[parentOf(cp)]
				if !ok {
					continue
				}
				cst, err := decode(kv.Value)
				if err != nil {
					return nil, nil, err
				}
				cur := clientv3.LeaseID(kv.Lease)
				var mine clientv3.LeaseID
				if cst.expires != 0 {
					mine = cur
				}
				want, wantDeath := leaseFor(cst.expires, par.death, par.id, mine)
				rides := par.id != 0 && (cst.expires == 0 || cst.expires >= par.death)
				if !rides && cst.expires != 0 && cur != 0 && cur == par.old && cst.expires > par.oldDeath {
					// It rode the directory's old lease, which ends before
					// its own expiry, and would outlive its new one: a
					// lease of its own.
					g, err := k.grant(ctx, max(int64((time.Duration(cst.expires-now.UnixNano())+time.Second-1)/time.Second), 1))
					if err != nil {
						return nil, nil, err
					}
					granted = append(granted, g)
					want = g.id
				}
				if cst.dir {
					oldDeath := par.oldDeath
					if cst.expires != 0 && (oldDeath == 0 || cst.expires < oldDeath) {
						oldDeath = cst.expires
					}
					dirs[cp] = eff{death: wantDeath, id: want, old: cur, oldDeath: oldDeath}
				}
				if want == cur {
					continue
				}
				if cst.expires != 0 && cur != 0 && cur != par.old {
					dropped = append(dropped, struct {
						id int64
						p  string
					}{int64(cur), cp})
				}
				// Not this write's own node: no watch event for it, and
				// its v2 indexes stay.
				created := int64(createdIndex(kv, cst))
				cst.modified = int64(modifiedIndex(kv, cst))
				cst.flags &^= flagTarget | flagRefresh | flagRecreated
				cst.created = 0
				if created != kv.CreateRevision {
					cst.created = created
				}
				var lo []clientv3.OpOption
				if want != 0 {
					lo = append(lo, clientv3.WithLease(want))
				}
				ops = append(ops, clientv3.OpPut(string(kv.Key), string(encode(cst)), lo...))
			}
		}
		return ops, func(rev int64) *client.Response {
			r := &client.Response{Action: action, PrevNode: prev, Index: uint64(rev)}
			n := &client.Node{Key: p, Dir: newSt.dir, Value: newSt.value, ModifiedIndex: uint64(rev), CreatedIndex: uint64(rev)}
			if cur != nil && (action == "update" || action == "compareAndSwap") {
				n.CreatedIndex = createdIndex(cur, curSt)
			}
			n.TTL, n.Expiration = newSt.ttlAt(time.Now())
			r.Node = n
			if o.NoValueOnSuccess {
				r.Node, r.PrevNode = nil, nil
			}
			return r
		}, nil
	})
	if err == nil {
		used = lUsed // else the deferred release revokes l
		if oldLease != 0 {
			k.dropLease(ctx, oldLease, p)
		}
		for _, d := range dropped {
			k.dropLease(ctx, d.id, d.p)
		}
	}
	return resp, err
}

// fastSet is a plain set of a file in one round trip, for the common case:
// every ancestor exists and is a directory without a TTL, and the node is
// a file or missing. The transaction checks exactly that (a directory's
// value sorts between "d" and "e", a file's after "e") and returns nil
// when it does not hold, for the general path to decide. It also returns
// the replaced node's own lease, if any.
func (k *keysAPI) fastSet(ctx context.Context, p, value string, l *lease, noValue bool) (*client.Response, int64, error) {
	var cmps []clientv3.Cmp
	for _, a := range ancestors(p) {
		key := k.key(a)
		cmps = append(cmps,
			clientv3.Compare(clientv3.Value(key), ">", "d"),
			clientv3.Compare(clientv3.Value(key), "<", "e"),
			clientv3.Compare(clientv3.LeaseValue(key), "=", 0))
	}
	st := stored{flags: flagTarget, action: "set", value: value}
	var lo []clientv3.OpOption
	if l != nil {
		st.expires = l.expires
		lo = append(lo, clientv3.WithLease(l.id))
	}
	recreated := st
	recreated.flags |= flagRecreated
	key := k.key(p)
	replace := clientv3.OpPut(key, string(encode(recreated)), append(lo, clientv3.WithPrevKV())...)
	create := clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
		[]clientv3.Op{clientv3.OpPut(key, string(encode(st)), lo...)}, nil)
	resp, err := call(ctx, k.timeout, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return k.cli.Txn(ctx).If(cmps...).Then(
			clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Value(key), ">", "e")},
				[]clientv3.Op{replace}, []clientv3.Op{create}),
		).Commit()
	})
	if err != nil {
		return nil, 0, k.writeErr(err)
	}
	if !resp.Succeeded {
		return nil, 0, nil
	}
	inner := resp.Responses[0].GetResponseTxn()
	var prevKV *mvccpb.KeyValue
	if inner.Succeeded {
		prevKV = inner.Responses[0].GetResponsePut().PrevKv
	} else if !inner.Responses[0].GetResponseTxn().Succeeded {
		return nil, 0, nil // a directory: the general path answers
	}
	rev := resp.Header.Revision
	now := time.Now()
	r := &client.Response{Action: "set", Index: uint64(rev)}
	var prevLease int64
	if prevKV != nil {
		prev, pst, err := k.node(prevKV, now)
		if err != nil {
			return nil, 0, err
		}
		r.PrevNode = prev
		if prevKV.Lease != 0 && pst.expires != 0 && (l == nil || clientv3.LeaseID(prevKV.Lease) != l.id) {
			prevLease = prevKV.Lease
		}
	}
	n := &client.Node{Key: p, Value: value, CreatedIndex: uint64(rev), ModifiedIndex: uint64(rev)}
	n.TTL, n.Expiration = st.ttlAt(now)
	r.Node = n
	if noValue {
		r.Node, r.PrevNode = nil, nil
	}
	return withHeader(r, resp.Header), prevLease, nil
}

// writeErr turns the error of a write transaction that may have reached a
// member and been applied (a timeout, a lost connection, a cancelled
// context, the per-request timeout of WithRequestTimeout) into a
// *client.OutcomeUnknownError, which matches client.ErrOutcomeUnknown. Answers that say the write was not applied
// (no leader, a request the server refused) are returned as they are. The
// adapter never resends a write.
func (k *keysAPI) writeErr(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, client.ErrAttemptTimeout),
		errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost), errors.Is(err, rpctypes.ErrGRPCTimeout),
		errors.Is(err, rpctypes.ErrGRPCTimeoutDueToLeaderFail), errors.Is(err, rpctypes.ErrGRPCTimeoutDueToConnectionLost):
	default:
		switch status.Code(err) {
		case codes.DeadlineExceeded, codes.Canceled, codes.Unavailable, codes.Unknown:
		default:
			return err
		}
	}
	return &client.OutcomeUnknownError{Endpoint: strings.Join(k.cli.Endpoints(), ","), Err: err}
}

// dropLease revokes the lease of node p that the write just detached from
// p and its subtree (after a rewrite or delete), unless a key still
// carries it: a lease with keys outside p's subtree, or with keys that
// the write left on it (nodes of the subtree with a TTL of their own that
// shared the lease, as Migrate before one lease per node gave them), is
// kept, since revoking it would delete them before their time. The leader,
// which answers about the lease, may not have applied the write yet and
// still list the keys the write detached; a linearizable read of those keys
// after the write tells which still carry the lease. Best effort: an
// orphaned lease also ends by itself when its TTL runs out.
func (k *keysAPI) dropLease(ctx context.Context, id int64, p string) {
	r, err := call(ctx, k.timeout, func(ctx context.Context) (*clientv3.LeaseTimeToLiveResponse, error) {
		return k.cli.TimeToLive(ctx, clientv3.LeaseID(id), clientv3.WithAttachedKeys())
	})
	if err != nil || r.TTL <= 0 {
		return
	}
	self, below := k.key(p), k.below(p)
	for _, key := range r.Keys {
		if ks := string(key); ks != self && !strings.HasPrefix(ks, below) {
			return
		}
	}
	const perTxn = 64 // below the server's --max-txn-ops
	for keys := r.Keys; len(keys) > 0; {
		n := min(perTxn, len(keys))
		ops := make([]clientv3.Op, 0, n)
		for _, key := range keys[:n] {
			ops = append(ops, clientv3.OpGet(string(key), clientv3.WithKeysOnly()))
		}
		keys = keys[n:]
		resp, err := call(ctx, k.timeout, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return k.cli.Txn(ctx).Then(ops...).Commit()
		})
		if err != nil {
			return
		}
		for _, rr := range resp.Responses {
			for _, kv := range rr.GetResponseRange().Kvs {
				if kv.Lease == id {
					return
				}
			}
		}
	}
	_, _ = call(ctx, k.timeout, func(ctx context.Context) (*clientv3.LeaseRevokeResponse, error) {
		return k.cli.Revoke(ctx, clientv3.LeaseID(id))
	})
}

// CreateInOrder implements client.KeysAPI. The new key's name is the
// revision of the read the write was based on plus one, or one more than
// the greatest in-order name in the directory if that is larger, so names
// sort in creation order also after keys were copied by Migrate.
func (k *keysAPI) CreateInOrder(ctx context.Context, dir, value string, opts *client.CreateInOrderOptions) (_ *client.Response, err error) {
	var ttl int64
	if opts != nil {
		var err error
		if ttl, err = checkTTL("CreateInOrder", "CreateInOrderOptions.TTL", opts.TTL); err != nil {
			return nil, err
		}
	}
	p := cleanPath(dir)
	var l *lease
	if ttl > 0 {
		var err error
		if l, err = k.grant(ctx, ttl); err != nil {
			return nil, err
		}
	}
	used := false
	defer func() {
		if !used {
			k.release(l, err)
		}
	}()
	lUsed := false // l carries the node (else it rides its directory's lease)
	resp, err := k.write(ctx, p, readWhat{lastSeq: true}, func(s *snap) ([]clientv3.Op, func(int64) *client.Response, error) {
		if err := walk(p, s, true); err != nil {
			return nil, nil, err
		}
		ops, inherit := k.parents(p, s)
		if p != "/" {
			if s.self == nil {
				dirOpts := []clientv3.OpOption{}
				if inherit != 0 {
					dirOpts = append(dirOpts, clientv3.WithLease(inherit))
				}
				ops = append(ops, clientv3.OpPut(k.key(p), string(encode(stored{dir: true})), dirOpts...))
			} else {
				st, err := decode(s.self.Value)
				if err != nil {
					return nil, nil, err
				}
				if !st.dir {
					return nil, nil, v2err(client.ErrorCodeNotDir, p, s.rev)
				}
				if s.self.Lease != 0 {
					inherit = clientv3.LeaseID(s.self.Lease)
				}
			}
		}
		seq := s.rev + 1
		if s.lastSeq != nil {
			name := k.pathOf(s.lastSeq.Key)[len(strings.TrimSuffix(p, "/"))+1:]
			if n, err := strconv.ParseInt(name, 10, 64); err == nil && n >= seq {
				seq = n + 1
			}
		}
		child := strings.TrimSuffix(p, "/") + "/" + fmt.Sprintf("%020d", seq)
		st := stored{flags: flagTarget, action: "create", value: value}
		death, dirLease := ancestorDeath(s)
		if s.self != nil && s.self.Lease != 0 {
			if dst, err := decode(s.self.Value); err == nil && dst.expires != 0 && (death == 0 || dst.expires < death) {
				death, dirLease = dst.expires, clientv3.LeaseID(s.self.Lease)
			}
		}
		if dirLease == 0 {
			dirLease = inherit
		}
		var own clientv3.LeaseID
		if l != nil {
			st.expires, own = l.expires, l.id
		}
		id, _ := leaseFor(st.expires, death, dirLease, own)
		lUsed = l != nil && id == l.id
		var leaseOpt []clientv3.OpOption
		if id != 0 {
			leaseOpt = append(leaseOpt, clientv3.WithLease(id))
		}
		ops = append(ops, clientv3.OpPut(k.key(child), string(encode(st)), leaseOpt...))
		return ops, func(rev int64) *client.Response {
			n := &client.Node{Key: child, Value: value, CreatedIndex: uint64(rev), ModifiedIndex: uint64(rev)}
			n.TTL, n.Expiration = st.ttlAt(time.Now())
			return &client.Response{Action: "create", Node: n, Index: uint64(rev)}
		}, nil
	})
	if err == nil {
		used = lUsed // else the deferred release revokes l
	}
	return resp, err
}

// Delete implements client.KeysAPI.
func (k *keysAPI) Delete(ctx context.Context, key string, opts *client.DeleteOptions) (*client.Response, error) {
	var o client.DeleteOptions
	if opts != nil {
		o = *opts
	}
	p := cleanPath(key)
	if p == "/" {
		return nil, k.rootReadOnly(ctx)
	}
	action := "delete"
	if o.PrevValue != "" || o.PrevIndex != 0 {
		action = "compareAndDelete"
	}
	w := readWhat{countOnly: o.Dir && !o.Recursive}
	var oldLease int64
	resp, err := k.write(ctx, p, w, func(s *snap) ([]clientv3.Op, func(int64) *client.Response, error) {
		if err := walk(p, s, false); err != nil {
			return nil, nil, err
		}
		if s.self == nil {
			return nil, nil, v2err(client.ErrorCodeKeyNotFound, p, s.rev)
		}
		prev, st, err := k.node(s.self, time.Now())
		if err != nil {
			return nil, nil, err
		}
		if action == "compareAndDelete" {
			if st.dir {
				return nil, nil, v2err(client.ErrorCodeNotFile, p, s.rev)
			}
			valueOK := o.PrevValue == "" || st.value == o.PrevValue
			indexOK := o.PrevIndex == 0 || prev.ModifiedIndex == o.PrevIndex
			if !valueOK || !indexOK {
				var cause string
				switch {
				case !valueOK && !indexOK:
					cause = fmt.Sprintf("[%v != %v] [%v != %v]", o.PrevValue, st.value, o.PrevIndex, prev.ModifiedIndex)
				case !valueOK:
					cause = fmt.Sprintf("[%v != %v]", o.PrevValue, st.value)
				default:
					cause = fmt.Sprintf("[%v != %v]", o.PrevIndex, prev.ModifiedIndex)
				}
				return nil, nil, v2err(client.ErrorCodeTestFailed, cause, s.rev)
			}
		}
		if st.dir {
			if !o.Dir && !o.Recursive {
				return nil, nil, v2err(client.ErrorCodeNotFile, p, s.rev)
			}
			if !o.Recursive && s.nBelow > 0 {
				return nil, nil, v2err(client.ErrorCodeDirNotEmpty, p, s.rev)
			}
		}
		oldLease = 0
		if s.self.Lease != 0 && st.expires != 0 {
			oldLease = s.self.Lease
		}
		ops := []clientv3.Op{clientv3.OpDelete(k.key(p)), clientv3.OpPut(k.deleteMarker(), action)}
		if st.dir {
			ops = append(ops, clientv3.OpDelete(k.below(p), clientv3.WithPrefix()))
		}
		return ops, func(rev int64) *client.Response {
			n := &client.Node{Key: p, Dir: st.dir, CreatedIndex: prev.CreatedIndex, ModifiedIndex: uint64(rev)}
			return &client.Response{Action: action, Node: n, PrevNode: prev, Index: uint64(rev)}
		}, nil
	})
	if err == nil && oldLease != 0 {
		k.dropLease(ctx, oldLease, p)
	}
	return resp, err
}
