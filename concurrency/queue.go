package concurrency

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdv2/client"
)

// Queue is a first-in first-out queue of strings in a directory of in-order
// keys. It needs no session. Every item is delivered at most once: Enqueue
// never sends an item again when its first copy may have been applied, and
// Dequeue claims the head item by a compare-and-swap that writes its own
// claim id into the item, then deletes it; an item whose consumer dies
// between the two steps stays claimed (and is skipped by other consumers).
type Queue struct {
	kapi client.KeysAPI
	dir  string
}

// NewQueue returns the queue stored under the directory key.
func NewQueue(kapi client.KeysAPI, key string) *Queue {
	return &Queue{kapi: kapi, dir: cleanDir(key)}
}

// Enqueue appends value, as an item carrying a random id. It never sends an
// item twice when the first copy may have been applied.
//
// When the create fails with an error matching client.ErrOutcomeUnknown (or
// another answer of the server than a refusal), Enqueue lists the queue
// (quorum) and succeeds if the item is there. If it is not, the item may
// have been applied and consumed already, or may still be applied:
// resending it could deliver it twice, so Enqueue returns an error matching
// client.ErrOutcomeUnknown, wrapping the client's. A create that never left
// the client is sent again: per the client's contract (see
// client.OutcomeUnknownError), an error that is neither a server's answer
// nor matches client.ErrOutcomeUnknown, such as every member refusing the
// connection, means the write was not sent. If ctx ends first, Enqueue
// returns ctx.Err(), and the item may or may not have been enqueued.
func (q *Queue) Enqueue(ctx context.Context, value string) error {
	env := envelope{Kind: kindQueue, Owner: newID(), Value: value}.encode()
	s := &Session{kapi: q.kapi}
	_, err := s.createChecked(ctx, func(ctx context.Context) (*client.Response, error) {
		return q.kapi.CreateInOrder(ctx, q.dir, env, nil)
	}, func(err error) error {
		if notSent(err) {
			return nil // send it again
		}
		if !errors.Is(err, client.ErrOutcomeUnknown) {
			err = fmt.Errorf("%w: %w", client.ErrOutcomeUnknown, err)
		}
		return fmt.Errorf("concurrency: enqueue to %s: the item is not in the queue; it may have been consumed already, or may still be applied (not sent again): %w", q.dir, err)
	}, func(ctx context.Context) (*client.Node, error) {
		r, err := q.kapi.Get(ctx, q.dir, quorumList)
		if err != nil {
			if errCode(err, client.ErrorCodeKeyNotFound) {
				return nil, nil
			}
			return nil, err
		}
		for _, n := range files(r.Node) {
			if e, ok := decodeEnvelope(n.Value); ok && (n.Value == env || e.Owner == envOwner(env)) {
				return n, nil
			}
		}
		return nil, nil
	})
	return err
}

func envOwner(v string) string {
	e, _ := decodeEnvelope(v)
	return e.Owner
}

// Dequeue removes and returns the oldest item, blocking while the queue is
// empty. It returns ctx.Err() when ctx ends first.
func (q *Queue) Dequeue(ctx context.Context) (string, error) {
	claim := newID()
	d := backoffMin
	for {
		r, err := q.kapi.Get(ctx, q.dir, quorumList)
		var index uint64
		var items []*client.Node
		switch {
		case err == nil:
			items, index = files(r.Node), r.Index
		case errCode(err, client.ErrorCodeKeyNotFound):
			index = errIndex(err)
		case ctx.Err() != nil:
			return "", ctx.Err()
		case serverRefused(err):
			return "", err
		default:
			if d, err = backoff(ctx, nil, d); err != nil {
				return "", err
			}
			continue
		}
		for _, n := range items {
			env, ok := decodeEnvelope(n.Value)
			if !ok || env.Kind != kindQueue {
				continue
			}
			if env.Session != "" && env.Session != claim {
				continue // claimed by another consumer
			}
			v, got, err := q.take(ctx, n, env, claim)
			if err != nil {
				return "", err
			}
			if got {
				return v, nil
			}
		}
		wctx, cancel := context.WithTimeout(ctx, watchCap)
		w := q.kapi.Watcher(q.dir, &client.WatcherOptions{AfterIndex: index, Recursive: true})
		_, err = w.Next(wctx)
		cancel()
		dropWatcher(w)
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if err != nil && !isTimeout(err) && !errCode(err, client.ErrorCodeEventIndexCleared) && !errCode(err, client.ErrorCodeWatcherCleared) {
			if d, err = backoff(ctx, nil, d); err != nil {
				return "", err
			}
		}
	}
}

// take claims item n (compare-and-swap on its modifiedIndex, writing the
// claim id in its Session field), then deletes it. got is false when another
// consumer was first.
func (q *Queue) take(ctx context.Context, n *client.Node, env envelope, claim string) (string, bool, error) {
	claimed := env
	claimed.Session = claim
	cv := claimed.encode()
	if env.Session != claim {
		_, err := q.kapi.Set(ctx, n.Key, cv, &client.SetOptions{PrevIndex: n.ModifiedIndex, PrevExist: client.PrevExist})
		switch {
		case err == nil:
		case errCode(err, client.ErrorCodeKeyNotFound), errCode(err, client.ErrorCodeTestFailed):
			// Someone else was first, unless our earlier claim was applied:
			// the next listing shows it with our claim id.
			return "", false, nil
		case ctx.Err() != nil:
			return "", false, ctx.Err()
		case serverRefused(err):
			return "", false, err
		default:
			// Unknown outcome: the next listing tells (our claim id is
			// in the item if it was applied).
			return "", false, nil
		}
	}
	if err := deleteOwned(ctx, q.kapi, n.Key, cv); err != nil {
		return "", false, err
	}
	return env.Value, true, nil
}

func errIndex(err error) uint64 {
	var ce client.Error
	if asErr(err, &ce) {
		return ce.Index
	}
	return 0
}
