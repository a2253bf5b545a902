package client

import (
	"context"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Default bounds of a watch poll; see WatcherOptions.
const (
	// DefaultWatchProbeInterval is how often the endpoint of an open watch
	// poll is probed when WatcherOptions.ProbeInterval is zero.
	DefaultWatchProbeInterval = 5 * time.Second
	// DefaultWatchMaxPollDuration is how long one watch poll may stay open
	// when WatcherOptions.MaxPollDuration is zero.
	DefaultWatchMaxPollDuration = 5 * time.Minute
)

// Watcher waits for the events of a key or of a directory tree.
//
// The Watcher of KeysAPI.Watcher long-polls the server, one request per
// event. Its Next keeps a cursor, the waitIndex of the next poll:
//
//   - after an event, the event's ModifiedIndex + 1;
//   - after a poll that ended without an event (an empty 200 answer, a
//     connection cut after the headers, a poll ended by MaxPollDuration or
//     by a failed probe), the same cursor: a poll answered from the
//     server's history gets headers carrying the store's current index
//     before the event itself, so a cut between the two must not move the
//     cursor past the event. The one exception is a poll sent without a
//     cursor (AfterIndex zero, before the first event): the server waits
//     for events after the X-Etcd-Index of its headers, so the cursor
//     becomes that index + 1;
//   - an event whose index is below the cursor is dropped.
//
// So events are neither lost nor repeated when a poll moves to another
// member. A key that stays quiet while more than 1000 other events happen
// falls out of the server's history (v2 has no progress notification).
// When the cursor has fallen out of the server's history, Next
// returns the server's Error with Code ErrorCodeEventIndexCleared (401) and
// keeps the cursor; recover by reading the key again (Get, Recursive as for
// the watch), then watching with AfterIndex set to that Response's Index.
//
// Next returns exactly ctx.Err() when ctx ends, freeing the connection at
// once (a shared poll's, see below, when no other watcher is in it). Other
// errors (no member reachable, a bad answer) leave the cursor
// as it was, so Next may be called again. Concurrent calls of Next on one
// Watcher are serialized: each waits for the one before it.
//
// A poll on a member that dies is resumed on another member by the
// client's failover; one on a member that hangs (SIGSTOP: connections stay
// open, nothing is answered) is noticed by probing the member every
// WatcherOptions.ProbeInterval, and every poll ends after
// WatcherOptions.MaxPollDuration at most.
//
// # Shared polls
//
// Watchers of one Client that watch the same key with the same Recursive,
// ProbeInterval and MaxPollDuration share one long poll (one connection,
// one goroutine of the client) instead of holding one each, unless
// WatcherOptions.OwnPoll is set. Each still gets the events it would get
// alone, once and in order, because it joins (in Next) only where that
// holds; the last rule but one tells the one difference:
//
//   - The shared poll has a cursor of its own, kept by the rules above, and
//     passes every event it gets to each watcher whose cursor the event
//     has reached; the watcher's cursor then moves past the event.
//   - A watcher joins when its cursor is at or after the shared poll's:
//     events below its cursor are not given to it. A watcher whose cursor
//     is behind polls alone until it has caught up.
//   - A watcher without a cursor (AfterIndex zero, before its first event)
//     takes the store index of the headers of a shared poll sent after it
//     joined, as it would from a poll of its own: an open poll is
//     restarted for it, so it never gets an event written before its Next
//     was called.
//   - A shared poll that ends with an error gives the error to the
//     watchers whose cursor is its own, as their own poll would have; the
//     others poll alone. Each watcher keeps its cursor.
//   - A watcher stays in the shared poll between calls of Next, and the
//     poll stays open while it has watchers; events wait for a watcher's
//     Next in a queue of its own. A watcher with 256 events queued when
//     another comes leaves the shared poll: it gets what was queued, then
//     polls alone from its cursor (and joins again once it has caught up),
//     so a slow watcher never holds the others back and loses nothing.
//   - A watcher that takes an event queued while it was not in Next, with
//     its cursor more than 500 below the store index the shared poll last
//     saw, asks the server instead: it leaves the shared poll and polls
//     alone from its cursor, and gets the 401 its own poll would get once
//     the server's 1000 events of history have moved past it. The
//     difference: a watcher whose key stayed quiet while more than 1000
//     other events happened, and whose Next then finds nothing queued,
//     keeps its place in the shared poll as if its own poll had stayed
//     open between calls of Next: it gets the next event where a poll of
//     its own would get the 401 at once.
//   - A watcher whose Next returns ctx.Err() leaves the shared poll (what it
//     had queued comes again later, from its cursor), as does a watcher
//     that is no longer referenced (when it is garbage-collected); the
//     poll and its goroutine end with the last watcher, and on Close.
//
// Each watcher gets a Response of its own.
type Watcher interface {
	// Next blocks until an etcd event occurs, then returns a Response
	// representing that event. The behavior of Next depends on the
	// WatcherOptions used to construct the Watcher. Next is designed to
	// be called repeatedly, each time blocking until a subsequent event
	// is available.
	//
	// If the provided context is cancelled, Next will return a non-nil
	// error. Any other failures encountered while waiting for the next
	// event (connection issues, deserialization failures, etc) will
	// also result in a non-nil error.
	Next(context.Context) (*Response, error)
}

// WatcherOptions are the options of KeysAPI.Watcher.
type WatcherOptions struct {
	// AfterIndex defines the index after-which the Watcher should
	// start emitting events. For example, if a value of 5 is
	// provided, the first event will have an index >= 6.
	//
	// Setting AfterIndex to 0 (default) means that the Watcher
	// should start watching for events starting at the current
	// index, whatever that may be.
	AfterIndex uint64

	// Recursive specifies whether or not the Watcher should emit
	// events that occur in children of the given keyspace. If set
	// to false (default), events will be limited to those that
	// occur for the exact key.
	Recursive bool

	// ProbeInterval is how often, while a poll is open, the endpoint
	// serving it is probed (GET /version within the client's per-attempt
	// timeout). A member stopped by SIGSTOP keeps its connections open
	// and never answers; when a probe fails the poll is abandoned and
	// resumed on another endpoint from the same index. Zero means
	// DefaultWatchProbeInterval (5s); a negative value turns probing off.
	ProbeInterval time.Duration

	// MaxPollDuration bounds one poll: a poll still open after it is
	// ended and re-issued with the same cursor (see Watcher). Zero means
	// DefaultWatchMaxPollDuration (5 minutes); a negative value means no
	// bound.
	MaxPollDuration time.Duration

	// OwnPoll makes the Watcher hold a long poll of its own. False (the
	// default) lets watchers of one Client that watch the same key with
	// the same Recursive, ProbeInterval and MaxPollDuration share one
	// poll when their cursors allow it; see "Shared polls" at Watcher.
	OwnPoll bool
}

// Watcher implements KeysAPI; see the Watcher type for how it polls.
func (k *httpKeysAPI) Watcher(key string, opts *WatcherOptions) Watcher {
	kp := k.keyURL(key)
	w := &httpWatcher{spec: watchSpec{
		client:   k.client,
		path:     kp.path,
		rawPath:  kp.rawPath,
		probeIvl: DefaultWatchProbeInterval,
		maxPoll:  DefaultWatchMaxPollDuration,
	}}
	ownPoll := false
	if opts != nil {
		w.spec.recursive = opts.Recursive
		w.next = opts.AfterIndex + 1
		if opts.AfterIndex == 0 {
			w.next = 0
		}
		if opts.ProbeInterval != 0 {
			w.spec.probeIvl = opts.ProbeInterval
		}
		if opts.MaxPollDuration != 0 {
			w.spec.maxPoll = opts.MaxPollDuration
		}
		ownPoll = opts.OwnPoll
	}
	if c, ok := k.client.(*httpClusterClient); ok && !ownPoll {
		w.hub = &c.watches
		w.link = new(watchLink)
		// A watcher dropped while in a share leaves it.
		runtime.SetFinalizer(w, (*httpWatcher).leaveShare)
	}
	return w
}

// watchSpec is what a poll needs: the client, the key and the options.
type watchSpec struct {
	client        Client
	path, rawPath string
	recursive     bool
	probeIvl      time.Duration
	maxPoll       time.Duration
}

// httpWatcher is the Watcher of KeysAPI.Watcher.
type httpWatcher struct {
	spec watchSpec
	// hub is the client's registry of shared polls; nil when the
	// watcher polls alone (WatcherOptions.OwnPoll, or a Client that is
	// not this package's).
	hub *watchHub
	// link holds the watcher's subscription to a shared poll, for
	// leaving it when the watcher is dropped; nil with hub.
	link *watchLink

	mu sync.Mutex
	// next is the waitIndex of the next poll; 0 means "from now".
	next uint64
}

// Causes of a poll ended by the watcher itself.
var (
	errPollExpired  = errors.New("client: watch poll reached its maximum duration")
	errProbeFailed  = errors.New("client: probe of the watched endpoint failed")
	errEndpointDown = errors.New("client: the watched endpoint was ejected")
)

// Backoff between polls that end at once without an event.
const (
	watchBackoffMin = 50 * time.Millisecond
	watchBackoffMax = 2 * time.Second
	// watchQuickPoll is how long a poll lasts at least before an end
	// without an event is not counted as a quick one.
	watchQuickPoll = time.Second
)

// nextBackoff returns the wait before the next poll after one that
// started at start and ended without an event.
func nextBackoff(backoff time.Duration, start time.Time) time.Duration {
	if time.Since(start) >= watchQuickPoll {
		return 0
	}
	if backoff == 0 {
		return watchBackoffMin
	}
	return min(2*backoff, watchBackoffMax)
}

// Next implements Watcher.
func (w *httpWatcher) Next(ctx context.Context) (*Response, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	backoff := time.Duration(0)
	// alone is set after the watcher left a shared poll without an
	// event: its next poll is its own (it may have fallen behind, or the
	// shared poll failed in a way this watcher must meet for itself).
	alone := false
	for {
		if err := ctx.Err(); err != nil {
			w.leaveShare()
			return nil, err
		}
		if w.hub != nil && !alone {
			if res, ok, err := w.nextShared(ctx); ok {
				return res, err
			}
			alone = true
			continue
		}
		alone = false
		start := time.Now()
		res, next, err := w.spec.poll(ctx, w.next, nil)
		w.next = next
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if res != nil {
			return res, nil
		}
		// No event: poll again, backing off when polls end at once.
		if backoff = nextBackoff(backoff, start); backoff == 0 {
			continue
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// poll runs one long poll with the cursor next (0: from now). It returns
// the event, or nil when the poll ended without one, and the cursor after
// the poll (next unless an event came, or a poll sent without a cursor got
// its headers; see afterEmpty). onHeaders, when set, is called with the
// X-Etcd-Index of the answer's headers once they arrive, before the event.
func (s *watchSpec) poll(ctx context.Context, next uint64, onHeaders func(index uint64)) (*Response, uint64, error) {
	// As the original client: every parameter named, waitIndex=0 for a
	// poll without a cursor (the server reads it as "from now").
	q := url.Values{}
	q.Set("wait", "true")
	q.Set("waitIndex", strconv.FormatUint(next, 10))
	q.Set("recursive", strconv.FormatBool(s.recursive))
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if s.maxPoll > 0 {
		t := time.AfterFunc(s.maxPoll, func() { cancel(errPollExpired) })
		defer t.Stop()
	}
	resp, err := s.client.do(pctx, &request{
		method: http.MethodGet, path: s.path, rawPath: s.rawPath,
		query: q.Encode(), kind: KindWatch, replayable: true,
	})
	if err != nil {
		if ctx.Err() == nil && context.Cause(pctx) == errPollExpired {
			return nil, next, nil
		}
		return nil, next, err
	}
	if resp.StatusCode != http.StatusOK {
		// An etcd error (401 EventIndexCleared among them): the caller
		// decides; the cursor stays.
		_, err := errorAnswer(resp.StatusCode, resp.Body)
		return nil, next, err
	}
	index := headerUint(resp.Header, "X-Etcd-Index")
	// Only a poll sent without a cursor may resume after its headers'
	// index; see afterEmpty.
	registered := uint64(0)
	if next == 0 {
		registered = index
	}
	if onHeaders != nil {
		onHeaders(index)
	}

	stopProbe := s.startProbe(pctx, cancel, resp.endpoint)
	var r Response
	err = decodeJSON(resp.Body, &r)
	stopProbe()
	if err == nil {
		_ = finishBody(resp.Body)
		setMeta(&r, resp)
		if r.Node == nil || r.Node.ModifiedIndex < next {
			// Not an event past the cursor: never deliver it twice.
			return nil, afterEmpty(next, registered), nil
		}
		return &r, r.Node.ModifiedIndex + 1, nil
	}
	resp.Body.Close()
	if ctx.Err() != nil {
		// The caller gave up: an empty poll too (its headers may have
		// given a poll without a cursor one).
		return nil, afterEmpty(next, registered), ctx.Err()
	}
	if errors.Is(err, ErrEmptyBody) || pctx.Err() != nil || isCutOff(err) {
		// The poll ended without an event: an empty answer, a poll we
		// ended (probe failure, maximum duration), or a connection
		// that broke after the headers.
		return nil, afterEmpty(next, registered), nil
	}
	return nil, next, err
}

// afterEmpty returns the cursor after a poll with cursor next ended without
// an event. registered is the X-Etcd-Index of a poll sent without a cursor
// (0 otherwise): the server waited for events after it, so none up to it
// can be missed. A poll sent with a cursor keeps it: its headers may carry
// the store's current index while a matching event from history was still
// to come.
func afterEmpty(next, registered uint64) uint64 {
	if registered > 0 && registered+1 > next {
		return registered + 1
	}
	return next
}

// isCutOff reports whether a decoding error comes from the connection (it
// broke or ended early) rather than from the content.
func isCutOff(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	return !errors.Is(err, ErrInvalidJSON) && !errors.Is(err, ErrResponseTooLarge)
}

// startProbe watches the endpoint serving a poll until the poll ends. It
// cancels the poll when the client ejects the endpoint (a hung member
// found out by other requests or by the client's probes) or drops it from
// its list, and, every s.probeIvl, probes the endpoint itself, since a
// poll alone never notices a member that stopped answering. The returned
// func stops the watching, cancelling a probe in flight, and waits for it
// to end.
func (s *watchSpec) startProbe(pctx context.Context, cancel context.CancelCauseFunc, endpoint string) func() {
	down := s.client.endpointDown(endpoint)
	select {
	case <-down:
		// Already ejected: the poll went there because nothing better
		// was left; give it its chance rather than abandon it at once.
		down = nil
	default:
	}
	if s.probeIvl <= 0 && down == nil {
		return func() {}
	}
	// The probes run under their own context, cancelled when the poll's
	// answer arrives, so that an event never waits for a probe in flight.
	sctx, stop := context.WithCancel(pctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var tick <-chan time.Time
		if s.probeIvl > 0 {
			t := time.NewTicker(s.probeIvl)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-sctx.Done():
				return
			case <-down:
				cancel(errEndpointDown)
				return
			case <-tick:
			}
			if err := s.client.probe(sctx, endpoint); err != nil && sctx.Err() == nil {
				cancel(errProbeFailed)
				return
			}
		}
	}()
	return func() {
		stop()
		wg.Wait()
	}
}

// Events returns an iterator over the events of w: each call of Next
// yields its Response with a nil error. The iteration ends when the loop
// body stops it, or after yielding the first error (ctx.Err() when ctx
// ends); the Watcher keeps its cursor, so a new iteration resumes where
// this one stopped.
//
//	for resp, err := range client.Events(ctx, w) {
//		if err != nil {
//			return err
//		}
//		use(resp)
//	}
func Events(ctx context.Context, w Watcher) iter.Seq2[*Response, error] {
	return func(yield func(*Response, error) bool) {
		for {
			resp, err := w.Next(ctx)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(resp, nil) {
				return
			}
		}
	}
}
