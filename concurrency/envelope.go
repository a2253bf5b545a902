package concurrency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/etcdv2/client"
)

// Kinds of node written by the recipes, stored in the envelope so that two
// recipes used on one prefix by mistake are detected instead of misread.
const (
	kindSession   = "session"
	kindMutex     = "mutex"
	kindElection  = "election"
	kindSemaphore = "semaphore"
	kindRead      = "rwmutex-read"
	kindWrite     = "rwmutex-write"
	kindBarrier   = "barrier"
	kindQueue     = "queue"
)

// envelope is the JSON value of every node a recipe writes. Owner is a
// random 128-bit id drawn for each acquisition and never reused: an
// ambiguous write is resolved by finding it, and it makes every
// conditional write (prevValue) and delete unique to its writer.
type envelope struct {
	Kind    string `json:"kind"`
	Owner   string `json:"owner"`
	Session string `json:"session,omitempty"`
	Value   string `json:"value,omitempty"`
	Limit   int    `json:"limit,omitempty"`
}

func (e envelope) encode() string {
	b, err := json.Marshal(e)
	if err != nil {
		panic(err) // only strings and ints: cannot fail
	}
	return string(b)
}

func decodeEnvelope(s string) (envelope, bool) {
	var e envelope
	if json.Unmarshal([]byte(s), &e) != nil || e.Owner == "" || e.Kind == "" {
		return envelope{}, false
	}
	return e, true
}

// newID returns 128 random bits in hex.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// quorumOpts is how every decision reads: linearizable, so that a member
// cut off from its peers cannot hand out a grant from stale data.
var quorumList = &client.GetOptions{Recursive: true, Sort: true, Quorum: true}

// errCode reports whether err is a client.Error with code c.
func errCode(err error, c int) bool {
	return errors.Is(err, client.Error{Code: c})
}

// serverRefused reports whether err is a definite refusal by the server (a
// client.Error below 300: key not found, test failed, unauthorized, ...):
// the request was processed and refused, so its outcome is known and
// retrying will not change it. Raft errors (300, 301) and unknown outcomes
// are not refusals.
func serverRefused(err error) bool {
	if errors.Is(err, client.ErrOutcomeUnknown) {
		return false
	}
	var ce client.Error
	if errors.As(err, &ce) {
		return ce.Code < 300
	}
	var pce *client.Error
	if errors.As(err, &pce) && pce != nil {
		return pce.Code < 300
	}
	return false
}

// notSent reports whether err, the error of a write, says the write never
// reached a server: it is no answer of the server and does not match
// client.ErrOutcomeUnknown. The client documents (client.OutcomeUnknownError
// and its package doc) that a write which may have reached a server without
// a definite answer fails with an error matching client.ErrOutcomeUnknown,
// and that it sends a write again only when it provably never left the
// client; the v3 adapter keeps the same contract. A context's end is not
// covered (the client then returns ctx.Err() alone): callers check ctx
// first.
func notSent(err error) bool {
	if errors.Is(err, client.ErrOutcomeUnknown) {
		return false
	}
	var ce client.Error
	if errors.As(err, &ce) {
		return false
	}
	var pce *client.Error
	return !errors.As(err, &pce) || pce == nil
}

// files returns the file children of a listing sorted by creation.
func files(n *client.Node) []*client.Node {
	if n == nil {
		return nil
	}
	out := make([]*client.Node, 0, len(n.Nodes))
	for _, c := range n.Nodes {
		if c != nil && !c.Dir {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedIndex < out[j].CreatedIndex })
	return out
}

// Timing of the wait loops.
const (
	// watchCap bounds one wait on a watch: then the state is read again
	// with a quorum read, so a waiter connected to a member that is cut off
	// from its peers (it keeps answering, with nothing new) is not blind
	// for longer than this.
	watchCap = 10 * time.Second
	// cleanupTimeout bounds the best-effort removal of a node after its
	// caller's context ended, and every release (Unlock, Resign,
	// Release, RUnlock), which runs whether or not its context ended. The
	// doc comments of the releases say "5 s": keep them in step.
	cleanupTimeout = 5 * time.Second
	backoffMin     = 50 * time.Millisecond
	backoffMax     = time.Second
)

// backoff sleeps d (or until ctx or stop ends) and returns the next delay.
func backoff(ctx context.Context, stop <-chan struct{}, d time.Duration) (time.Duration, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return d, ctx.Err()
	case <-stop:
		return d, ErrSessionExpired
	case <-t.C:
	}
	d *= 2
	if d > backoffMax {
		d = backoffMax
	}
	return d, nil
}
