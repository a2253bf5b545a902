package concurrency

import (
	"context"

	"github.com/etcdv2/client"
)

// Barrier blocks processes until it is released. It needs no session: the
// barrier is one key, present while the barrier holds.
type Barrier struct {
	kapi client.KeysAPI
	key  string
}

// NewBarrier returns the barrier stored at key.
func NewBarrier(kapi client.KeysAPI, key string) *Barrier {
	return &Barrier{kapi: kapi, key: cleanDir(key)}
}

// Hold raises the barrier: it creates the key (prevExist=false). If the
// barrier is already held it returns the server's client.Error with code 105
// (ErrorCodeNodeExist). An unknown outcome is resolved by reading the key
// back (its value carries a random id of this Hold): found, Hold succeeds;
// absent, the create is sent again, and if that resend is refused with 105
// the key is read once more, so a first copy applied late still counts as
// this Hold's.
func (b *Barrier) Hold(ctx context.Context) error {
	env := envelope{Kind: kindBarrier, Owner: newID()}.encode()
	s := &Session{kapi: b.kapi}
	_, err := s.createChecked(ctx, func(ctx context.Context) (*client.Response, error) {
		return b.kapi.Set(ctx, b.key, env, &client.SetOptions{PrevExist: client.PrevNoExist})
	}, nil, func(ctx context.Context) (*client.Node, error) {
		r, err := b.kapi.Get(ctx, b.key, &client.GetOptions{Quorum: true})
		if err != nil {
			if errCode(err, client.ErrorCodeKeyNotFound) {
				return nil, nil
			}
			return nil, err
		}
		if r.Node.Value == env {
			return r.Node, nil
		}
		return nil, client.Error{Code: client.ErrorCodeNodeExist, Message: "Key already exists", Cause: b.key, Index: r.Index}
	})
	return err
}

// Release lowers the barrier (deletes the key), letting every waiter
// through. Releasing a barrier that is not held returns nil.
func (b *Barrier) Release(ctx context.Context) error {
	d := backoffMin
	for {
		_, err := b.kapi.Delete(ctx, b.key, nil)
		if err == nil || errCode(err, client.ErrorCodeKeyNotFound) {
			return nil
		}
		if serverRefused(err) || ctx.Err() != nil {
			return err
		}
		// Unknown outcome: a delete of a barrier is safe to repeat.
		if d, err = backoff(ctx, nil, d); err != nil {
			return err
		}
	}
}

// Wait blocks until the barrier is not held: it reads the key (quorum) and,
// while it exists, watches it from that read's index until it is deleted or
// expires, reading again after every wake-up. It returns ctx.Err() when ctx
// ends first.
func (b *Barrier) Wait(ctx context.Context) error {
	d := backoffMin
	for {
		r, err := b.kapi.Get(ctx, b.key, &client.GetOptions{Quorum: true})
		if errCode(err, client.ErrorCodeKeyNotFound) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if serverRefused(err) {
				return err
			}
			if d, err = backoff(ctx, nil, d); err != nil {
				return err
			}
			continue
		}
		d = backoffMin
		wctx, cancel := context.WithTimeout(ctx, watchCap)
		w := b.kapi.Watcher(b.key, &client.WatcherOptions{AfterIndex: r.Index})
		_, err = w.Next(wctx)
		cancel()
		dropWatcher(w)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !errCode(err, client.ErrorCodeEventIndexCleared) && !errCode(err, client.ErrorCodeWatcherCleared) && !isTimeout(err) {
			if d, err = backoff(ctx, nil, d); err != nil {
				return err
			}
		}
	}
}

func isTimeout(err error) bool {
	return err == context.DeadlineExceeded
}
