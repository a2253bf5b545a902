package concurrency

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/etcdv2/client"
)

// Session defaults.
const (
	// DefaultSessionTTL is the TTL of a session's keys when WithTTL is not
	// given.
	DefaultSessionTTL = 15 * time.Second
	// MinSessionTTL is the smallest TTL WithTTL accepts: the local deadline
	// keeps a margin of at least a second, and renewals go out every third
	// of the TTL.
	MinSessionTTL = 2 * time.Second
	// DefaultSessionPrefix is the directory of the session keys when
	// WithPrefix is not given. Its first segment starts with "_", so etcd
	// hides it from listings and recursive watches of "/".
	DefaultSessionPrefix = "/_etcdv2/sessions"
)

// SessionOption configures NewSession.
type SessionOption func(*sessionOptions)

type sessionOptions struct {
	ttl    time.Duration
	ctx    context.Context
	prefix string
}

// WithTTL sets the TTL of the session's keys (whole seconds, at least
// MinSessionTTL; zero means DefaultSessionTTL). A holder that stops renewing
// (killed, paused, cut off) loses its keys about TTL after its last renewal.
func WithTTL(ttl time.Duration) SessionOption {
	return func(o *sessionOptions) { o.ttl = ttl }
}

// WithContext sets the context of the session: it bounds the creation of the
// session key and every renewal, and when it ends the session stops renewing
// and its Done channel closes (its keys are left to expire, as when the
// process dies). A nil context means context.Background().
func WithContext(ctx context.Context) SessionOption {
	return func(o *sessionOptions) { o.ctx = ctx }
}

// WithPrefix sets the directory under which the session's own key is
// written (DefaultSessionPrefix when empty).
func WithPrefix(prefix string) SessionOption {
	return func(o *sessionOptions) { o.prefix = prefix }
}

// Session is a client-side lease: a TTL key of its own plus the keys the
// recipes write through it (lock, election, semaphore and read-write lock
// nodes), all with the session's TTL and all renewed together.
//
// etcd v2 has no server-side session. Every key of a session carries the
// session's TTL; a goroutine renews all of them in rounds, each round
// starting TTL/3 after the previous one ended, with a conditional refresh
// (refresh=true, prevValue=the key's unique value), which neither wakes
// watchers nor consumes watch history. Each renewal waits at most TTL/3 for
// its answer. After a round in which a renewal failed for a transient
// reason (no member answered, no leader), the next round starts 500 ms
// after that one ended instead of TTL/3. Such a retry helps only if it is
// answered before the local deadline (below): it is sent at least TTL/3 +
// 500 ms, plus the time the failed attempt took, after the last successful
// renewal was sent, and the deadline is TTL - max(1s, TTL/10) after it. At
// the minimum TTL of 2 s the retry always comes too late (at 1.17 s or
// later, the deadline being at 1 s): one failed round ends the session.
//
// The session ends, and Done is closed, as soon as one of these is true:
//
//   - a renewal found one of its keys gone or owned by someone else (the
//     server said 100 or 101 and a quorum read confirmed it);
//   - the local deadline passed: the send time of the oldest key's last
//     successful create or renewal, plus the TTL, minus a margin of
//     max(1s, TTL/10), measured on this process's monotonic clock (a key
//     whose create was answered late can move it earlier; a key attached
//     after its deadline ends the session). It passes even when no
//     member can be reached, and before the server expires the keys as long
//     as the members' clocks run at most margin/TTL faster than this one;
//   - its context ended or Close was called.
//
// Done also checks the deadline when called, so a process resumed after a
// pause longer than the TTL sees Done closed at its first look, even before
// its timers have run. A session never comes back: create a new one.
//
// A Session is safe for concurrent use. Its goroutine ends on Close, or when
// the session ends.
type Session struct {
	kapi   client.KeysAPI
	id     string
	key    string
	ttl    time.Duration
	margin time.Duration

	// ctx is cancelled when the session ends; it bounds every request made
	// on the session's behalf.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	leases   map[*lease]struct{}
	own      *lease
	ended    bool
	deadline time.Time
	timer    *time.Timer

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// lease is one key renewed by a session.
type lease struct {
	// mu is held while a write to the key is in flight (a renewal, a
	// Proclaim), so that the value used as the renewal's condition is the
	// one the key has.
	mu  sync.Mutex
	key string
	// value is the value the key was last known to have. It is written
	// with both mu and Session.mu held (setValue), and read with either.
	value   string
	owner   string
	created uint64
	// sent is when the last successful create or renewal was sent
	// (monotonic clock). Guarded by Session.mu.
	sent time.Time
}

// NewSession creates a session: it writes the session key (with
// prevExist=false and the TTL) and starts renewing it. The key's value is a
// JSON document naming the session, host and process.
func NewSession(kapi client.KeysAPI, opts ...SessionOption) (*Session, error) {
	o := sessionOptions{ttl: DefaultSessionTTL, prefix: DefaultSessionPrefix}
	for _, opt := range opts {
		opt(&o)
	}
	if o.ttl == 0 {
		o.ttl = DefaultSessionTTL
	}
	if o.ttl < MinSessionTTL || o.ttl%time.Second != 0 {
		return nil, fmt.Errorf("concurrency: session TTL %v: must be whole seconds, at least %v", o.ttl, MinSessionTTL)
	}
	if o.ctx == nil {
		o.ctx = context.Background()
	}
	if o.prefix == "" {
		o.prefix = DefaultSessionPrefix
	}
	margin := o.ttl / 10
	if margin < time.Second {
		margin = time.Second
	}
	ctx, cancel := context.WithCancel(o.ctx)
	s := &Session{
		kapi:   kapi,
		id:     newID(),
		ttl:    o.ttl,
		margin: margin,
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		leases: make(map[*lease]struct{}),
	}
	s.key = strings.TrimSuffix(o.prefix, "/") + "/" + s.id
	host, _ := os.Hostname()
	env := envelope{Kind: kindSession, Owner: s.id, Session: s.id, Value: fmt.Sprintf("%s/%d", host, os.Getpid())}.encode()

	sent := time.Now()
	n, err := s.createChecked(ctx, func(ctx context.Context) (*client.Response, error) {
		return kapi.Set(ctx, s.key, env, &client.SetOptions{PrevExist: client.PrevNoExist, TTL: s.ttl})
	}, nil, func(ctx context.Context) (*client.Node, error) {
		r, err := kapi.Get(ctx, s.key, &client.GetOptions{Quorum: true})
		if err != nil {
			if errCode(err, client.ErrorCodeKeyNotFound) {
				return nil, nil
			}
			return nil, err
		}
		if r.Node.Value == env {
			return r.Node, nil
		}
		return nil, nil
	})
	if err != nil {
		cancel()
		return nil, err
	}
	s.own = &lease{key: s.key, value: env, owner: s.id, created: n.CreatedIndex, sent: sent}
	s.leases[s.own] = struct{}{}
	s.deadline = sent.Add(s.ttl - s.margin)
	s.timer = time.AfterFunc(time.Until(s.deadline), s.checkDeadline)
	s.wg.Add(1)
	go s.renewLoop()
	return s, nil
}

// createChecked runs a non-idempotent create and, when its outcome is
// unknown, finds out by reading back (find returns the node, or nil when it
// is not there) and resends only when the read shows it was not applied.
// When the read does not find a create that failed with err and notFound is
// not nil, the error notFound returns, if any, is returned instead of
// resending (for nodes that others may have removed before the read).
//
// A resend refused with 105 (the key exists) after an earlier attempt whose
// outcome was unknown may meet that attempt's copy, applied after the read:
// find runs once more, and the node it finds is ours.
func (s *Session) createChecked(ctx context.Context, create func(context.Context) (*client.Response, error), notFound func(err error) error, find func(context.Context) (*client.Node, error)) (*client.Node, error) {
	d := backoffMin
	ambiguous := false // an earlier attempt may have been applied
	for {
		r, err := create(ctx)
		if err == nil {
			return r.Node, nil
		}
		if ctx.Err() != nil {
			// The create may have been applied: the caller cleans up
			// what it can find; anything left expires with its TTL.
			return nil, ctx.Err()
		}
		if serverRefused(err) {
			if ambiguous && errCode(err, client.ErrorCodeNodeExist) {
				if n, ferr := s.readBack(ctx, find, &d); ferr == nil && n != nil {
					return n, nil
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
			}
			return nil, err
		}
		// Outcome unknown (or no member answered): read back.
		ambiguous = true
		n, ferr := s.readBack(ctx, find, &d)
		if ferr != nil {
			return nil, ferr
		}
		if n != nil {
			return n, nil
		}
		if notFound != nil {
			if nerr := notFound(err); nerr != nil {
				return nil, nerr
			}
		}
		// Not applied: resend.
		if d, err = backoff(ctx, s.done, d); err != nil {
			return nil, err
		}
	}
}

// readBack runs find until it answers (backing off by *d while no member
// does): the node, nil when it is not there, or find's refusal.
func (s *Session) readBack(ctx context.Context, find func(context.Context) (*client.Node, error), d *time.Duration) (*client.Node, error) {
	for {
		n, err := find(ctx)
		if err == nil || serverRefused(err) {
			return n, err
		}
		if *d, err = backoff(ctx, s.done, *d); err != nil {
			return nil, err
		}
	}
}

// ID returns the session's id: the last segment of its key, and the
// "session" field of the value of every key written through it.
func (s *Session) ID() string { return s.id }

// TTL returns the TTL of the session's keys.
func (s *Session) TTL() time.Duration { return s.ttl }

// Done returns a channel that is closed when the session has ended (see
// Session): from then on the session's keys may be gone and nothing held
// through it may be relied on. Done checks the local deadline itself.
func (s *Session) Done() <-chan struct{} {
	s.mu.Lock()
	if !s.ended && !time.Now().Before(s.deadline) {
		s.endLocked()
	}
	s.mu.Unlock()
	return s.done
}

// alive reports whether the session has not ended (checking the deadline).
func (s *Session) alive() bool {
	select {
	case <-s.Done():
		return false
	default:
		return true
	}
}

// Close stops renewing and deletes the keys still attached to the session
// and the session key itself, each only if it is still the node this
// session created (see deleteLease: conditional on the value last known,
// and when that condition fails, on the value read back if the node still
// has its createdIndex and owner id). Keys it cannot delete expire with
// their TTL. Close returns the first error of those deletes other than
// "already gone or replaced", and is idempotent.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		type node struct {
			key, value, owner string
			created           uint64
		}
		s.mu.Lock()
		nodes := make([]node, 0, len(s.leases))
		for l := range s.leases {
			if l != s.own {
				nodes = append(nodes, node{l.key, l.value, l.owner, l.created})
			}
		}
		// The session key last.
		nodes = append(nodes, node{s.own.key, s.own.value, s.own.owner, s.own.created})
		s.leases = map[*lease]struct{}{}
		s.endLocked()
		s.mu.Unlock()
		s.wg.Wait()

		ctx, cancel := context.WithTimeout(context.Background(), s.ttl)
		defer cancel()
		for _, n := range nodes {
			err := deleteLease(ctx, s.kapi, n.key, n.value, n.owner, n.created)
			if err != nil && !errors.Is(err, errNodeLost) && s.closeErr == nil {
				s.closeErr = err
			}
		}
	})
	return s.closeErr
}

// errNodeLost is deleteLease's answer for a node that was gone, or replaced
// by someone else's, before it could delete it.
var errNodeLost = errors.New("concurrency: node gone or replaced")

// maxDeleteRereads bounds how many times deleteLease reads a node back
// after its delete's condition failed.
const maxDeleteRereads = 3

// deleteLease deletes the node key that this process created at index
// created with owner id owner, conditional on value, the value it was last
// known to have; a delete whose outcome is unknown is sent again (the
// condition makes that harmless). The condition fails (101) also while the
// node is still ours with a value this process did not record: a change of
// value that was applied but not answered (a Proclaim whose context ended,
// or whose answer was lost). So on 101 the key is read back (quorum): if it
// still has our createdIndex and an envelope with our owner id, it is
// deleted again conditional on the value just read, at most
// maxDeleteRereads times. It returns nil once the node is deleted (or found
// gone after a delete of ours whose outcome was unknown), errNodeLost when
// it was gone or replaced by someone else's node, and otherwise the error
// that stopped it.
func deleteLease(ctx context.Context, kapi client.KeysAPI, key, value, owner string, created uint64) error {
	d := backoffMin
	ambiguous := false
	rereads := 0
	for {
		_, err := kapi.Delete(ctx, key, &client.DeleteOptions{PrevValue: value})
		switch {
		case err == nil:
			return nil
		case errCode(err, client.ErrorCodeTestFailed) && rereads < maxDeleteRereads:
			rereads++
			v, ok, rerr := readOwn(ctx, kapi, key, owner, created)
			if rerr != nil {
				return rerr
			}
			if ok {
				value = v
				continue // still ours: delete it with the value it has
			}
			fallthrough
		case errCode(err, client.ErrorCodeKeyNotFound):
			if ambiguous {
				return nil // an earlier attempt of ours deleted it
			}
			return errNodeLost
		case serverRefused(err) || ctx.Err() != nil:
			return err
		}
		ambiguous = true
		if d, err = backoff(ctx, nil, d); err != nil {
			return err
		}
	}
}

// readOwn reads key back (quorum) and returns its value if it is still the
// node created at index created with owner id owner (ok false when it is
// gone or another node), retrying while no member answers.
func readOwn(ctx context.Context, kapi client.KeysAPI, key, owner string, created uint64) (value string, ok bool, err error) {
	d := backoffMin
	for {
		r, err := kapi.Get(ctx, key, &client.GetOptions{Quorum: true})
		switch {
		case err == nil:
			if ownNode(r.Node, owner, created) {
				return r.Node.Value, true, nil
			}
			return "", false, nil
		case errCode(err, client.ErrorCodeKeyNotFound):
			return "", false, nil
		case serverRefused(err) || ctx.Err() != nil:
			return "", false, err
		}
		if d, err = backoff(ctx, nil, d); err != nil {
			return "", false, err
		}
	}
}

// ownNode reports whether n is the node created at index created whose
// envelope carries owner id owner.
func ownNode(n *client.Node, owner string, created uint64) bool {
	if n == nil || n.CreatedIndex != created {
		return false
	}
	e, ok := decodeEnvelope(n.Value)
	return ok && e.Owner == owner
}

// deleteOwned deletes key if its value is still value, retrying while the
// outcome is unknown (the condition makes a resend harmless). A key already
// gone is not an error.
func deleteOwned(ctx context.Context, kapi client.KeysAPI, key, value string) error {
	d := backoffMin
	for {
		_, err := kapi.Delete(ctx, key, &client.DeleteOptions{PrevValue: value})
		if err == nil || errCode(err, client.ErrorCodeKeyNotFound) || errCode(err, client.ErrorCodeTestFailed) {
			return nil
		}
		if serverRefused(err) || ctx.Err() != nil {
			return err
		}
		if d, err = backoff(ctx, nil, d); err != nil {
			return err
		}
	}
}

// endLocked ends the session. s.mu is held.
func (s *Session) endLocked() {
	if s.ended {
		return
	}
	s.ended = true
	close(s.done)
	s.cancel()
	if s.timer != nil {
		s.timer.Stop()
	}
}

// checkDeadline runs when the deadline timer fires.
func (s *Session) checkDeadline() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if now := time.Now(); !now.Before(s.deadline) {
		s.endLocked()
		return
	}
	s.timer.Reset(time.Until(s.deadline))
}

// recomputeLocked sets the deadline from the oldest renewal and, unless the
// session has ended, sets the timer that closes Done for it: the deadline
// can move earlier (attach of a key whose create was sent before the last
// renewal), and the timer must not fire later than it. s.mu is held.
func (s *Session) recomputeLocked() {
	var oldest time.Time
	for l := range s.leases {
		if oldest.IsZero() || l.sent.Before(oldest) {
			oldest = l.sent
		}
	}
	if !oldest.IsZero() {
		s.deadline = oldest.Add(s.ttl - s.margin)
	}
	if !s.ended && s.timer != nil {
		s.timer.Reset(time.Until(s.deadline))
	}
}

// attach adds a key created (with the session's TTL) at time sent to the
// keys the session renews. It fails with ErrSessionExpired when the session
// has ended, or when the deadline computed with the key's send time has
// passed already (the session then ends); the caller then removes the key.
func (s *Session) attach(key, value, owner string, created uint64, sent time.Time) (*lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || !time.Now().Before(s.deadline) {
		s.endLocked()
		return nil, ErrSessionExpired
	}
	l := &lease{key: key, value: value, owner: owner, created: created, sent: sent}
	s.leases[l] = struct{}{}
	s.recomputeLocked()
	if !time.Now().Before(s.deadline) {
		// The server may expire the key (or has): the session is over.
		delete(s.leases, l)
		s.endLocked()
		return nil, ErrSessionExpired
	}
	return l, nil
}

// detach stops renewing l.
func (s *Session) detach(l *lease) {
	if l == nil {
		return
	}
	s.mu.Lock()
	delete(s.leases, l)
	s.recomputeLocked()
	s.mu.Unlock()
}

// setValue records a new value of l. l.mu is held.
func (s *Session) setValue(l *lease, v string) {
	s.mu.Lock()
	l.value = v
	s.mu.Unlock()
}

// valueOf returns the value l was last known to have.
func (s *Session) valueOf(l *lease) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return l.value
}

func (s *Session) attached(l *lease) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.leases[l]
	return ok && !s.ended
}

// renewed records a successful renewal (or value change) of l sent at sent.
func (s *Session) renewed(l *lease, sent time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if !time.Now().Before(s.deadline) {
		// The answer came after the deadline: the session is over even if
		// the server still had the key.
		s.endLocked()
		return
	}
	if _, ok := s.leases[l]; !ok {
		return
	}
	if sent.After(l.sent) {
		l.sent = sent
	}
	s.recomputeLocked()
}

// lose ends the session because l was found gone, unless l was detached
// meanwhile (it was deleted on purpose).
func (s *Session) lose(l *lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l != nil {
		if _, ok := s.leases[l]; !ok {
			return
		}
	}
	s.endLocked()
}

func (s *Session) renewLoop() {
	defer s.wg.Done()
	interval := s.ttl / 3
	retry := 500 * time.Millisecond
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			s.mu.Lock()
			s.endLocked() // the caller's context ended
			s.mu.Unlock()
			return
		case <-t.C:
		}
		if s.renewAll() {
			t.Reset(interval)
		} else {
			t.Reset(retry)
		}
	}
}

// renewAll renews every attached key at once; it reports whether all
// renewals succeeded.
func (s *Session) renewAll() bool {
	s.mu.Lock()
	ls := make([]*lease, 0, len(s.leases))
	for l := range s.leases {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := true
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !s.renew(l) {
				mu.Lock()
				ok = false
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ok
}

// renew refreshes one key conditionally on its value. It reports success.
func (s *Session) renew(l *lease) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !s.attached(l) {
		return true
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.ttl/3)
	defer cancel()
	sent := time.Now()
	_, err := s.kapi.Set(ctx, l.key, "", &client.SetOptions{Refresh: true, TTL: s.ttl, PrevValue: l.value, PrevExist: client.PrevExist})
	switch {
	case err == nil:
		s.renewed(l, sent)
		return true
	case errCode(err, client.ErrorCodeKeyNotFound):
		s.lose(l)
		return false
	case errCode(err, client.ErrorCodeTestFailed):
		// The value is not the one we know. It is still ours if the node
		// is the one we created and carries our owner id (a change of
		// value whose answer was lost); otherwise it was replaced.
		r, gerr := s.kapi.Get(ctx, l.key, &client.GetOptions{Quorum: true})
		if gerr != nil {
			if errCode(gerr, client.ErrorCodeKeyNotFound) {
				s.lose(l)
			}
			return false
		}
		if ownNode(r.Node, l.owner, l.created) {
			s.setValue(l, r.Node.Value)
			return false // renew again soon with the right value
		}
		s.lose(l)
		return false
	default:
		return false
	}
}

// ctxErr returns ctx.Err() if ctx ended, else ErrSessionExpired if the
// session ended, else err.
func (s *Session) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !s.alive() {
		return ErrSessionExpired
	}
	return err
}
