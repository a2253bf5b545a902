package concurrency

import (
	"context"
	"fmt"
	"sync"

	"github.com/etcdv2/client"
)

// Semaphore lets at most limit holders in at once, held through a Session.
//
// Each Acquire appends an in-order node (with the session's TTL, renewed by
// the session) under the semaphore's directory; a node holds a permit while
// it is among the first limit nodes. Nodes are never created ahead of an
// existing one, so a node that holds keeps holding until it leaves, and at
// every index of the cluster's history at most limit nodes hold. Waiters are
// granted in arrival order. A waiter cannot watch a single predecessor (any
// node ahead may leave), so waiters watch the directory: each release or
// expiry wakes every waiter, which lists again (renewals use refresh and wake
// nobody).
//
// Every holder of one directory must use the same limit: the limit is stored
// in each node, and Acquire fails with ErrLimitMismatch when a node ahead
// carries another.
//
// A Semaphore is safe for concurrent use; one handle holds at most one permit.
type Semaphore struct {
	s     *Session
	dir   string
	limit int

	mu   sync.Mutex
	busy bool
	held *entry
}

// NewSemaphore returns the semaphore of limit permits whose nodes live under
// the directory key. A limit below 1 is treated as 1. Nothing is written
// until Acquire.
func NewSemaphore(s *Session, key string, limit int) *Semaphore {
	if limit < 1 {
		limit = 1
	}
	return &Semaphore{s: s, dir: cleanDir(key), limit: limit}
}

// Acquire blocks until this handle holds a permit. It returns ctx.Err() when
// ctx ends first and ErrSessionExpired when the session ends first, removing
// its node in both cases.
func (sem *Semaphore) Acquire(ctx context.Context) error { return sem.acquire(ctx, false) }

// TryAcquire takes a permit if one is free now and returns ErrLocked
// otherwise, without waiting.
func (sem *Semaphore) TryAcquire(ctx context.Context) error { return sem.acquire(ctx, true) }

func (sem *Semaphore) acquire(ctx context.Context, try bool) error {
	sem.mu.Lock()
	if sem.busy || sem.held != nil {
		sem.mu.Unlock()
		return ErrHeld
	}
	sem.busy = true
	sem.mu.Unlock()
	e, err := sem.s.enqueue(ctx, sem.dir, envelope{Kind: kindSemaphore, Owner: newID(), Session: sem.s.id, Limit: sem.limit})
	if err == nil {
		err = e.wait(ctx, func(nodes []*client.Node, envs []envelope, i int) (decision, error) {
			if err := checkKinds(nodes[:i], envs[:i], kindSemaphore); err != nil {
				return decision{}, err
			}
			for _, env := range envs[:i] {
				if env.Limit != sem.limit {
					return decision{}, fmt.Errorf("%w: %d here, %d in %s", ErrLimitMismatch, sem.limit, env.Limit, sem.dir)
				}
			}
			if i < sem.limit {
				return decision{granted: true}, nil
			}
			if try {
				return decision{}, ErrLocked
			}
			return decision{watchKey: sem.dir, recursive: true}, nil
		})
		if err != nil {
			e.remove(ctx)
		}
	}
	sem.mu.Lock()
	sem.busy = false
	if err == nil {
		sem.held = e
	}
	sem.mu.Unlock()
	return err
}

// Release gives the permit back (deletes this handle's node if it is still
// its own). It returns ErrNotHeld when the handle holds no permit and
// ErrSessionExpired when its node was already gone. Like Mutex.Unlock, the
// delete is attempted even when ctx has already ended, for at most 5 s.
func (sem *Semaphore) Release(ctx context.Context) error {
	sem.mu.Lock()
	e := sem.held
	if e == nil || sem.busy {
		sem.mu.Unlock()
		return ErrNotHeld
	}
	sem.busy = true
	sem.mu.Unlock()
	err := e.release(ctx)
	sem.mu.Lock()
	sem.busy = false
	sem.held = nil
	sem.mu.Unlock()
	return err
}

// Token returns the index of the write that created this handle's node
// while it holds a permit, 0 otherwise. A node is granted no earlier in the
// cluster's history than every node created before it, so permits are
// granted in token order (several at the same index when several permits
// free up at once).
func (sem *Semaphore) Token() uint64 {
	sem.mu.Lock()
	defer sem.mu.Unlock()
	if sem.held == nil {
		return 0
	}
	return sem.held.token()
}
