package concurrency

import (
	"context"
	"errors"
	"iter"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/etcdv2/client"
)

// Leader is the holder of an election.
type Leader struct {
	// Key is the leader's node.
	Key string
	// Value is the value the leader campaigned with or last proclaimed.
	Value string
	// Token is the index of the write that created the leader's node: the
	// fencing token of its term, strictly increasing from term to term.
	Token uint64
}

// Election is a leader election held through a Session: a fair queue of
// candidates like Mutex, whose first node is the leader. The value of each
// candidate travels in its node, so anyone can read the leader (Leader) or
// follow every change of leader (Observe) without a session.
//
// An Election is safe for concurrent use; one handle is one candidate.
type Election struct {
	s   *Session
	dir string

	mu     sync.Mutex
	busy   bool
	leader *entry
}

// NewElection returns the election whose candidates live under the
// directory key. Nothing is written until Campaign.
func NewElection(s *Session, key string) *Election {
	return &Election{s: s, dir: cleanDir(key)}
}

// Campaign enters the election with value and blocks until this candidate
// is the leader. It returns ctx.Err() when ctx ends first and
// ErrSessionExpired when the session ends first, removing its node in both
// cases. Campaign on a handle that is leader or campaigning returns ErrHeld.
func (e *Election) Campaign(ctx context.Context, value string) error {
	e.mu.Lock()
	if e.busy || e.leader != nil {
		e.mu.Unlock()
		return ErrHeld
	}
	e.busy = true
	e.mu.Unlock()
	en, err := e.s.enqueue(ctx, e.dir, envelope{Kind: kindElection, Owner: newID(), Session: e.s.id, Value: value})
	if err == nil {
		err = en.wait(ctx, func(nodes []*client.Node, envs []envelope, i int) (decision, error) {
			if err := checkKinds(nodes[:i], envs[:i], kindElection); err != nil {
				return decision{}, err
			}
			if i == 0 {
				return decision{granted: true}, nil
			}
			return decision{watchKey: nodes[i-1].Key}, nil
		})
		if err != nil {
			en.remove(ctx)
		}
	}
	e.mu.Lock()
	e.busy = false
	if err == nil {
		e.leader = en
	}
	e.mu.Unlock()
	return err
}

// Proclaim changes the leader's value without an election: a
// compare-and-swap on the leader's node, conditional on the value it had
// (which also renews its TTL). It returns ErrNotLeader when this handle is
// not the leader or its node is gone, and ErrSessionExpired when the
// session has ended. An unknown outcome is resolved by reading the node back.
// If ctx ends while its write is in flight, Proclaim returns ctx.Err() and
// the value may or may not have changed; Resign and Session.Close delete
// the node either way.
func (e *Election) Proclaim(ctx context.Context, value string) error {
	e.mu.Lock()
	en := e.leader
	e.mu.Unlock()
	if en == nil {
		return ErrNotLeader
	}
	s := en.s
	l := en.lease
	l.mu.Lock()
	defer l.mu.Unlock()
	if !s.attached(l) {
		return s.ctxErr(ctx, ErrNotLeader)
	}
	env := en.env
	env.Value = value
	newValue := env.encode()
	d := backoffMin
	for {
		old := l.value
		sent := time.Now()
		_, err := s.kapi.Set(ctx, l.key, newValue, &client.SetOptions{PrevValue: old, PrevExist: client.PrevExist, TTL: s.ttl})
		if err == nil {
			s.setValue(l, newValue)
			en.env = env
			s.renewed(l, sent)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if serverRefused(err) && !errCode(err, client.ErrorCodeTestFailed) && !errCode(err, client.ErrorCodeKeyNotFound) {
			return err
		}
		// 100, 101 or an unknown outcome: read back.
		r, gerr := s.kapi.Get(ctx, l.key, &client.GetOptions{Quorum: true})
		switch {
		case gerr == nil && r.Node.CreatedIndex == l.created && r.Node.Value == newValue:
			s.setValue(l, newValue)
			en.env = env
			return nil
		case gerr == nil && r.Node.CreatedIndex == l.created && r.Node.Value == old:
			// Not applied: try again.
		case gerr == nil, errCode(gerr, client.ErrorCodeKeyNotFound):
			s.lose(l)
			return ErrNotLeader
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if d, err = backoff(ctx, s.done, d); err != nil {
			return s.ctxErr(ctx, err)
		}
	}
}

// Resign gives up leadership: the leader's node is deleted (only if it is
// still this handle's), which wakes the next candidate. Resign on a handle
// that is not the leader does nothing and returns nil; if the node was
// already gone it returns ErrSessionExpired. Like Mutex.Unlock, the delete
// is attempted even when ctx has already ended, for at most 5 s.
func (e *Election) Resign(ctx context.Context) error {
	e.mu.Lock()
	en := e.leader
	if en == nil || e.busy {
		e.mu.Unlock()
		return nil
	}
	e.busy = true
	e.mu.Unlock()
	err := en.release(ctx)
	e.mu.Lock()
	e.busy = false
	e.leader = nil
	e.mu.Unlock()
	return err
}

// Leader returns the current leader, read with a quorum read, or
// ErrNoLeader when there is none.
func (e *Election) Leader(ctx context.Context) (Leader, error) {
	r, err := e.s.kapi.Get(ctx, e.dir, quorumList)
	if err != nil {
		if errCode(err, client.ErrorCodeKeyNotFound) {
			return Leader{}, ErrNoLeader
		}
		return Leader{}, err
	}
	ns := files(r.Node)
	if len(ns) == 0 {
		return Leader{}, ErrNoLeader
	}
	return leaderOf(ns[0]), nil
}

func leaderOf(n *client.Node) Leader {
	v := n.Value
	if env, ok := decodeEnvelope(n.Value); ok {
		v = env.Value
	}
	return Leader{Key: n.Key, Value: v, Token: n.CreatedIndex}
}

// Observe returns the sequence of leaders: the current one (if any), then
// each change of leader or of its value, in the order of the cluster's
// history. It needs no session and writes nothing.
//
// It lists the candidates (quorum read), then follows every event of the
// directory from the listing's index, applying each to its copy of the
// candidates; so every leader that held the election, even briefly, is
// delivered, in order, and a member failover loses nothing (the watch
// resumes from its cursor). Times with no leader are not delivered. If the
// watch falls out of etcd's 1000-event history (401), Observe lists again
// and delivers the leader of that listing if it differs from the last
// delivered: leaders that came and went entirely inside the lost stretch of
// history cannot be known and are not delivered. Tokens delivered are
// strictly increasing except for value changes (same token, same key).
//
// The sequence ends after yielding (Leader{}, err): err is ctx.Err() when ctx
// ends, or an error the server answered that retrying cannot fix (such as
// 110, unauthorized). Transient errors are retried. Stopping the range loop
// early ends it too; no goroutine is left.
func (e *Election) Observe(ctx context.Context) iter.Seq2[Leader, error] {
	kapi := e.s.kapi
	dir := e.dir
	return func(yield func(Leader, error) bool) {
		var last Leader
		have := false
		emit := func(cands map[string]*client.Node) (bool, bool) {
			if len(cands) == 0 {
				return true, false
			}
			keys := make([]*client.Node, 0, len(cands))
			for _, n := range cands {
				keys = append(keys, n)
			}
			sort.Slice(keys, func(i, j int) bool { return keys[i].CreatedIndex < keys[j].CreatedIndex })
			l := leaderOf(keys[0])
			if have && l == last {
				return true, false
			}
			last, have = l, true
			return yield(l, nil), true
		}
		// w is the watcher in use, dropped when it is replaced and when
		// the sequence ends.
		var w client.Watcher
		defer func() {
			if w != nil {
				dropWatcher(w)
			}
		}()
		d := backoffMin
		for {
			// Snapshot.
			r, err := kapi.Get(ctx, dir, quorumList)
			var index uint64
			cands := map[string]*client.Node{}
			switch {
			case err == nil:
				for _, n := range files(r.Node) {
					cands[n.Key] = n
				}
				index = r.Index
			case errCode(err, client.ErrorCodeKeyNotFound):
				var ce client.Error
				if errors.As(err, &ce) {
					index = ce.Index
				}
			case ctx.Err() != nil:
				yield(Leader{}, ctx.Err())
				return
			case serverRefused(err):
				yield(Leader{}, err)
				return
			default:
				if d, err = backoff(ctx, nil, d); err != nil {
					yield(Leader{}, err)
					return
				}
				continue
			}
			d = backoffMin
			if cont, _ := emit(cands); !cont {
				return
			}
			// Follow the history from the snapshot.
			w = kapi.Watcher(dir, &client.WatcherOptions{AfterIndex: index, Recursive: true})
			for {
				wctx, cancel := context.WithTimeout(ctx, watchCap)
				ev, err := w.Next(wctx)
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						yield(Leader{}, ctx.Err())
						return
					}
					if err == context.DeadlineExceeded {
						// The cap ended the wait (Next returns exactly
						// its context's error). A quiet stretch: the watch may be served by a
						// member cut off from its peers, which answers
						// health checks but sees no new events. Probe the
						// cluster with a quorum read (which such a member
						// cannot serve), then resume the watch from its
						// cursor, so nothing is skipped.
						pctx, pcancel := context.WithTimeout(ctx, watchCap)
						_, _ = kapi.Get(pctx, dir, &client.GetOptions{Quorum: true})
						pcancel()
						continue
					}
					if errCode(err, client.ErrorCodeEventIndexCleared) || errCode(err, client.ErrorCodeWatcherCleared) {
						break // list again
					}
					if serverRefused(err) {
						yield(Leader{}, err)
						return
					}
					if d, err = backoff(ctx, nil, d); err != nil {
						yield(Leader{}, err)
						return
					}
					continue
				}
				d = backoffMin
				applyEvent(cands, dir, ev)
				if cont, _ := emit(cands); !cont {
					return
				}
			}
			dropWatcher(w) // list again, then watch with a new one
			w = nil
		}
	}
}

// applyEvent applies one watch event of dir to the candidates.
func applyEvent(cands map[string]*client.Node, dir string, ev *client.Response) {
	if ev.Node == nil {
		return
	}
	k := ev.Node.Key
	if a := strings.TrimSuffix(k, "/"); a == dir || strings.HasPrefix(dir, a+"/") {
		// The directory or an ancestor changed: only its removal matters.
		switch ev.Action {
		case "delete", "expire", "compareAndDelete":
			clear(cands)
		}
		return
	}
	if !strings.HasPrefix(k, dir+"/") || strings.Contains(k[len(dir)+1:], "/") {
		return // deeper than a candidate
	}
	switch ev.Action {
	case "delete", "expire", "compareAndDelete":
		delete(cands, k)
	default:
		if ev.Node.Dir {
			return
		}
		cands[k] = ev.Node
	}
}
