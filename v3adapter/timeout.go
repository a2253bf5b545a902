package v3adapter

import (
	"context"
	"time"

	"github.com/etcdv2/client"
)

// WithRequestTimeout gives each unary v3 request that a KeysAPI or
// MembersAPI method sends at most d, so that a hung member (one that keeps
// its connection open but answers nothing) costs a caller d rather than its
// whole deadline. A method that sends several requests (a write reads, may
// grant a lease, then commits) gives each of them d; the caller's context
// still bounds the whole call. A Watcher's stream and the requests its Next
// sends are bounded by the caller's context only.
//
// A request that runs out of time fails with a *client.AttemptTimeoutError
// (matching client.ErrAttemptTimeout). For a read, and for the reads and
// lease grant a write makes before its transaction, nothing was changed and
// the call can be retried. For the write transaction itself, and for a
// membership change, the error is a *client.OutcomeUnknownError wrapping it
// (matching both client.ErrOutcomeUnknown and client.ErrAttemptTimeout): the
// write may have been applied, and the adapter does not resend it. If the
// caller's context ends first, its error is returned as without this option.
//
// Zero or a negative d (the default) means no per-request timeout.
func WithRequestTimeout(d time.Duration) Option {
	return func(k *keysAPI) { k.timeout = d }
}

// call runs one unary v3 request under the per-request timeout d (none if
// d <= 0), turning the expiry of that timeout into a
// *client.AttemptTimeoutError.
func call[T any](ctx context.Context, d time.Duration, f func(context.Context) (T, error)) (T, error) {
	if d <= 0 {
		return f(ctx)
	}
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	r, err := f(rctx)
	if err != nil && rctx.Err() != nil && ctx.Err() == nil {
		return r, &client.AttemptTimeoutError{After: d}
	}
	return r, err
}
