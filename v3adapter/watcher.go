package v3adapter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/etcdv2/client"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Watcher implements client.KeysAPI. See watcher.Next.
func (k *keysAPI) Watcher(key string, opts *client.WatcherOptions) client.Watcher {
	w := &watcher{k: k, p: cleanPath(key)}
	if opts != nil {
		w.recursive = opts.Recursive
		if opts.AfterIndex > 0 {
			w.next = int64(opts.AfterIndex) + 1
		}
	}
	return w
}

// watcher turns v3 watch responses into v2 events. It holds no goroutine
// between calls of Next: each call opens a v3 watch from the revision after
// the last event it returned (or from AfterIndex+1) and closes it before
// returning, so every event is returned once and in order, also when the v3
// client moves to another member.
type watcher struct {
	mu        sync.Mutex // serializes Next
	k         *keysAPI
	p         string
	recursive bool
	next      int64 // next revision to look at; 0 = the current one + 1, fixed by the first Next
	pending   []*client.Response
}

// reopenDelay spaces reopened watches after a stream error (no leader,
// member gone); the v3 client itself moves to another endpoint.
const reopenDelay = 100 * time.Millisecond

// Next implements client.Watcher. A compacted start revision gives
// client.Error{Code: 401}, as v2 does for an index out of its history.
// Concurrent calls are serialized: each waits for the one before it.
func (w *watcher) Next(ctx context.Context) (*client.Response, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if len(w.pending) > 0 {
			r := w.pending[0]
			w.pending = w.pending[1:]
			return r, nil
		}
		if w.next == 0 {
			r, err := w.k.cli.Get(ctx, w.k.key(w.p), clientv3.WithCountOnly())
			if err != nil {
				return nil, err
			}
			w.next = r.Header.Revision + 1
		}
		if err := w.poll(ctx); err != nil {
			return nil, err
		}
		if len(w.pending) > 0 {
			continue
		}
		t := time.NewTimer(reopenDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// poll watches from w.next until at least one event is pending, the stream
// fails (nil error: Next reopens it) or ctx ends.
func (w *watcher) poll(ctx context.Context) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithRev(w.next), clientv3.WithPrevKV()}
	start := w.k.key(w.p)
	if w.recursive {
		opts = append(opts, clientv3.WithRange(clientv3.GetPrefixRangeEnd(w.k.below(w.p))))
		if w.p == "/" {
			start = w.k.below(w.p)
		}
	}
	for resp := range w.k.cli.Watch(wctx, start, opts...) {
		if resp.CompactRevision != 0 {
			return v2err(client.ErrorCodeEventIndexCleared,
				fmt.Sprintf("the requested history has been cleared [%v/%v]", resp.CompactRevision, w.next), resp.Header.Revision)
		}
		if err := resp.Err(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if transient(err) {
				return nil // Next reopens the watch
			}
			return err
		}
		evs := resp.Events
		for len(evs) > 0 {
			rev := evs[0].Kv.ModRevision
			n := 1
			for n < len(evs) && evs[n].Kv.ModRevision == rev {
				n++
			}
			r, err := w.convert(ctx, rev, evs[:n])
			if err != nil {
				if ctx.Err() == nil && (transient(err) || len(w.pending) > 0) {
					// Next returns the events before rev first, then
					// reopens the watch at rev.
					return nil
				}
				return err
			}
			if r != nil {
				// As v2's X-Etcd-Index on a watch: the store's index
				// when the answer was made, not the event's.
				r.Index = uint64(resp.Header.Revision)
				withHeader(r, &resp.Header)
				w.pending = append(w.pending, r)
			}
			w.next = rev + 1
			evs = evs[n:]
		}
		if len(w.pending) > 0 {
			return nil
		}
	}
	return ctx.Err()
}

// transient reports errors after which the watch is reopened: the member
// lost its leader or is unreachable (the v3 client moves to another one).
func transient(err error) bool {
	return errors.Is(err, rpctypes.ErrNoLeader) || status.Code(err) == codes.Unavailable
}

// matches tells whether a v2 path is one the watcher reports.
func (w *watcher) matches(p string) bool {
	if p == w.p {
		return true
	}
	if !w.recursive {
		return false
	}
	base := strings.TrimSuffix(w.p, "/") + "/"
	return strings.HasPrefix(p, base) && !isHidden(base, p)
}

// convert turns the v3 events of one revision (one adapter transaction or
// one lease expiry) into the v2 event the watcher reports, or nil.
func (w *watcher) convert(ctx context.Context, rev int64, evs []*clientv3.Event) (*client.Response, error) {
	now := time.Now()
	var target, deleted *clientv3.Event
	for _, ev := range evs {
		p := w.k.pathOf(ev.Kv.Key)
		if !w.matches(p) {
			continue
		}
		if ev.Type == clientv3.EventTypePut {
			st, err := decode(ev.Kv.Value)
			if err != nil || st.flags&flagTarget == 0 {
				continue
			}
			if target == nil || len(ev.Kv.Key) < len(target.Kv.Key) {
				target = ev
			}
			continue
		}
		if deleted == nil || len(ev.Kv.Key) < len(deleted.Kv.Key) {
			deleted = ev
		}
	}
	if target != nil {
		n, st, err := w.k.node(target.Kv, now)
		if err != nil {
			return nil, err
		}
		if st.flags&flagRefresh != 0 {
			return nil, nil // v2 does not deliver refreshes to watchers
		}
		r := &client.Response{Action: st.action, Node: n, Index: uint64(rev)}
		if target.PrevKv != nil && st.action != "create" {
			r.PrevNode, _, _ = w.k.node(target.PrevKv, now)
		}
		return r, nil
	}
	if deleted == nil {
		return nil, nil
	}
	prevKV := deleted.PrevKv
	// A directory deleted above the watched key: v2 reports the directory.
	action, top, err := w.deleteInfo(ctx, rev)
	if err != nil {
		return nil, err
	}
	if top != nil {
		prevKV = top
	}
	if action == "" {
		// No adapter write deleted anything at rev: a lease expired (or a
		// program other than the adapter deleted the keys).
		action = "delete"
		if prevKV != nil && prevKV.Lease != 0 {
			action = "expire"
		}
	}
	if prevKV == nil {
		return &client.Response{Action: action, Index: uint64(rev),
			Node: &client.Node{Key: w.k.pathOf(deleted.Kv.Key), ModifiedIndex: uint64(rev)}}, nil
	}
	prev, _, err := w.k.node(prevKV, now)
	if err != nil {
		return nil, err
	}
	n := &client.Node{Key: prev.Key, Dir: prev.Dir, CreatedIndex: prev.CreatedIndex, ModifiedIndex: uint64(rev)}
	return &client.Response{Action: action, Node: n, PrevNode: prev, Index: uint64(rev)}, nil
}

// deleteInfo reads, as of the delete at rev, the action of the adapter
// write that deleted (the delete marker's value if the marker was put at
// rev, "" if no adapter write deleted anything then) and the previous
// version of the topmost ancestor of the watched path deleted at rev, or
// nil. The answer depends on rev alone, not on when the watcher reads it,
// so every watcher reports the same event. If rev-1 is compacted the
// ancestor is not looked for (the watcher then reports the key's own
// delete); if rev is compacted too, the action cannot be known and the
// error is client.Error{Code: 401}, as for a compacted start revision.
func (w *watcher) deleteInfo(ctx context.Context, rev int64) (string, *mvccpb.KeyValue, error) {
	marker := clientv3.OpGet(w.k.deleteMarker(), clientv3.WithRev(rev))
	anc := ancestors(w.p)
	ops := make([]clientv3.Op, 0, 1+2*len(anc))
	ops = append(ops, marker)
	for _, a := range anc {
		ops = append(ops, clientv3.OpGet(w.k.key(a), clientv3.WithRev(rev-1)), clientv3.OpGet(w.k.key(a), clientv3.WithRev(rev)))
	}
	resp, err := w.k.cli.Txn(ctx).Then(ops...).Commit()
	if errors.Is(err, rpctypes.ErrCompacted) && len(anc) > 0 {
		anc = nil
		resp, err = w.k.cli.Txn(ctx).Then(marker).Commit()
	}
	if errors.Is(err, rpctypes.ErrCompacted) {
		return "", nil, v2err(client.ErrorCodeEventIndexCleared,
			fmt.Sprintf("the requested history has been cleared [revision %v of a delete]", rev), rev)
	}
	if err != nil {
		return "", nil, err
	}
	action := ""
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 && kvs[0].ModRevision == rev {
		action = string(kvs[0].Value)
	}
	for i := range anc {
		before := resp.Responses[1+2*i].GetResponseRange().Kvs
		after := resp.Responses[2+2*i].GetResponseRange().Kvs
		if len(before) == 1 && len(after) == 0 {
			return action, before[0], nil
		}
	}
	return action, nil, nil
}
