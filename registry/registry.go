// Package registry registers service instances in etcd v2 with a TTL and
// a health status, and finds them: the etcd v2 counterpart of the Consul
// API's Agent.ServiceRegister with a TTL check, Health.Service with
// passingOnly and blocking queries, and Catalog.Services. It is built on
// client.KeysAPI alone.
//
// # Layout
//
// Each instance is one file key, <root>/<service>/<id>, whose value is the
// instance as JSON (address, tags, meta, status, output and a random token
// of the registration that wrote it) and whose TTL is the registration's.
// The registering process refreshes the TTL about every third of it with a
// conditional refresh (SetOptions.Refresh with PrevValue), which wakes no
// watcher; a status or output change rewrites the value (PrevValue again),
// which does. An instance whose process dies disappears when the TTL runs
// out.
//
// # Registrations end on the registering side first
//
// A Registration keeps a local deadline on the monotonic clock: the send
// time of the last successful refresh plus the TTL minus a margin
// (max(TTL/10, 500ms)). When the deadline passes without a successful
// refresh (etcd unreachable, the process paused), Done is closed, even if
// etcd cannot be reached, and nothing more is written; since the server
// counts the TTL from when it applied the refresh, later than it was sent,
// Done closes before the server removes the instance (as long as the
// etcd members' clocks run at the same rate as the registering host's). Done
// is also closed when the instance is found deleted or replaced (it
// carries another registration's token), or after Deregister. A lost
// registration is never resurrected: register again.
//
// # Writes whose answer is lost
//
// A status write or refresh whose answer does not come (the caller's
// context ended after it was sent, the loop's write timed out, or the
// client reports client.ErrOutcomeUnknown) may have been applied. It is
// not resent as such, and the registration does not give itself up for
// it: when a later write of its own meets another value than it knows
// (error 101), or at once when the write's context still allows, it reads
// the instance with a quorum read. An instance that still carries the
// registration's token is its own: the registration adopts the stored
// value (Instance shows it) and goes on. One with another token was
// replaced, and a missing one was deleted or expired: the registration
// ends. Adopting a value does not move the local deadline; only a write
// whose send time is known does.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/cache"
)

// Status is the health of an instance, as a Consul TTL check reports it.
type Status string

// The statuses, as Consul names them.
const (
	Passing  Status = "passing"
	Warning  Status = "warning"
	Critical Status = "critical"
)

// DefaultTTL is the registration TTL when WithTTL is not given.
const DefaultTTL = 15 * time.Second

var (
	// ErrExists is matched (errors.Is) by the *ExistsError of a Register
	// that found an instance of the same service and ID written by
	// another registration.
	ErrExists = errors.New("registry: instance already registered")
	// ErrLost is matched by the error of a Registration that no longer
	// holds its instance: it expired, was deleted or replaced, its local
	// deadline passed, or it was deregistered.
	ErrLost = errors.New("registry: registration lost")
	// ErrInvalid is matched by the error for an Instance or option that
	// cannot be registered (an empty or unusable service or ID, a TTL
	// below one second or not a whole number of seconds, a margin not
	// below the TTL, an unknown status).
	ErrInvalid = errors.New("registry: invalid registration")
)

// ExistsError is returned by Register when another registration's
// instance has the same service and ID. Existing is that instance.
type ExistsError struct {
	Existing Instance
}

// Error describes the conflict.
func (e *ExistsError) Error() string {
	return fmt.Sprintf("registry: %s/%s is already registered (addr %q, index %d)",
		e.Existing.Service, e.Existing.ID, e.Existing.Addr, e.Existing.CreateIndex)
}

// Is makes errors.Is(err, ErrExists) true.
func (e *ExistsError) Is(target error) bool { return target == ErrExists }

// Instance is one registered instance of a service.
type Instance struct {
	// Service is the service name; one path segment, not starting with
	// "_".
	Service string `json:"service"`
	// ID identifies the instance within its service; one path segment,
	// not starting with "_".
	ID string `json:"id"`
	// Addr is where the instance is reached, e.g. "10.0.0.5:8080".
	Addr string `json:"addr,omitempty"`
	// Tags are free-form labels, matched by the Tag filter.
	Tags []string `json:"tags,omitempty"`
	// Meta is free-form key/value metadata.
	Meta map[string]string `json:"meta,omitempty"`
	// Status is the instance's health; set by Register (Passing unless
	// WithStatus or WithCheckTTL say otherwise) and SetStatus. Ignored by
	// Register.
	Status Status `json:"status"`
	// Output is the text of the last SetStatus. Ignored by Register.
	Output string `json:"output,omitempty"`
	// CreateIndex and ModifyIndex are the etcd indexes of the instance's
	// key, filled in by Instances and Watch. A TTL refresh moves the
	// key's modifiedIndex without telling watchers, so Instances shows
	// the latest ModifyIndex and Watch that of the last write a watcher
	// saw (the registration or the last status change).
	CreateIndex uint64 `json:"-"`
	// ModifyIndex: see CreateIndex.
	ModifyIndex uint64 `json:"-"`
}

// envelope is the stored value.
type envelope struct {
	Instance
	Token string `json:"token"`
}

// Registry registers and finds instances under a root key.
type Registry struct {
	kapi client.KeysAPI
	root string

	mu sync.Mutex
	// unsettled holds, per key, the tokens of Registers whose outcome
	// is unknown: an instance with one of them is this Registry's own.
	unsettled map[string][]string
}

// New returns a Registry keeping its instances under root (e.g.
// "/services").
func New(kapi client.KeysAPI, root string) *Registry {
	segs := strings.FieldsFunc(root, func(r rune) bool { return r == '/' })
	return &Registry{kapi: kapi, root: "/" + strings.Join(segs, "/")}
}

func (r *Registry) serviceKey(service string) string {
	if r.root == "/" {
		return "/" + service
	}
	return r.root + "/" + service
}

func (r *Registry) instanceKey(service, id string) string {
	return r.serviceKey(service) + "/" + id
}

func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/?#%") && s[0] != '_'
}

// RegisterOption configures a Register call.
type RegisterOption func(*regOptions)

type regOptions struct {
	ttl      time.Duration
	checkTTL time.Duration
	status   Status
	replace  bool
	margin   time.Duration
}

// WithTTL sets the registration TTL (whole seconds, at least one; Register
// fails with ErrInvalid otherwise, since the server counts whole seconds):
// the instance disappears this long after its process stops refreshing
// it. The default is DefaultTTL.
func WithTTL(ttl time.Duration) RegisterOption { return func(o *regOptions) { o.ttl = ttl } }

// WithCheckTTL makes the status a Consul TTL check: when SetStatus is not
// called for d, the Registration sets the status to Critical with output
// "TTL expired" (the registering process runs the check's timer, as a
// Consul agent does). The status starts Critical unless WithStatus says
// otherwise. Zero, the default, means the status stays as last set.
func WithCheckTTL(d time.Duration) RegisterOption { return func(o *regOptions) { o.checkTTL = d } }

// WithStatus sets the initial status. The default is Passing, or Critical
// with WithCheckTTL.
func WithStatus(s Status) RegisterOption { return func(o *regOptions) { o.status = s } }

// WithReplace lets Register overwrite an existing instance of the same
// service and ID written by another registration (whose Registration then
// finds itself lost at its next refresh). Without it Register returns an
// *ExistsError.
func WithReplace() RegisterOption { return func(o *regOptions) { o.replace = true } }

// WithMargin sets how long before the nominal TTL the local deadline
// falls (see the package documentation). The default is max(TTL/10,
// 500ms); it should cover the clock drift between this host and the etcd
// members over one TTL and the server's expiry sweep (0.5 s).
func WithMargin(d time.Duration) RegisterOption { return func(o *regOptions) { o.margin = d } }

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Register writes inst with a TTL and keeps refreshing it until
// Deregister, the loss of the instance or the local deadline. It fails
// with an *ExistsError (errors.Is ErrExists) when another registration's
// instance has the same service and ID, unless WithReplace is given.
// The returned Registration's background refreshing does not use ctx;
// call Deregister to end it.
//
// When ctx ends after the instance was sent, or the write's outcome stays
// unknown, Register returns an error matching client.ErrOutcomeUnknown
// (and ctx's error when ctx ended): the instance may be registered,
// unrefreshed, until its TTL runs out. It is not resent. Call Register
// again with the same service and ID on the same Registry: an instance
// left by such a Register is taken over (rewritten, with the new
// Instance, by a compare-and-swap on its value) instead of failing with
// ErrExists. Another Registry, as in another process, still gets an
// *ExistsError.
func (r *Registry) Register(ctx context.Context, inst Instance, opts ...RegisterOption) (*Registration, error) {
	o := regOptions{ttl: DefaultTTL}
	for _, f := range opts {
		f(&o)
	}
	if !validName(inst.Service) || !validName(inst.ID) {
		return nil, fmt.Errorf("%w: service %q, id %q: must be one path segment not starting with '_'", ErrInvalid, inst.Service, inst.ID)
	}
	if o.ttl < time.Second {
		return nil, fmt.Errorf("%w: TTL %v is below one second", ErrInvalid, o.ttl)
	}
	if o.ttl%time.Second != 0 {
		// The server counts whole seconds (the client sends the TTL
		// truncated): the local deadline must come from the same TTL.
		return nil, fmt.Errorf("%w: TTL %v is not a whole number of seconds", ErrInvalid, o.ttl)
	}
	if o.status == "" {
		o.status = Passing
		if o.checkTTL > 0 {
			o.status = Critical
		}
	}
	if !validStatus(o.status) {
		return nil, fmt.Errorf("%w: status %q", ErrInvalid, o.status)
	}
	if o.margin <= 0 {
		o.margin = max(o.ttl/10, 500*time.Millisecond)
	}
	if o.margin >= o.ttl {
		return nil, fmt.Errorf("%w: margin %v is not below the TTL %v", ErrInvalid, o.margin, o.ttl)
	}
	inst.Tags, inst.Meta = slices.Clone(inst.Tags), maps.Clone(inst.Meta)
	inst.Status = o.status
	inst.Output = ""
	inst.CreateIndex, inst.ModifyIndex = 0, 0
	env := envelope{Instance: inst, Token: newToken()}
	val, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	key := r.instanceKey(inst.Service, inst.ID)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sent := time.Now()
	resp, err := r.create(ctx, key, string(val), env.Token, r.unsettledTokens(key), o)
	if err != nil {
		if errors.Is(err, client.ErrOutcomeUnknown) {
			r.settle(key, env.Token, true)
		}
		return nil, err
	}
	r.settle(key, env.Token, false)
	reg := &Registration{
		r: r, key: key, opts: o, env: env, value: string(val),
		index:    resp.Node.CreatedIndex,
		deadline: sent.Add(o.ttl - o.margin),
		done:     make(chan struct{}),
		stop:     make(chan struct{}),
		kick:     make(chan struct{}, 1),
		checkAt:  time.Now().Add(o.checkTTL),
		stopped:  make(chan struct{}),
	}
	reg.loopCtx, reg.cancelLoop = context.WithCancel(context.Background())
	go reg.loop()
	return reg, nil
}

// create writes the instance, resolving a conflict or an unknown outcome
// by reading back; an instance that carries one of the tokens in prior
// (left by an earlier Register of this Registry whose outcome is unknown)
// is taken over: rewritten with a compare-and-swap on its value. It
// returns the write's (or the read's) response.
func (r *Registry) create(ctx context.Context, key, val, token string, prior []string, o regOptions) (*client.Response, error) {
	takeOver := ""      // the value of an instance of ours to rewrite
	mayApplied := false // a write of this call may have been applied
	for attempt := 0; ; attempt++ {
		var resp *client.Response
		var err error
		switch {
		case takeOver != "":
			resp, err = r.kapi.Set(ctx, key, val, &client.SetOptions{TTL: o.ttl, PrevValue: takeOver, PrevExist: client.PrevExist})
		case o.replace:
			resp, err = r.kapi.Set(ctx, key, val, &client.SetOptions{TTL: o.ttl})
		default:
			resp, err = r.kapi.Set(ctx, key, val, &client.SetOptions{TTL: o.ttl, PrevExist: client.PrevNoExist})
		}
		if err == nil {
			return resp, nil
		}
		conflict := errors.Is(err, client.Error{Code: client.ErrorCodeNodeExist}) ||
			(takeOver != "" && (errors.Is(err, client.Error{Code: client.ErrorCodeTestFailed}) || client.IsKeyNotFound(err)))
		// The client returns exactly ctx.Err() when ctx ends, also after
		// the write was sent.
		ended := ctx.Err() != nil && errors.Is(err, ctx.Err())
		if ended || errors.Is(err, client.ErrOutcomeUnknown) {
			mayApplied = true
		}
		switch {
		case ended:
			return nil, unknownOutcome("the registration", ctx.Err())
		case !conflict && !mayApplied:
			return nil, err
		}
		takeOver = ""
		got, gerr := r.kapi.Get(ctx, key, &client.GetOptions{Quorum: true})
		switch {
		case gerr == nil:
			var e envelope
			decoded := json.Unmarshal([]byte(got.Node.Value), &e) == nil
			if decoded && e.Token == token {
				return got, nil // our write was applied
			}
			if got.Node.Dir {
				return nil, fmt.Errorf("%w: %s is a directory", ErrInvalid, key)
			}
			if decoded && slices.Contains(prior, e.Token) && attempt < 3 {
				takeOver = got.Node.Value // left by an earlier Register of ours
				continue
			}
			ex := e.Instance
			ex.CreateIndex, ex.ModifyIndex = got.Node.CreatedIndex, got.Node.ModifiedIndex
			if o.replace && attempt < 3 {
				continue
			}
			return nil, &ExistsError{Existing: ex}
		case client.IsKeyNotFound(gerr) && attempt < 3:
			continue // not applied (or expired at once): write again
		case client.IsKeyNotFound(gerr):
			return nil, err
		case ctx.Err() != nil && mayApplied:
			return nil, unknownOutcome("the registration", ctx.Err())
		case ctx.Err() != nil:
			return nil, ctx.Err()
		default:
			return nil, fmt.Errorf("%w (and reading it back failed: %v)", err, gerr)
		}
	}
}

// unsettledMax bounds the tokens Registry.unsettled keeps per key.
const unsettledMax = 4

// unsettledTokens returns the tokens of earlier Registers of key whose
// outcome is unknown.
func (r *Registry) unsettledTokens(key string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.unsettled[key])
}

// settle records the outcome of a Register of key with token: unknown
// (the token is kept, the oldest dropped beyond unsettledMax) or not
// (every token of key is forgotten).
func (r *Registry) settle(key, token string, unknown bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !unknown {
		delete(r.unsettled, key)
		return
	}
	if r.unsettled == nil {
		r.unsettled = make(map[string][]string)
	}
	toks := append(r.unsettled[key], token)
	if len(toks) > unsettledMax {
		toks = toks[len(toks)-unsettledMax:]
	}
	r.unsettled[key] = toks
}

func validStatus(s Status) bool { return s == Passing || s == Warning || s == Critical }

// Registration is a registered instance, kept alive by a background
// refresh until Deregister or its loss.
type Registration struct {
	r    *Registry
	key  string
	opts regOptions

	mu       sync.Mutex // serializes writes; guards the fields below
	env      envelope
	value    string
	index    uint64
	deadline time.Time
	checkAt  time.Time
	err      error
	// mayExist is true when the registration was lost on its own clock
	// only: the instance may still be on the server.
	mayExist bool

	// loopCtx is the parent of the loop's writes; Deregister cancels it.
	loopCtx    context.Context
	cancelLoop context.CancelFunc

	done    chan struct{}
	kick    chan struct{} // SetStatus changed what the loop waits for
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// Key returns the etcd key of the instance.
func (g *Registration) Key() string { return g.key }

// Instance returns the instance as last written by this registration.
func (g *Registration) Instance() Instance {
	g.mu.Lock()
	defer g.mu.Unlock()
	inst := g.env.Instance
	inst.Tags, inst.Meta = slices.Clone(inst.Tags), maps.Clone(inst.Meta)
	return inst
}

// CreateIndex returns the etcd index at which the instance was created.
func (g *Registration) CreateIndex() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.index
}

// Done returns a channel closed when the registration is lost or
// deregistered; Err then says why.
func (g *Registration) Done() <-chan struct{} { return g.done }

// Deadline returns the local deadline: unless a refresh succeeds before
// it, Done is closed then.
func (g *Registration) Deadline() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.deadline
}

// Err returns nil while the registration holds its instance, then an
// error matching ErrLost that says why it ended.
func (g *Registration) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// lose ends the registration with cause (g.mu held).
func (g *Registration) lose(cause string) {
	if g.err == nil {
		g.err = fmt.Errorf("%w: %s", ErrLost, cause)
		close(g.done)
	}
}

// expiredLocked closes Done if the local deadline has passed (g.mu held).
func (g *Registration) expiredLocked() bool {
	if g.err != nil {
		return true
	}
	if !time.Now().Before(g.deadline) {
		g.lose("local deadline passed without a successful refresh")
		g.mayExist = true
		return true
	}
	return false
}

// loop refreshes the TTL every third of it, retries failures until the
// deadline and runs the check timer.
func (g *Registration) loop() {
	defer close(g.stopped)
	defer g.cancelLoop()
	// Every third of the TTL, less up to a tenth of it at random, so that
	// registrations made together do not refresh together.
	period := func() time.Duration { return g.opts.ttl/3 - mrand.N(g.opts.ttl/10+1) }
	retry := max(g.opts.ttl/10, 200*time.Millisecond)
	next := time.Now().Add(period())
	for {
		g.mu.Lock()
		if g.expiredLocked() {
			g.mu.Unlock()
			return
		}
		wake := earliest(next, g.deadline)
		if g.opts.checkTTL > 0 && g.env.Status != Critical && g.checkAt.Before(wake) {
			wake = g.checkAt
		}
		g.mu.Unlock()
		t := time.NewTimer(time.Until(wake))
		select {
		case <-g.stop:
			t.Stop()
			return
		case <-g.kick:
			t.Stop()
			continue
		case <-t.C:
		}
		now := time.Now()
		g.mu.Lock()
		if g.expiredLocked() {
			g.mu.Unlock()
			return
		}
		if g.opts.checkTTL > 0 && g.env.Status != Critical && !now.Before(g.checkAt) {
			// The check's TTL ran out: report it critical.
			if err := g.writeLocked(Critical, "TTL expired"); err != nil {
				g.checkAt = time.Now().Add(retry)
			}
			g.mu.Unlock()
			continue
		}
		if now.Before(next) {
			g.mu.Unlock()
			continue
		}
		err := g.refreshLocked(g.loopCtx, g.writeTimeout())
		g.mu.Unlock()
		if err != nil {
			next = time.Now().Add(retry)
		} else {
			next = time.Now().Add(period())
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// writeTimeout bounds one refresh or status write of the loop.
func (g *Registration) writeTimeout() time.Duration {
	return max(g.opts.ttl/3, time.Second)
}

// maxAttempts bounds the writes of one refresh or status change that
// meet a value changed by a write of the registration's own (101, then a
// read-back that finds the registration's token).
const maxAttempts = 3

// opCtx returns ctx bounded by the local deadline and, when timeout is
// positive, by timeout from now.
func (g *Registration) opCtx(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	d := g.deadline
	if timeout > 0 {
		d = earliest(d, time.Now().Add(timeout))
	}
	return context.WithDeadline(ctx, d)
}

// unknownOutcome is the error of a write that was sent (or may have been)
// when ctx ended before its answer came: it may or may not have been
// applied. It matches client.ErrOutcomeUnknown and ctxErr.
func unknownOutcome(what string, ctxErr error) error {
	return fmt.Errorf("registry: %s may have been applied (%w): %w", what, client.ErrOutcomeUnknown, ctxErr)
}

// refreshLocked refreshes the TTL without changing the value (g.mu held),
// under ctx bounded by the local deadline and, when timeout is positive,
// by timeout per request. A refresh that meets another value than the
// registration knows (101) reads the instance back (see readBackLocked)
// and, when it is still the registration's, refreshes the stored value.
// When ctx ends after the refresh was sent it returns an error matching
// client.ErrOutcomeUnknown and ctx.Err().
func (g *Registration) refreshLocked(ctx context.Context, timeout time.Duration) error {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		sent := time.Now()
		wctx, cancel := g.opCtx(ctx, timeout)
		_, err := g.r.kapi.Set(wctx, g.key, "", &client.SetOptions{
			Refresh: true, TTL: g.opts.ttl, PrevValue: g.value, PrevExist: client.PrevExist,
		})
		cancel()
		switch {
		case err == nil:
			g.deadline = sent.Add(g.opts.ttl - g.opts.margin)
			return nil
		case errors.Is(err, client.Error{Code: client.ErrorCodeKeyNotFound}):
			g.lose("the instance was deleted or expired")
			return g.err
		case errors.Is(err, client.Error{Code: client.ErrorCodeTestFailed}) && attempt < maxAttempts:
			if rerr := g.settleLocked(ctx, timeout); rerr != nil {
				g.expiredLocked()
				return rerr
			}
			continue // the stored value is ours: refresh it
		case ctx.Err() != nil:
			g.expiredLocked()
			return unknownOutcome("the refresh", ctx.Err())
		}
		// Unknown or transient: keep trying until the deadline.
		g.expiredLocked()
		return err
	}
}

// What a read-back found.
const (
	readOurs     = iota // the instance carries the registration's token
	readGone            // the instance is not there
	readReplaced        // the instance carries another token (or is no instance)
)

// readBackLocked reads the instance with a quorum read (g.mu held), to
// settle a write that met another value than the registration knew (101)
// or whose outcome is unknown. An instance that carries the
// registration's token is its own: a write of its own whose answer was
// lost was applied, possibly after the registration gave up waiting. The
// registration then adopts the stored value. The local deadline stays: it
// moves only with a write whose send time is known.
func (g *Registration) readBackLocked(ctx context.Context) (int, error) {
	got, err := g.r.kapi.Get(ctx, g.key, &client.GetOptions{Quorum: true})
	switch {
	case client.IsKeyNotFound(err):
		return readGone, nil
	case err != nil:
		return 0, fmt.Errorf("registry: reading %s back: %w", g.key, err)
	}
	var e envelope
	if got.Node == nil || got.Node.Dir || json.Unmarshal([]byte(got.Node.Value), &e) != nil || e.Token != g.env.Token {
		return readReplaced, nil
	}
	g.env, g.value = e, got.Node.Value
	return readOurs, nil
}

// settleLocked is readBackLocked for a live registration (g.mu held),
// under ctx bounded as opCtx bounds it: it returns nil when the instance
// is still the registration's (its value adopted), ends the registration
// and returns g.err when the instance is gone or replaced, and returns the
// read's error otherwise.
func (g *Registration) settleLocked(ctx context.Context, timeout time.Duration) error {
	rctx, cancel := g.opCtx(ctx, timeout)
	defer cancel()
	found, err := g.readBackLocked(rctx)
	switch {
	case err != nil:
		return err
	case found == readGone:
		g.lose("the instance was deleted or expired")
		return g.err
	case found == readReplaced:
		g.lose("the instance was replaced by another writer")
		return g.err
	}
	return nil
}

// SetStatus sets the instance's status and output. An unchanged status
// and output only refresh the TTL (no watcher wakes); a change rewrites
// the value (watchers see it). With WithCheckTTL it also restarts the
// check's timer. It fails with an error matching ErrLost when the
// registration no longer holds its instance.
//
// When ctx ends after the write was sent, SetStatus returns an error
// matching client.ErrOutcomeUnknown and ctx.Err(): the write may have
// been applied, and it is not resent. The registration is not lost for
// that: a write of its own that finds the value changed (101) reads the
// instance back with a quorum read and, while the instance carries this
// registration's token, adopts the stored value (Instance then shows it)
// and goes on. A write whose outcome the client reports unknown
// (client.ErrOutcomeUnknown) while ctx lasts is settled the same way.
func (g *Registration) SetStatus(ctx context.Context, status Status, output string) error {
	if !validStatus(status) {
		return fmt.Errorf("%w: status %q", ErrInvalid, status)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.expiredLocked() {
		return g.err
	}
	var err error
	if status == g.env.Status && output == g.env.Output {
		err = g.refreshLocked(ctx, 0)
	} else {
		err = g.writeCtxLocked(ctx, 0, status, output)
	}
	if err == nil && g.opts.checkTTL > 0 {
		g.checkAt = time.Now().Add(g.opts.checkTTL)
		select {
		case g.kick <- struct{}{}:
		default:
		}
	}
	return err
}

// writeLocked rewrites the value with a new status from the loop.
func (g *Registration) writeLocked(status Status, output string) error {
	return g.writeCtxLocked(g.loopCtx, g.writeTimeout(), status, output)
}

// writeCtxLocked rewrites the value with status and output (g.mu held),
// under ctx bounded by the local deadline and, when timeout is positive,
// by timeout per request. A write that meets another value (101) reads
// the instance back: when it is still the registration's it is adopted
// and, unless it already has status and output, written again. A write
// whose outcome is unknown is read back as well, while ctx lasts, but not
// resent. When ctx ends after the write was sent it returns an error
// matching client.ErrOutcomeUnknown and ctx.Err().
func (g *Registration) writeCtxLocked(ctx context.Context, timeout time.Duration, status Status, output string) error {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		env := g.env
		env.Status, env.Output = status, output
		b, err := json.Marshal(env)
		if err != nil {
			return err
		}
		val := string(b)
		sent := time.Now()
		wctx, cancel := g.opCtx(ctx, timeout)
		resp, err := g.r.kapi.Set(wctx, g.key, val, &client.SetOptions{
			TTL: g.opts.ttl, PrevValue: g.value, PrevExist: client.PrevExist,
		})
		cancel()
		if err == nil {
			// A write with a TTL restarts it, as a refresh does.
			g.env, g.value = env, val
			g.deadline = sent.Add(g.opts.ttl - g.opts.margin)
			if resp != nil && resp.Node != nil {
				g.index = resp.Node.CreatedIndex
			}
			return nil
		}
		if errors.Is(err, client.Error{Code: client.ErrorCodeKeyNotFound}) {
			g.lose("the instance was deleted or expired")
			return g.err
		}
		changed := errors.Is(err, client.Error{Code: client.ErrorCodeTestFailed})
		unknown := errors.Is(err, client.ErrOutcomeUnknown) || wctx.Err() != nil
		switch {
		case !changed && !unknown:
			// Not applied (the server refused it, or it was never sent).
			g.expiredLocked()
			return err
		case ctx.Err() != nil:
			// The caller gave up after sending: a later write settles it.
			g.expiredLocked()
			return unknownOutcome("the status write", ctx.Err())
		case changed && attempt >= maxAttempts:
			g.expiredLocked()
			return err
		}
		if rerr := g.settleLocked(ctx, timeout); rerr != nil {
			if g.err != nil {
				return g.err
			}
			g.expiredLocked()
			if unknown {
				return fmt.Errorf("%w (and %v)", err, rerr)
			}
			return rerr
		}
		if g.env.Status == status && g.env.Output == output {
			return nil // applied: by this write or an earlier one of ours
		}
		if unknown {
			g.expiredLocked()
			return err // not resent
		}
		// 101 on a value of our own: write again on top of it.
	}
}

// Deregister stops refreshing and deletes the instance if it is still
// this registration's (a delete conditional on the value: never
// another's; a delete that finds another value reads the instance back
// and deletes it if it still carries this registration's token). A delete whose outcome is unknown, or that failed, is sent
// again (it cannot remove anything else) until ctx ends. It returns nil
// when the instance is gone, also when it was already gone. If ctx ends
// first it returns ctx.Err(), or, when a delete was sent whose outcome is
// unknown, an error matching both client.ErrOutcomeUnknown and ctx.Err():
// the instance may be gone or not. It then expires by its TTL, since it is
// no longer refreshed, unless Deregister is called again, which tries the
// delete again. Afterwards Done is closed and Err matches ErrLost.
func (g *Registration) Deregister(ctx context.Context) error {
	g.once.Do(func() {
		close(g.stop)
		g.cancelLoop() // a refresh in flight ends at once
	})
	<-g.stopped
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil && !g.mayExist {
		return nil // deleted, expired or replaced: nothing of ours to delete
	}
	backoff := 50 * time.Millisecond
	adopted := 0
	maybeApplied := false // a delete was sent whose outcome is unknown
	for {
		_, err := g.r.kapi.Delete(ctx, g.key, &client.DeleteOptions{PrevValue: g.value})
		if errors.Is(err, client.Error{Code: client.ErrorCodeTestFailed}) {
			// Another value: a write of ours whose answer was lost may
			// have been applied. Delete it if it is still ours.
			found, rerr := g.readBackLocked(ctx)
			switch {
			case rerr == nil && found == readOurs && adopted < maxAttempts:
				adopted++
				continue
			case rerr == nil && found != readOurs:
				err = nil // gone or another's: nothing of ours to delete
			}
		}
		if err == nil || client.IsKeyNotFound(err) {
			g.lose("deregistered")
			g.mayExist = false
			return nil
		}
		if errors.Is(err, client.ErrOutcomeUnknown) || (ctx.Err() != nil && errors.Is(err, ctx.Err())) {
			maybeApplied = true
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			g.lose("deregistered, but the delete did not complete; the instance expires by its TTL")
			g.mayExist = true // a later Deregister tries again
			if maybeApplied {
				return unknownOutcome("the delete", ctx.Err())
			}
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// Filter selects instances in Instances and Watch.
type Filter func(Instance) bool

// Tag keeps the instances that carry tag.
func Tag(tag string) Filter {
	return func(in Instance) bool { return slices.Contains(in.Tags, tag) }
}

// PassingOnly keeps the instances whose status is Passing.
func PassingOnly() Filter {
	return func(in Instance) bool { return in.Status == Passing }
}

func match(in Instance, filters []Filter) bool {
	for _, f := range filters {
		if !f(in) {
			return false
		}
	}
	return true
}

// decode turns a stored node into an Instance; false for anything that
// is not an instance.
func decode(n *client.Node) (Instance, bool) {
	if n == nil || n.Dir {
		return Instance{}, false
	}
	var e envelope
	if err := json.Unmarshal([]byte(n.Value), &e); err != nil || e.Service == "" || e.ID == "" {
		return Instance{}, false
	}
	in := e.Instance
	in.CreateIndex, in.ModifyIndex = n.CreatedIndex, n.ModifiedIndex
	return in, true
}

func sortInstances(ins []Instance) {
	sort.Slice(ins, func(i, j int) bool { return ins[i].ID < ins[j].ID })
}

// Instances returns the instances of service that pass every filter,
// sorted by ID, read with a quorum read, and the etcd index of that read
// (X-Etcd-Index). A service with no instance gives an empty list.
func (r *Registry) Instances(ctx context.Context, service string, filters ...Filter) ([]Instance, uint64, error) {
	if !validName(service) {
		return nil, 0, fmt.Errorf("%w: service %q", ErrInvalid, service)
	}
	resp, err := r.kapi.Get(ctx, r.serviceKey(service), &client.GetOptions{Quorum: true, Sort: true})
	if err != nil {
		var e client.Error
		if client.IsKeyNotFound(err) && errors.As(err, &e) {
			return []Instance{}, e.Index, nil
		}
		return nil, 0, err
	}
	out := []Instance{}
	for _, n := range resp.Node.Nodes {
		if in, ok := decode(n); ok && match(in, filters) {
			out = append(out, in)
		}
	}
	sortInstances(out)
	return out, resp.Index, nil
}

// Services returns the names of the services with at least one instance,
// sorted, read with a quorum read.
func (r *Registry) Services(ctx context.Context) ([]string, error) {
	resp, err := r.kapi.Get(ctx, r.root, &client.GetOptions{Quorum: true, Recursive: true, Sort: true})
	if err != nil {
		if client.IsKeyNotFound(err) {
			return []string{}, nil
		}
		return nil, err
	}
	out := []string{}
	for _, s := range resp.Node.Nodes {
		if !s.Dir {
			continue
		}
		for _, n := range s.Nodes {
			if _, ok := decode(n); ok {
				out = append(out, s.Key[strings.LastIndexByte(s.Key, '/')+1:])
				break
			}
		}
	}
	return out, nil
}

// Watch returns an iterator over the instances of service that pass the
// filters: the first snapshot once the service is listed, then a new
// snapshot after every change that alters it (refreshes change nothing
// and wake nothing). Snapshots come from a cache of the service's
// directory (package cache: one quorum listing, then a watch from its
// index, with a new listing after the server's history window passed or
// a cluster change), so none is skipped for good; consecutive equal
// snapshots are not repeated. Errors talking to the cluster are retried,
// except those no retry can fix (as cache.Cache.Run describes them: an
// etcd error below 300 other than 100, such as the root below a file or
// unauthorized, the client's cluster-ID mismatch, a closed client), which
// Watch yields as (nil, err), as the client gave it, and ends. It yields
// (nil, ctx.Err()) and ends when ctx ends, and leaves no goroutine behind
// when the loop ends.
func (r *Registry) Watch(ctx context.Context, service string, filters ...Filter) iter.Seq2[[]Instance, error] {
	return func(yield func([]Instance, error) bool) {
		if !validName(service) {
			yield(nil, fmt.Errorf("%w: service %q", ErrInvalid, service))
			return
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		c := cache.New(r.kapi, r.serviceKey(service), cache.WithDepth(1))
		events := c.Events(wctx)
		var wg sync.WaitGroup
		var runErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			runErr = c.Run(wctx)
		}()
		defer wg.Wait()
		defer cancel()
		// failed yields why the cache stopped: ctx ended, or Run ended
		// on an error no retry can fix.
		failed := func() {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			wg.Wait()
			yield(nil, runErr)
		}
		if err := c.WaitSynced(wctx); err != nil {
			failed()
			return
		}
		snapshot := func() []Instance {
			out := []Instance{}
			for _, n := range c.List("") {
				if in, ok := decode(n); ok && match(in, filters) {
					out = append(out, in)
				}
			}
			sortInstances(out)
			return out
		}
		last := snapshot()
		if !yield(last, nil) {
			return
		}
		for _, err := range events {
			if err != nil {
				failed()
				return
			}
			cur := snapshot()
			if sameSnapshot(last, cur) {
				continue
			}
			last = cur
			if !yield(cur, nil) {
				return
			}
		}
	}
}

// sameSnapshot compares two snapshots by what a watcher cares about:
// everything but ModifyIndex (which refreshes move).
func sameSnapshot(a, b []Instance) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ID != y.ID || x.Service != y.Service || x.Addr != y.Addr || x.Status != y.Status ||
			x.Output != y.Output || x.CreateIndex != y.CreateIndex ||
			!slices.Equal(x.Tags, y.Tags) || !mapsEqual(x.Meta, y.Meta) {
			return false
		}
	}
	return true
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
