package concurrency

import "errors"

// Errors returned by the recipes. They are compared with errors.Is; an error
// returned by the cluster (a client.Error, a *client.ClusterError, ...) is
// returned as it came, possibly wrapped, so errors.Is and errors.As work on it
// too.
var (
	// ErrLocked is returned by Mutex.TryLock and Semaphore.TryAcquire when
	// the lock or every permit is held by someone else.
	ErrLocked = errors.New("concurrency: locked by another holder")

	// ErrNoLeader is returned by Election.Leader when nobody holds the
	// election.
	ErrNoLeader = errors.New("concurrency: election has no leader")

	// ErrSessionExpired is returned when the session a recipe depends on is
	// over: its Done channel is closed because a renewal found one of its
	// keys gone, its local deadline passed, its context ended or it was
	// closed. Keys written through it may be gone: nothing held through the
	// session may be relied on any more.
	ErrSessionExpired = errors.New("concurrency: session expired")

	// ErrNotHeld is returned by Mutex.Unlock, Semaphore.Release and the
	// RWMutex unlocks when the handle holds nothing to release.
	ErrNotHeld = errors.New("concurrency: not held")

	// ErrHeld is returned by Lock, Acquire and Campaign on a handle that
	// already holds (or is already acquiring) what it asks for. A handle
	// holds at most one grant at a time; use one handle per holder.
	ErrHeld = errors.New("concurrency: already held by this handle")

	// ErrNotLeader is returned by Election.Proclaim when this handle is not
	// the leader (it never won, resigned, or its key is gone).
	ErrNotLeader = errors.New("concurrency: not the leader")

	// ErrStaleToken is returned by FencedSet when the resource already
	// accepted a write with a higher fencing token.
	ErrStaleToken = errors.New("concurrency: fencing token lower than one already applied")

	// ErrLimitMismatch is returned by Semaphore.Acquire and TryAcquire when
	// another holder of the same prefix uses a different limit.
	ErrLimitMismatch = errors.New("concurrency: semaphore limit differs from another holder's")

	// ErrForeignKey is returned when a coordination directory holds a node
	// that was not written by this package for the same recipe (a mutex
	// and a semaphore on one prefix, or a key written by hand), so its
	// meaning cannot be known.
	ErrForeignKey = errors.New("concurrency: key not written by this recipe")
)
