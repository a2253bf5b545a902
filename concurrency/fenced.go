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
// (101, 105) or the outcome is unknown, it reads again and decides again,
// so a write is never applied over a higher token. It returns the response
// of the write, or of the read that showed the write was applied.
func FencedSet(ctx context.Context, kapi client.KeysAPI, key, value string, token uint64) (*client.Response, error) {
	mine, _ := json.Marshal(fenced{Token: token, Value: value})
	want := string(mine)
	d := backoffMin
	var lastIndex uint64 // modifiedIndex our last unknown-outcome write was conditioned on
	unknown := false
	for {
		r, err := kapi.Get(ctx, key, &client.GetOptions{Quorum: true})
		opts := &client.SetOptions{}
		switch {
		case err == nil:
			if r.Node.Dir {
				return nil, fmt.Errorf("concurrency: FencedSet %s: %w", key, client.Error{Code: client.ErrorCodeNotFile, Message: "Not a file", Cause: key, Index: r.Index})
			}
			var cur fenced
			if jerr := json.Unmarshal([]byte(r.Node.Value), &cur); jerr != nil {
				return nil, fmt.Errorf("concurrency: FencedSet %s: value is not a fenced value: %w", key, ErrForeignKey)
			}
			if unknown && r.Node.Value == want && r.Node.ModifiedIndex > lastIndex {
				return r, nil // our earlier write was applied
			}
			if cur.Token > token {
				return nil, fmt.Errorf("%w: %d applied, %d offered", ErrStaleToken, cur.Token, token)
			}
			opts.PrevIndex = r.Node.ModifiedIndex
			lastIndex = r.Node.ModifiedIndex
		case errCode(err, client.ErrorCodeKeyNotFound):
			opts.PrevExist = client.PrevNoExist
			lastIndex = 0
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
		w, err := kapi.Set(ctx, key, want, opts)
		switch {
		case err == nil:
			return w, nil
		case errCode(err, client.ErrorCodeTestFailed), errCode(err, client.ErrorCodeNodeExist), errCode(err, client.ErrorCodeKeyNotFound):
			// Someone else wrote first: decide again.
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case serverRefused(err):
			return nil, err
		default:
			unknown = true
			if d, err = backoff(ctx, nil, d); err != nil {
				return nil, err
			}
		}
	}
}

func asErr(err error, ce *client.Error) bool { return errors.As(err, ce) }
