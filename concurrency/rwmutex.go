package concurrency

import (
	"context"
	"sync"

	"github.com/etcdv2/client"
)

// RWMutex is a fair distributed reader/writer lock held through a Session.
//
// Readers and writers append in-order nodes (marked read or write) under one
// directory. A reader holds once no write node was created before its own:
// readers share. A writer holds once no node at all was created before its
// own: it excludes readers and writers. A reader waits on the nearest write
// node ahead of it, a writer on the node just ahead of it; a queued writer
// blocks readers that arrive after it, so writers do not starve.
//
// One handle holds at most one read and one write grant at a time; holding
// both from one handle deadlocks (the write waits for the read), as with
// sync.RWMutex.
type RWMutex struct {
	s   *Session
	dir string

	mu           sync.Mutex
	rbusy, wbusy bool
	r, w         *entry
}

// NewRWMutex returns the read-write lock whose nodes live under the directory key.
func NewRWMutex(s *Session, key string) *RWMutex {
	return &RWMutex{s: s, dir: cleanDir(key)}
}

// RLock blocks until this handle holds a read grant. It returns ctx.Err()
// when ctx ends first and ErrSessionExpired when the session ends first,
// removing its node in both cases.
func (rw *RWMutex) RLock(ctx context.Context) error {
	return rw.lock(ctx, true)
}

// Lock blocks until this handle holds the write grant, as RLock.
func (rw *RWMutex) Lock(ctx context.Context) error {
	return rw.lock(ctx, false)
}

func (rw *RWMutex) slot(read bool) (busy *bool, held **entry) {
	if read {
		return &rw.rbusy, &rw.r
	}
	return &rw.wbusy, &rw.w
}

func (rw *RWMutex) lock(ctx context.Context, read bool) error {
	rw.mu.Lock()
	busy, held := rw.slot(read)
	if *busy || *held != nil {
		rw.mu.Unlock()
		return ErrHeld
	}
	*busy = true
	rw.mu.Unlock()
	kind := kindWrite
	if read {
		kind = kindRead
	}
	e, err := rw.s.enqueue(ctx, rw.dir, envelope{Kind: kind, Owner: newID(), Session: rw.s.id})
	if err == nil {
		err = e.wait(ctx, func(nodes []*client.Node, envs []envelope, i int) (decision, error) {
			if err := checkKinds(nodes[:i], envs[:i], kindRead, kindWrite); err != nil {
				return decision{}, err
			}
			if !read {
				if i == 0 {
					return decision{granted: true}, nil
				}
				return decision{watchKey: nodes[i-1].Key}, nil
			}
			for j := i - 1; j >= 0; j-- {
				if envs[j].Kind == kindWrite {
					return decision{watchKey: nodes[j].Key}, nil
				}
			}
			return decision{granted: true}, nil
		})
		if err != nil {
			e.remove(ctx)
		}
	}
	rw.mu.Lock()
	*busy = false
	if err == nil {
		*held = e
	}
	rw.mu.Unlock()
	return err
}

// RUnlock releases the read grant: ErrNotHeld when there is none,
// ErrSessionExpired when its node was already gone. Like Mutex.Unlock, the
// delete is attempted even when ctx has already ended, for at most 5 s.
func (rw *RWMutex) RUnlock(ctx context.Context) error { return rw.unlock(ctx, true) }

// Unlock releases the write grant, as RUnlock.
func (rw *RWMutex) Unlock(ctx context.Context) error { return rw.unlock(ctx, false) }

func (rw *RWMutex) unlock(ctx context.Context, read bool) error {
	rw.mu.Lock()
	busy, held := rw.slot(read)
	e := *held
	if e == nil || *busy {
		rw.mu.Unlock()
		return ErrNotHeld
	}
	*busy = true
	rw.mu.Unlock()
	err := e.release(ctx)
	rw.mu.Lock()
	*busy = false
	*held = nil
	rw.mu.Unlock()
	return err
}
