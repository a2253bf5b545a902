package concurrency

import (
	"context"
	"strings"
	"time"

	"github.com/etcdv2/client"
)

// entry is one in-order node of a session in a coordination directory: a
// mutex, election, semaphore or read-write lock waiter or holder.
type entry struct {
	s   *Session
	dir string
	// env is the node's envelope as last written (Proclaim changes its
	// Value under lease.mu); value is the value the node was created
	// with (the lease keeps the value it has now).
	env   envelope
	value string
	node  *client.Node
	lease *lease
}

// decision is what a recipe makes of a listing: granted, or the key to
// wait on (a predecessor, or the directory itself, recursively).
type decision struct {
	granted   bool
	watchKey  string
	recursive bool
}

// decider looks at the live nodes of the directory, sorted by creation,
// mine being at index i, and decides.
type decider func(nodes []*client.Node, envs []envelope, i int) (decision, error)

// enqueue creates this entry's node under dir with the session's TTL and
// attaches it to the session. An ambiguous create is resolved by listing
// the directory and looking for the owner id; it is resent (with the same
// owner id) only when the listing shows it was not applied. If a delayed
// copy shows up later, wait removes it.
func (s *Session) enqueue(ctx context.Context, dir string, env envelope) (*entry, error) {
	if !s.alive() {
		return nil, ErrSessionExpired
	}
	e := &entry{s: s, dir: dir, env: env, value: env.encode()}
	sent := time.Now()
	n, err := s.createChecked(ctx, func(ctx context.Context) (*client.Response, error) {
		return s.kapi.CreateInOrder(ctx, dir, e.value, &client.CreateInOrderOptions{TTL: s.ttl})
	}, nil, func(ctx context.Context) (*client.Node, error) {
		r, err := s.kapi.Get(ctx, dir, quorumList)
		if err != nil {
			if errCode(err, client.ErrorCodeKeyNotFound) {
				return nil, nil
			}
			return nil, err
		}
		for _, c := range files(r.Node) {
			if c.Value == e.value {
				return c, nil
			}
		}
		return nil, nil
	})
	if err != nil {
		if !serverRefused(err) {
			// A create may have been applied after all: remove it if it
			// can be found quickly; otherwise it expires (nobody renews it).
			e.cleanupByOwner(ctx)
		}
		return nil, s.ctxErr(ctx, err)
	}
	e.node = n
	l, err := s.attach(n.Key, e.value, env.Owner, n.CreatedIndex, sent)
	if err != nil {
		e.remove(ctx)
		return nil, err
	}
	e.lease = l
	return e, nil
}

// key returns the node's key.
func (e *entry) key() string { return e.node.Key }

// token returns the node's createdIndex.
func (e *entry) token() uint64 { return e.node.CreatedIndex }

// remove stops renewing the node and deletes it (only if it still has our
// value). It uses ctx without its cancellation, bounded by cleanupTimeout,
// so that it also runs after the caller's context ended.
func (e *entry) remove(ctx context.Context) error {
	e.s.detach(e.lease)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	return deleteOwned(cctx, e.s.kapi, e.node.Key, e.value)
}

// cleanupByOwner removes any node of the directory carrying this entry's
// value: used when a create's outcome is unknown and the caller gave up.
func (e *entry) cleanupByOwner(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	r, err := e.s.kapi.Get(cctx, e.dir, quorumList)
	if err != nil {
		return
	}
	for _, c := range files(r.Node) {
		if c.Value == e.value {
			_ = deleteOwned(cctx, e.s.kapi, c.Key, e.value)
		}
	}
}

// wait loops until decide grants, ctx ends, the session ends or the node is
// found gone. Each round decides on a quorum listing (recursive, sorted),
// then waits for one event on what decide named, from the listing's index
// on, and lists again whatever happened (events are hints, the listing is
// the truth). A grant is returned only if, once the listing that decided it
// was answered, the session is alive and still renews the node. On any
// error return the caller removes the node.
func (e *entry) wait(ctx context.Context, decide decider) error {
	s := e.s
	d := backoffMin
	for {
		if !s.alive() {
			return s.ctxErr(ctx, ErrSessionExpired)
		}
		r, err := s.kapi.Get(ctx, e.dir, quorumList)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errCode(err, client.ErrorCodeKeyNotFound) {
				// The directory is gone, so is our node.
				s.lose(e.lease)
				return s.ctxErr(ctx, ErrSessionExpired)
			}
			if serverRefused(err) {
				return err
			}
			if d, err = backoff(ctx, s.done, d); err != nil {
				return s.ctxErr(ctx, err)
			}
			continue
		}
		d = backoffMin
		nodes := files(r.Node)
		live := nodes[:0:0]
		envs := make([]envelope, 0, len(nodes))
		mine := -1
		for _, c := range nodes {
			env, ok := decodeEnvelope(c.Value)
			if ok && env.Owner == e.env.Owner && c.Key != e.node.Key {
				// A late copy of our own ambiguous create: nobody renews
				// it, remove it.
				_ = deleteOwned(ctx, s.kapi, c.Key, c.Value)
				continue
			}
			if c.Key == e.node.Key {
				mine = len(live)
			}
			live = append(live, c)
			envs = append(envs, env)
		}
		if mine < 0 {
			// Our node expired or was deleted: whatever we held is gone.
			s.lose(e.lease)
			return s.ctxErr(ctx, ErrSessionExpired)
		}
		dec, err := decide(live, envs, mine)
		if err != nil {
			return err
		}
		if dec.granted {
			// The session may have ended while the listing was in
			// flight (Close, its deadline, a lost key): a grant is only
			// good while the session is alive and renews the node.
			if !s.attached(e.lease) || !s.alive() {
				return s.ctxErr(ctx, ErrSessionExpired)
			}
			return nil
		}
		if err := e.watchOnce(ctx, dec.watchKey, dec.recursive, r.Index); err != nil {
			return err
		}
	}
}

// watchOnce waits for one event on key after index, for at most watchCap,
// or until the session ends. It returns only ctx's or the session's end;
// every other outcome (an event, 401/400, a transport error, the cap) means
// "list again".
func (e *entry) watchOnce(ctx context.Context, key string, recursive bool, index uint64) error {
	s := e.s
	wctx, cancel := context.WithTimeout(ctx, watchCap)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	w := s.kapi.Watcher(key, &client.WatcherOptions{AfterIndex: index, Recursive: recursive})
	_, err := w.Next(wctx)
	dropWatcher(w)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !s.alive() {
		return ErrSessionExpired
	}
	if err != nil && wctx.Err() == nil && !errCode(err, client.ErrorCodeEventIndexCleared) && !errCode(err, client.ErrorCodeWatcherCleared) {
		// No member answered: do not spin.
		if _, berr := backoff(ctx, s.done, 200*time.Millisecond); berr != nil {
			return s.ctxErr(ctx, berr)
		}
	}
	return nil
}

// dropWatcher lets go of a watcher after its last use. The client's
// watchers share long polls and stay in theirs between calls of Next: one
// leaves only when its Next returns a context error, or when it is
// garbage-collected (client.Watcher, "Shared polls"), so a watcher dropped
// after an event would keep a poll and its goroutine until the next GC.
// Next with a context that has already ended returns at once, and leaves.
// For any other KeysAPI this is one call of Next that returns at once with
// an error, and whatever it returns is of no use any more.
func dropWatcher(w client.Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = w.Next(ctx)
}

// checkKinds returns ErrForeignKey if a node of the directory was not
// written by this package for one of kinds.
func checkKinds(nodes []*client.Node, envs []envelope, kinds ...string) error {
	for i := range nodes {
		ok := false
		for _, k := range kinds {
			if envs[i].Kind == k {
				ok = true
			}
		}
		if !ok {
			return ErrForeignKey
		}
	}
	return nil
}

// cleanDir returns the directory key without a trailing slash.
func cleanDir(p string) string {
	p = strings.TrimSuffix(p, "/")
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}
