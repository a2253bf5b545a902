// Package concurrency builds coordination recipes on the etcd v2 keys API:
// sessions, fair mutexes with fencing tokens, leader elections, semaphores,
// read-write locks, barriers and queues. It uses only the client.KeysAPI
// interface, so it works with any implementation of it (a prefixed KeysAPI,
// a wrapper that counts or logs requests).
//
// # Sessions
//
// etcd v2 has no server-side session or lease shared by several keys. A
// Session is a client-side lease: every key written through it (its own
// key, and each lock, election, semaphore or read-write-lock node) carries
// the session's TTL and is renewed about every TTL/3 by a conditional
// refresh (refresh=true&prevValue=<the key's unique value>), which neither
// wakes watchers nor uses up watch history.
//
//	s, err := concurrency.NewSession(kapi, concurrency.WithTTL(15*time.Second))
//	if err != nil { ... }
//	defer s.Close()
//
// Session.Done is closed as soon as the session's keys may be gone: a
// renewal found one of them gone, or the local deadline passed — the send
// time of the oldest key's last successful create or renewal plus the TTL
// minus a margin of max(1s, TTL/10), on this process's monotonic clock. The
// deadline passes even when no member answers, so a holder cut off from the
// cluster learns it lost its keys before (by the margin) the server removes
// them, provided the etcd members' clocks do not run faster than this one
// by more than margin/TTL. Done checks the deadline itself when called: a
// process resumed after a pause longer than the TTL sees Done closed at its
// first look.
//
// # Locks, and why fencing tokens are the real safety
//
// A Mutex is a queue of in-order keys (their names are the indexes of their
// creation). The first node holds the lock; each waiter watches only the
// node just before its own, from the index of the quorum read it decided on,
// and reads again after every event: one release wakes one waiter, and
// waiters are served in arrival order.
//
//	m := concurrency.NewMutex(s, "/locks/db")
//	if err := m.Lock(ctx); err != nil { ... }
//	token := m.Token() // the fencing token of this grant
//	...
//	m.Unlock(ctx)
//
// A lock built on a lease cannot keep a paused process (GC, SIGSTOP, a
// migrated VM) from acting after its lease ran out: by the time it resumes
// another holder may be acting too. Check Session.Done before each action
// to make this window small; to make it harmless, pass the fencing token to
// the protected resource and have it refuse tokens lower than the highest it
// has seen. Mutex.Token, Leader.Token and Semaphore.Token are the index of
// the write that created the holder's node, strictly increasing over the
// successive holders of one lock. FencedSet does the check for a resource
// stored in etcd itself.
//
// # Decisions and waits
//
// Every decision (am I first? is a permit free?) is made on a quorum read,
// so a member cut off from its peers, which still answers plain reads with
// old data, cannot cause a wrong grant. A grant is returned only if, once
// that read was answered, the session is still alive and still renews the
// node; a session that ended while the read was in flight gets
// ErrSessionExpired. Waits start at the index of that
// read, so nothing between the read and the watch is missed; a watch that
// falls out of etcd's 1000-event history (error 401) or lasts more than ten
// seconds leads to a new quorum read. Events are only hints: after any
// event the state is read again.
//
// # Ambiguous writes
//
// A write whose answer was lost (client.ErrOutcomeUnknown) may or may not
// have been applied. The recipes never resend it blindly: every node they
// write carries a random 128-bit owner id, and after an unknown outcome they
// read back (quorum) and look for it. A create is sent again only when the
// read shows it was not applied; a late duplicate of one's own node is
// removed when seen. Queue.Enqueue is the exception: a consumer may have
// taken the item before the read, so when the read does not find it Enqueue
// returns an error matching client.ErrOutcomeUnknown instead of sending it
// again. The recipes rely on the client's contract for that error: a write
// failing with an error that is neither a server's answer nor matches
// client.ErrOutcomeUnknown (nor its context's end) never reached a server.
// Deletes and renewals are conditional on the owner's unique value, so
// repeating them is harmless.
//
// # Cancellation
//
// Every blocking call returns ctx.Err() when its context ends, after
// removing its waiting node (a best-effort conditional delete of at most 5
// seconds; a node it cannot delete is no longer renewed and expires with
// its TTL). The releases (Mutex.Unlock, Election.Resign, Semaphore.Release,
// RWMutex.RUnlock and Unlock) delete their node even when their context
// has already ended, for at most 5 seconds whatever the context: a
// deferred Unlock after the request timed out still frees the lock.
//
// No goroutine outlives a call, except each Session's renewer, which ends
// with the session. Nor does a watch: every watcher is let go after its
// last use (with this module's client, a watcher would otherwise stay in
// its shared poll, keeping a long poll and a goroutine of the client, until
// it is garbage-collected).
//
// # Errors
//
// The recipes' own errors (ErrLocked, ErrNoLeader, ErrSessionExpired,
// ErrNotHeld, ErrHeld, ErrNotLeader, ErrStaleToken, ErrLimitMismatch,
// ErrForeignKey) are compared with errors.Is. Errors of the cluster are
// returned as the client returned them (client.Error for an answer of the
// server), possibly wrapped.
//
// # Assumptions
//
// Safety of the lease (not of fencing) rests on three assumptions: the
// clocks of this process and of the etcd members run at rates that differ
// by less than margin/TTL (10% for TTLs of 10s and more); a renewal's answer
// is acted upon only if it arrives before the local deadline; and the etcd
// server keeps the TTL it is given (etcd 2.3.7 or later, or etcd 3.x
// serving the v2 API). docs/concurrency.md in the repository states each
// guarantee with the test that checks it.
package concurrency
