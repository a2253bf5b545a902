package concurrency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/etcdv2/client"
)

// fenced is the JSON value FencedSet stores: {"token":N,"value":"..."}.
type fenced struct {
	Token uint64 `json:"token"`
	Value string `json:"value"`
}

// FencedSet writes value to key, guarded by a fencing token (Mutex.Token,
// Leader.Token, Semaphore.Token): the write is refused with ErrStaleToken if
// the key already holds a write made with a higher token. Equal tokens are
// accepted, so a holder may write several times.
//
// The key's value is the JSON document {"token":N,"value":"..."} holding the
// highest token applied and the value written with it. Each attempt reads
// the key (quorum), checks the token, and writes with prevIndex (or
// prevExist=false when the key is absent); when another writer was faster
// (101, 105) it reads and decides again, so a write is never applied over a
// higher token. It returns the response of the write, or of the read that
// showed the write was applied.
//
// When a write's outcome is unknown (client.ErrOutcomeUnknown), FencedSet
// reads the key back: it returns success if the write is there, sends the
// same conditional write again if the key is unchanged (the two copies
// cannot both apply), and otherwise returns the unknown-outcome error, since
// the write may have been applied and then overwritten.
func FencedSet(ctx context.Context, kapi client.KeysAPI, key, value string, token uint64) (*client.Response, error) {
	mine, _ := json.Marshal(fenced{Token: token, Value: value})
	want := string(mine)
	d := backoffMin
	var unknownErr error // set while the last write's outcome is unknown
	var lastIndex uint64 // the modifiedIndex that write was conditioned on (0: a create)
	for {
		r, err := kapi.Get(ctx, key, &client.GetOptions{Quorum: true})
		opts := &client.SetOptions{}
		switch {
		case err == nil:
			if r.Node.Dir {
				return nil, fmt.Errorf("concurrency: FencedSet %s: %w", key, client.Error{Code: client.ErrorCodeNotFile, Message: "Not a file", Cause: key, Index: r.Index})
			}
			if unknownErr != nil {
				if r.Node.Value == want && r.Node.ModifiedIndex > lastIndex {
					return r, nil // the write was applied
				}
				if r.Node.ModifiedIndex != lastIndex {
					return nil, unknownErr // applied and overwritten, or not applied: cannot tell
				}
			}
			var cur fenced
			if jerr := json.Unmarshal([]byte(r.Node.Value), &cur); jerr != nil {
				return nil, fmt.Errorf("concurrency: FencedSet %s: value is not a fenced value: %w", key, ErrForeignKey)
			}
			if cur.Token > token {
				return nil, fmt.Errorf("%w: %d applied, %d offered", ErrStaleToken, cur.Token, token)
			}
			opts.PrevIndex = r.Node.ModifiedIndex
		case errCode(err, client.ErrorCodeKeyNotFound):
			if unknownErr != nil && lastIndex != 0 {
				return nil, unknownErr // the key was deleted meanwhile: cannot tell
			}
			opts.PrevExist = client.PrevNoExist
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case serverRefused(err):
			return nil, err
		default:
			if d, err = backoff(ctx, nil, d); err != nil {
				return nil, err
			}
			continue
		}
		lastIndex = opts.PrevIndex
		w, err := kapi.Set(ctx, key, want, opts)
		switch {
		case err == nil:
			return w, nil
		case unknownErr == nil && (errCode(err, client.ErrorCodeTestFailed) || errCode(err, client.ErrorCodeNodeExist) || errCode(err, client.ErrorCodeKeyNotFound)):
			// Someone else wrote first: decide again.
		case errCode(err, client.ErrorCodeTestFailed) || errCode(err, client.ErrorCodeNodeExist) || errCode(err, client.ErrorCodeKeyNotFound):
			// After an unknown outcome, the read-back decides.
		case ctx.Err() != nil:
			if unknownErr != nil {
				return nil, unknownErr
			}
			return nil, ctx.Err()
		case serverRefused(err):
			return nil, err
		default:
			unknownErr = err
			if d, err = backoff(ctx, nil, d); err != nil {
				return nil, unknownErr
			}
		}
	}
}

func asErr(err error, ce *client.Error) bool { return errors.As(err, ce) }
