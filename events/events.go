// Package events fires and receives named user events through etcd v2,
// the counterpart of the Consul API's Event.Fire and Event.List. It is
// built on client.KeysAPI alone.
//
// An event is an in-order key (KeysAPI.CreateInOrder) under
// <root>/<name>, whose value is the event as JSON and whose TTL is the
// event's retention: the key's name is its creation index, so events sort
// in firing order, and an expired event is gone from List. Unlike Consul's
// gossip, delivery is durable and ordered: Watch delivers every event
// fired after it was called, once each, in firing order, across member
// failures and the server's history window (it lists the events again
// when the watch falls out of the window). An event fired and expired
// while a watcher could not reach the cluster at all is not delivered
// to it: keep the retention longer than any outage to tolerate.
//
// Every fire and every expiry is one event in the cluster's 1000-event
// history, which all watchers share: fire at a modest rate, and keep the
// retention modest.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/internal/progress"
)

// DefaultTTL is the retention of an event when WithTTL is not given.
const DefaultTTL = time.Hour

// ErrInvalid is matched by the error of a call with an event name that
// cannot be used (empty, not one path segment, or starting with "_") or a
// TTL below one second.
var ErrInvalid = errors.New("events: invalid argument")

// Event is one fired event.
type Event struct {
	// ID is the random identifier Fire returned.
	ID string `json:"id"`
	// Name is the event's name.
	Name string `json:"name"`
	// Payload is the data given to Fire.
	Payload []byte `json:"payload,omitempty"`
	// Index is the etcd index at which the event was fired (Consul's
	// LTime): events of one name are ordered by it.
	Index uint64 `json:"-"`
	// Key is the event's etcd key.
	Key string `json:"-"`
}

// Events fires and reads events under a root key.
type Events struct {
	kapi client.KeysAPI
	root string
}

// New returns an Events keeping its events under root (e.g. "/events").
func New(kapi client.KeysAPI, root string) *Events {
	segs := strings.FieldsFunc(root, func(r rune) bool { return r == '/' })
	return &Events{kapi: kapi, root: "/" + strings.Join(segs, "/")}
}

func (e *Events) dir(name string) (string, error) {
	if name == "" || name == "." || name == ".." || name[0] == '_' || strings.ContainsAny(name, "/?#%") {
		return "", fmt.Errorf("%w: event name %q", ErrInvalid, name)
	}
	if e.root == "/" {
		return "/" + name, nil
	}
	return e.root + "/" + name, nil
}

// FireOption configures Fire.
type FireOption func(*fireOptions)

type fireOptions struct{ ttl time.Duration }

// WithTTL sets how long the event is kept (whole seconds, at least one).
// The default is DefaultTTL.
func WithTTL(ttl time.Duration) FireOption { return func(o *fireOptions) { o.ttl = ttl } }

// Fire records an event and returns its ID. When the write's outcome is
// unknown, Fire returns the ID with an error matching
// client.ErrOutcomeUnknown: the event may or may not have been recorded
// (List shows it, with that ID, if it was); it is not resent. That
// includes ctx ending after the write may have been sent: the error then
// matches ctx.Err() too. Other errors, and a ctx that ended before
// anything was sent, return an empty ID.
func (e *Events) Fire(ctx context.Context, name string, payload []byte, opts ...FireOption) (string, error) {
	o := fireOptions{ttl: DefaultTTL}
	for _, f := range opts {
		f(&o)
	}
	dir, err := e.dir(name)
	if err != nil {
		return "", err
	}
	if o.ttl < time.Second {
		return "", fmt.Errorf("%w: TTL %v is below one second", ErrInvalid, o.ttl)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	val, err := json.Marshal(Event{ID: id, Name: name, Payload: payload})
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err // nothing sent
	}
	if _, err := e.kapi.CreateInOrder(ctx, dir, string(val), &client.CreateInOrderOptions{TTL: o.ttl}); err != nil {
		switch {
		case errors.Is(err, client.ErrOutcomeUnknown):
			return id, err
		case ctx.Err() != nil && errors.Is(err, ctx.Err()):
			// The client gives up when ctx ends, also after the
			// request was sent.
			return id, fmt.Errorf("events: the event may have been recorded (%w): %w", client.ErrOutcomeUnknown, ctx.Err())
		}
		return "", err
	}
	return id, nil
}

// decode turns a node into an Event of name.
func decode(name string, n *client.Node) (Event, bool) {
	if n == nil || n.Dir {
		return Event{}, false
	}
	var ev Event
	if err := json.Unmarshal([]byte(n.Value), &ev); err != nil || ev.ID == "" || ev.Name != name {
		return Event{}, false
	}
	ev.Index, ev.Key = n.CreatedIndex, n.Key
	return ev, true
}

// list reads the events of name with a quorum read, in firing order, and
// the read's index.
func (e *Events) list(ctx context.Context, name string) ([]Event, uint64, string, error) {
	dir, err := e.dir(name)
	if err != nil {
		return nil, 0, "", err
	}
	resp, err := e.kapi.Get(ctx, dir, &client.GetOptions{Quorum: true, Sort: true})
	if err != nil {
		var ce client.Error
		if client.IsKeyNotFound(err) && errors.As(err, &ce) {
			return []Event{}, ce.Index, "", nil
		}
		return nil, 0, "", err
	}
	out := []Event{}
	for _, n := range resp.Node.Nodes {
		if ev, ok := decode(name, n); ok {
			out = append(out, ev)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, resp.Index, resp.ClusterID, nil
}

// List returns the events of name that have not expired, in firing order,
// read with a quorum read.
func (e *Events) List(ctx context.Context, name string) ([]Event, error) {
	evs, _, _, err := e.list(ctx, name)
	return evs, err
}

// Watch returns an iterator over every event of name fired after Watch
// was called, each once, in firing order. Watch reads the events once (a
// quorum read) to fix that point; the iteration then watches from it. When
// the watch falls out of the server's history window, the cluster ID
// changes or the member behind the watch stops following the cluster (a
// check every 10 s, as cache.WithProgressInterval describes), it lists
// the events again and yields the ones it has not yielded, in order,
// before watching on. Other errors are retried with backoff, except
// those no retry can fix, which are yielded once, as the client gave them,
// and end it: an etcd error below 300 other than 100 (a missing directory
// is an empty one), such as the root below a file (104) or unauthorized
// (110), the client's cluster-ID mismatch (client.ErrClusterIDMismatch)
// and a closed client (client.ErrClosed).
// It yields (Event{}, ctx.Err()) and ends when ctx ends; an error of the
// first read (or an invalid name) is yielded once and ends it.
func (e *Events) Watch(ctx context.Context, name string) iter.Seq2[Event, error] {
	dir, derr := e.dir(name)
	var start uint64
	var clusterID string
	if derr == nil {
		_, start, clusterID, derr = e.list(ctx, name)
	}
	return func(yield func(Event, error) bool) {
		if derr != nil {
			if ctx.Err() != nil {
				derr = ctx.Err()
			}
			yield(Event{}, derr)
			return
		}
		last := start // every event up to last was before the call or yielded
		after := start
		backoff := time.Duration(0)
		for {
			switch e.watchRound(ctx, dir, name, after, &last, &clusterID, &backoff, yield) {
			case roundEnd:
				return
			case roundResync:
			}
			// Out of the window, or a stuck member: list, yield what was
			// missed, watch on.
			for {
				evs, idx, cid, err := e.list(ctx, name)
				if err != nil {
					if ctx.Err() != nil {
						yield(Event{}, ctx.Err())
						return
					}
					if unrecoverable(err) {
						yield(Event{}, err)
						return
					}
					backoff = nextBackoff(backoff)
					if !sleep(ctx, backoff) {
						yield(Event{}, ctx.Err())
						return
					}
					continue
				}
				if cid != "" && clusterID != "" && cid != clusterID {
					// Another cluster: its indexes do not compare with
					// ours; everything listed there is new to us.
					last = 0
				}
				if cid != "" {
					clusterID = cid
				}
				for _, ev := range evs {
					if ev.Index <= last {
						continue
					}
					last = ev.Index
					if !yield(ev, nil) {
						return
					}
				}
				last = max(last, idx)
				after = idx
				break
			}
		}
	}
}

// Results of a watch round.
const (
	roundEnd    = iota // the iteration is over
	roundResync        // list again, then watch on
)

// progressInterval is how often a watch checks that its member follows
// the cluster (see internal/progress).
const progressInterval = 10 * time.Second

// watchRound watches dir from after, yielding new events, until the
// iteration ends (roundEnd) or the events must be listed again
// (roundResync: the watch fell out of the history window, the cluster
// changed, or the member behind the watch stopped following the cluster).
func (e *Events) watchRound(ctx context.Context, dir, name string, after uint64, last *uint64, clusterID *string,
	backoff *time.Duration, yield func(Event, error) bool) int {
	wctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if progress.Watch(wctx, e.kapi, dir+"/_etcdv2-client-progress", progressInterval) == progress.ErrStale {
			cancel(progress.ErrStale)
		}
	}()
	defer wg.Wait()
	defer cancel(nil)
	w := e.kapi.Watcher(dir, &client.WatcherOptions{AfterIndex: after, Recursive: true})
	defer leave(w)
	for {
		r, err := w.Next(wctx)
		if err != nil {
			if ctx.Err() != nil {
				yield(Event{}, ctx.Err())
				return roundEnd
			}
			if context.Cause(wctx) == progress.ErrStale ||
				errors.Is(err, client.Error{Code: client.ErrorCodeEventIndexCleared}) ||
				errors.Is(err, client.Error{Code: client.ErrorCodeWatcherCleared}) {
				return roundResync
			}
			if unrecoverable(err) {
				yield(Event{}, err)
				return roundEnd
			}
			*backoff = nextBackoff(*backoff)
			if !sleep(wctx, *backoff) {
				if ctx.Err() != nil {
					yield(Event{}, ctx.Err())
					return roundEnd
				}
				return roundResync
			}
			continue
		}
		*backoff = 0
		if *clusterID != "" && r.ClusterID != "" && r.ClusterID != *clusterID {
			return roundResync
		}
		if r.Action != "create" || r.Node == nil || r.Node.CreatedIndex <= *last {
			continue
		}
		ev, ok := decode(name, r.Node)
		if !ok {
			continue
		}
		*last = ev.Index
		if !yield(ev, nil) {
			return roundEnd
		}
	}
}

// unrecoverable reports whether err, of a listing or a watch, is one that
// no retry can fix (see Watch).
func unrecoverable(err error) bool {
	var e client.Error
	if errors.As(err, &e) {
		return e.Code < 300 && e.Code != client.ErrorCodeKeyNotFound
	}
	return errors.Is(err, client.ErrClusterIDMismatch) || errors.Is(err, client.ErrClosed)
}

// leave ends w's part in the client's shared long poll after its last
// use. A watcher of this client stays subscribed to the shared poll of its
// key between calls of Next, keeping the poll (a connection and a
// goroutine) open, and leaves it only when a Next returns a context error
// or when the watcher is garbage-collected (client.Watcher, "Shared
// polls"); one Next with an ended context makes it leave now.
func leave(w client.Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = w.Next(ctx)
}

func nextBackoff(cur time.Duration) time.Duration {
	if cur == 0 {
		return 100 * time.Millisecond
	}
	return min(2*cur, 5*time.Second)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
