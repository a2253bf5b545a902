package concurrency

import (
	"context"
	"errors"
	"sync"

	"github.com/etcdv2/client"
)

// Mutex is a fair distributed lock held through a Session.
//
// Each Lock appends an in-order node under the mutex's directory (its key is
// the index of its creation, so names sort by arrival), with the session's
// TTL, renewed by the session. The holder is the node with the lowest
// index. A waiter watches only the node just before its own, from the index
// of the quorum listing it decided on, and lists again (quorum) after any
// event on it: one release wakes one waiter, and waiters are granted in
// arrival order.
//
// The fencing token of a grant is the index of the write that created the
// holder's node (Token). Successive holders of one mutex get strictly
// increasing tokens: a node is granted only once every node created before it
// is gone, and nodes created later have higher indexes. Pass the token to
// every resource the lock protects and have the resource refuse lower
// tokens (FencedSet does it for a key in etcd): a lease-based lock cannot
// stop a paused holder from acting after its lease ran out, a fenced
// resource can.
//
// A Mutex is safe for concurrent use, but it is one holder: a second Lock
// while it holds or waits fails with ErrHeld.
type Mutex struct {
	s   *Session
	dir string

	mu   sync.Mutex
	busy bool
	held *entry
}

// NewMutex returns the mutex whose nodes live under the directory key.
// Nothing is written until Lock.
func NewMutex(s *Session, key string) *Mutex {
	return &Mutex{s: s, dir: cleanDir(key)}
}

func (m *Mutex) begin() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.busy || m.held != nil {
		return ErrHeld
	}
	m.busy = true
	return nil
}

func (m *Mutex) end(e *entry) {
	m.mu.Lock()
	m.busy = false
	m.held = e
	m.mu.Unlock()
}

// Lock blocks until the mutex is held by this handle. It returns ctx.Err()
// when ctx ends first, ErrSessionExpired when the session ends first (also
// while the quorum read that would grant the lock is in flight: a grant is
// returned only if the session is alive once that read was answered); in
// both cases its node is removed (or, if it cannot be reached, left to
// expire) and no goroutine is left running.
func (m *Mutex) Lock(ctx context.Context) error {
	return m.lock(ctx, false)
}

// TryLock takes the mutex if nobody holds or waits for it, and returns
// ErrLocked otherwise, without waiting (its node is removed).
func (m *Mutex) TryLock(ctx context.Context) error {
	return m.lock(ctx, true)
}

func (m *Mutex) lock(ctx context.Context, try bool) error {
	if err := m.begin(); err != nil {
		return err
	}
	e, err := m.s.enqueue(ctx, m.dir, envelope{Kind: kindMutex, Owner: newID(), Session: m.s.id})
	if err != nil {
		m.end(nil)
		return err
	}
	err = e.wait(ctx, func(nodes []*client.Node, envs []envelope, i int) (decision, error) {
		if err := checkKinds(nodes[:i], envs[:i], kindMutex); err != nil {
			return decision{}, err
		}
		if i == 0 {
			return decision{granted: true}, nil
		}
		if try {
			return decision{}, ErrLocked
		}
		return decision{watchKey: nodes[i-1].Key}, nil
	})
	if err != nil {
		e.remove(ctx)
		m.end(nil)
		return err
	}
	m.end(e)
	return nil
}

// Unlock releases the mutex: it stops renewing the node and deletes it if it
// still has the value this handle wrote. It returns ErrNotHeld when the
// handle holds nothing, and ErrSessionExpired when the node was already gone
// (the lock had been lost); the handle can be locked again either way.
//
// The delete is attempted even when ctx has already ended (a deferred
// Unlock after the request timed out): it uses ctx's values but neither its
// cancellation nor its deadline, and is retried while its outcome is
// unknown for at most 5 s. If it cannot be done in that time, Unlock returns
// ctx.Err(), or context.DeadlineExceeded if ctx has not ended, and the node,
// no longer renewed, expires with its TTL.
func (m *Mutex) Unlock(ctx context.Context) error {
	m.mu.Lock()
	e := m.held
	if e == nil || m.busy {
		m.mu.Unlock()
		return ErrNotHeld
	}
	m.busy = true
	m.mu.Unlock()
	err := e.release(ctx)
	m.end(nil)
	return err
}

// release deletes a held node; ErrSessionExpired if it was gone already.
// Like remove, it runs under ctx without its cancellation, bounded by
// cleanupTimeout: the node is no longer renewed, and a release skipped
// because the caller's context had ended would leave the lock taken until
// the node expires. If the delete cannot be done in that time it returns
// ctx.Err() if ctx has ended, else context.DeadlineExceeded.
//
// The delete is deleteLease's: conditional on the value the node was last
// known to have, and, if it has another (a Proclaim applied but not
// answered), on the value read back as long as the node is still ours.
func (e *entry) release(ctx context.Context) error {
	l := e.lease
	e.s.detach(l)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	err := deleteLease(cctx, e.s.kapi, l.key, e.s.valueOf(l), l.owner, l.created)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNodeLost):
		return ErrSessionExpired
	case cctx.Err() != nil:
		return releaseErr(ctx, cctx)
	}
	return err
}

// releaseErr is the error of a release that ran out of time: the caller's
// ctx.Err() if its context has ended, else the cleanup's own.
func releaseErr(ctx, cctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return cctx.Err()
}

// Key returns the key of this handle's node while it holds the mutex, "" otherwise.
func (m *Mutex) Key() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.held == nil {
		return ""
	}
	return m.held.key()
}

// Token returns the fencing token of the current grant (the index of the
// write that created the holder's node), or 0 when the handle does not hold
// the mutex.
func (m *Mutex) Token() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.held == nil {
		return 0
	}
	return m.held.token()
}
