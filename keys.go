package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// defaultV2KeysPrefix is the path of the keys API on an etcd server.
const defaultV2KeysPrefix = "/v2/keys"

// formContentType is the content type of PUT and POST bodies; without it
// the server ignores the body.
const formContentType = "application/x-www-form-urlencoded"

// KeysAPI reads, writes and watches keys of the etcd v2 store.
//
// Every method canonicalizes its key: empty and "." segments are dropped,
// ".." removes the segment before it (never going above the root), and a
// trailing slash is kept, because the server's permission checks look at
// it. Each segment is percent-escaped, so any byte sequence except "/" can
// be part of a key name.
//
// Errors answered by the server are returned as an Error value, unwrapped,
// so err.(client.Error) works; errors.Is(err, client.Error{Code: c})
// matches by code also when the Error is wrapped (in an
// *OutcomeUnknownError or a *ClusterError). What the server rejects on its
// own (a write to the root key: 107; an invalid PrevExist: 209; a refresh
// with a value: 211, or without a TTL: 212) is sent, and the server's Error
// returned. Only requests the server would silently misread (a TTL below
// one second, a refresh of a key that must not exist) are rejected before
// anything is sent, with an *InvalidRequestError, which matches
// ErrInvalidRequest.
type KeysAPI interface {
	// Get retrieves a set of Nodes from etcd
	Get(ctx context.Context, key string, opts *GetOptions) (*Response, error)

	// Set assigns a new value to a Node identified by a given key. The caller
	// may define a set of conditions in the SetOptions. If SetOptions.Dir=true
	// then value is ignored.
	Set(ctx context.Context, key, value string, opts *SetOptions) (*Response, error)

	// Delete removes a Node identified by the given key, optionally destroying
	// all of its children as well. The caller may define a set of required
	// conditions in an DeleteOptions object.
	Delete(ctx context.Context, key string, opts *DeleteOptions) (*Response, error)

	// Create is an alias for Set w/ PrevExist=false
	Create(ctx context.Context, key, value string) (*Response, error)

	// CreateInOrder is used to atomically create in-order keys within the given directory.
	CreateInOrder(ctx context.Context, dir, value string, opts *CreateInOrderOptions) (*Response, error)

	// Update is an alias for Set w/ PrevExist=true
	Update(ctx context.Context, key, value string) (*Response, error)

	// Watcher builds a new Watcher targeted at a specific Node identified
	// by the given key. The Watcher may be configured at creation time
	// through a WatcherOptions object. The returned Watcher is designed
	// to emit events that happen to a Node, and optionally to its children.
	Watcher(key string, opts *WatcherOptions) Watcher
}

// GetOptions are the options of KeysAPI.Get.
type GetOptions struct {
	// Recursive defines whether or not all children of the Node
	// should be returned.
	Recursive bool

	// Sort instructs the server whether or not to sort the Nodes.
	// If true, the Nodes are sorted alphabetically by key in
	// ascending order (A to z). If false (default), the Nodes will
	// not be sorted and the ordering used should not be considered
	// predictable.
	Sort bool

	// Quorum specifies whether it gets the latest committed value that
	// has been applied in quorum of members, which ensures external
	// consistency (or linearizability).
	Quorum bool
}

// SetOptions are the options of KeysAPI.Set.
type SetOptions struct {
	// PrevValue specifies what the current value of the Node must
	// be in order for the Set operation to succeed.
	//
	// Leaving this field empty means that the caller wishes to
	// ignore the current value of the Node. This cannot be used
	// to compare the Node's current value to an empty string.
	//
	// PrevValue is ignored if Dir=true
	PrevValue string

	// PrevIndex indicates what the current ModifiedIndex of the
	// Node must be in order for the Set operation to succeed.
	//
	// If PrevIndex is set to 0 (default), no comparison is made.
	PrevIndex uint64

	// PrevExist specifies whether the Node must currently exist
	// (PrevExist) or not (PrevNoExist). If the caller does not
	// care about existence, set PrevExist to PrevIgnore, or simply
	// leave it unset.
	PrevExist PrevExistType

	// TTL defines a period of time after-which the Node should
	// expire and no longer exist. Values <= 0 are ignored. Given
	// that the zero-value is ignored, TTL cannot be used to set
	// a TTL of 0.
	//
	// The server counts whole seconds: a TTL is sent truncated to
	// seconds, and a positive TTL below one second is rejected (it would
	// be sent as 0, which expires the key at once).
	TTL time.Duration

	// Refresh set to true means a TTL value can be updated
	// without firing a watch or changing the node value. A
	// value must not be provided when refreshing a key.
	//
	// A refresh needs a TTL and an empty value; otherwise the server
	// answers with an Error (212 without a TTL, 211 with a value). A
	// refresh with PrevExist set to PrevNoExist fails with an
	// *InvalidRequestError before anything is sent (the server would
	// create an empty key). It is sent with prevExist=true unless
	// PrevExist is set, so that the node is updated in place (keeping its
	// CreatedIndex) instead of being recreated.
	Refresh bool

	// Dir specifies whether or not this Node should be created as a directory.
	Dir bool

	// NoValueOnSuccess specifies whether the response contains the current value of the Node.
	// If set, the response will only contain the current value when the request fails.
	NoValueOnSuccess bool
}

// CreateInOrderOptions are the options of KeysAPI.CreateInOrder.
type CreateInOrderOptions struct {
	// TTL defines a period of time after-which the Node should
	// expire and no longer exist. Values <= 0 are ignored. Given
	// that the zero-value is ignored, TTL cannot be used to set
	// a TTL of 0. A positive TTL below one second is rejected, as for
	// SetOptions.TTL.
	TTL time.Duration
}

// DeleteOptions are the options of KeysAPI.Delete.
type DeleteOptions struct {
	// PrevValue specifies what the current value of the Node must
	// be in order for the Delete operation to succeed.
	//
	// Leaving this field empty means that the caller wishes to
	// ignore the current value of the Node. This cannot be used
	// to compare the Node's current value to an empty string.
	PrevValue string

	// PrevIndex indicates what the current ModifiedIndex of the
	// Node must be in order for the Delete operation to succeed.
	//
	// If PrevIndex is set to 0 (default), no comparison is made.
	PrevIndex uint64

	// Recursive defines whether or not all children of the Node
	// should be deleted. If set to true, all children of the Node
	// identified by the given key will be deleted. If left unset
	// or explicitly set to false, only a single Node will be
	// deleted.
	Recursive bool

	// Dir specifies whether or not this Node should be removed as a directory.
	Dir bool
}

// ErrInvalidRequest is matched (errors.Is) by every *InvalidRequestError:
// a KeysAPI call whose arguments the server would misread, rejected before
// anything was sent.
var ErrInvalidRequest = errors.New("client: invalid request")

// InvalidRequestError tells which argument of a KeysAPI call was rejected
// and why. Nothing was sent to the cluster.
type InvalidRequestError struct {
	// Op is the KeysAPI method: "Set", "Delete", "CreateInOrder", ...
	Op string
	// Field is the rejected argument or option field, such as "key",
	// "value", "SetOptions.TTL" or "SetOptions.PrevExist".
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// Error names the call, the argument and the reason.
func (e *InvalidRequestError) Error() string {
	return "client: invalid " + e.Op + " request: " + e.Field + ": " + e.Reason
}

// Is reports whether target is ErrInvalidRequest.
func (e *InvalidRequestError) Is(target error) bool { return target == ErrInvalidRequest }

// NewKeysAPI builds a KeysAPI that interacts with etcd's key-value API over HTTP.
func NewKeysAPI(c Client) KeysAPI {
	return NewKeysAPIWithPrefix(c, defaultV2KeysPrefix)
}

// NewKeysAPIWithPrefix acts like NewKeysAPI, but allows the caller to
// provide a custom base URL path. This should only be used in very rare
// cases. The prefix is canonicalized like a key (without its trailing
// slash); an empty prefix means the root of the endpoint's path.
func NewKeysAPIWithPrefix(c Client, p string) KeysAPI {
	segs := canonicalSegments(p)
	path, raw := joinSegments(segs)
	return &httpKeysAPI{client: c, prefix: path, rawPrefix: raw}
}

// httpKeysAPI is the KeysAPI.
type httpKeysAPI struct {
	client Client
	// prefix is the canonical unescaped prefix without a trailing slash
	// ("" for the root); rawPrefix is it escaped.
	prefix, rawPrefix string
}

// keyPath is a canonical key path.
type keyPath struct {
	path, rawPath string
	// uri, when made by keyURI, is the escaped path and the query in one
	// string, sent as is (see request.uri).
	uri string
}

// canonicalSegments splits key into its non-empty segments, resolving
// "." and "..".
func canonicalSegments(key string) []string {
	var segs []string
	for len(key) > 0 {
		i := strings.IndexByte(key, '/')
		var s string
		if i < 0 {
			s, key = key, ""
		} else {
			s, key = key[:i], key[i+1:]
		}
		switch s {
		case "", ".":
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		default:
			segs = append(segs, s)
		}
	}
	return segs
}

// joinSegments returns "/s1/s2..." unescaped and escaped.
func joinSegments(segs []string) (path, raw string) {
	var p, r strings.Builder
	for _, s := range segs {
		p.WriteByte('/')
		p.WriteString(s)
		r.WriteByte('/')
		r.WriteString(url.PathEscape(s))
	}
	return p.String(), r.String()
}

// keyURL returns the canonical path of key below the API's prefix.
func (k *httpKeysAPI) keyURL(key string) keyPath {
	if kp, ok := k.plainKeyURL(key); ok {
		return kp
	}
	return k.fullKeyURL(key)
}

// keyURI is keyURL with the request URI of key and query made too: one
// allocation for the common key, which the path and the raw path share.
func (k *httpKeysAPI) keyURI(key, query string) keyPath {
	kp, ok := k.plainKeyPath(key, query)
	switch {
	case query == "":
		if !ok {
			kp = k.fullKeyURL(key)
		}
		kp.uri = kp.rawPath
	case !ok:
		kp = k.fullKeyURL(key)
		kp.uri = kp.rawPath + "?" + query
	}
	return kp
}

// fullKeyURL canonicalizes and escapes any key.
func (k *httpKeysAPI) fullKeyURL(key string) keyPath {
	segs := canonicalSegments(key)
	path, raw := joinSegments(segs)
	kp := keyPath{path: k.prefix + path, rawPath: k.rawPrefix + raw}
	if strings.HasSuffix(key, "/") || kp.path == "" {
		// Keep the caller's trailing slash: auth matches on it.
		kp.path += "/"
		kp.rawPath += "/"
	}
	return kp
}

// plainKeyURL is keyURL for the common key that is already canonical and
// needs no escaping ("/registry/nodes/n-1", "jobs/"): letters, digits and
// "-_.~" in segments that are neither empty nor dot segments. It reports
// false for any other key, which keyURL then takes apart in full.
func (k *httpKeysAPI) plainKeyURL(key string) (keyPath, bool) {
	return k.plainKeyPath(key, "")
}

// plainKeyPath is plainKeyURL, and with a query also keyURI's uri: path
// is then the start of it.
func (k *httpKeysAPI) plainKeyPath(key, query string) (keyPath, bool) {
	if key == "" || key == "/" || k.rawPrefix != k.prefix {
		return keyPath{}, false
	}
	segStart := 0
	if key[0] == '/' {
		segStart = 1
	}
	for i := segStart; i <= len(key); i++ {
		if i < len(key) && key[i] != '/' {
			if !plainKeyByte(key[i]) {
				return keyPath{}, false
			}
			continue
		}
		seg := key[segStart:i]
		if seg == "" && i < len(key) || seg == "." || seg == ".." {
			return keyPath{}, false // "//", or a dot segment
		}
		segStart = i + 1
	}
	sep := ""
	if key[0] != '/' {
		sep = "/"
	}
	if query == "" {
		path := k.prefix + sep + key
		return keyPath{path: path, rawPath: path}, true
	}
	uri := k.prefix + sep + key + "?" + query
	path := uri[:len(uri)-len(query)-1]
	return keyPath{path: path, rawPath: path, uri: uri}, true
}

// plainKeyByte reports whether c stands for itself in a URL path.
func plainKeyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// ttlSeconds checks a TTL option and returns the ttl parameter, "" for none.
func ttlSeconds(op, field string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", nil
	}
	if ttl < time.Second {
		return "", &InvalidRequestError{Op: op, Field: field, Reason: "a TTL below one second would be sent as 0 seconds, which expires the key at once"}
	}
	return strconv.FormatInt(int64(ttl/time.Second), 10), nil
}

// Get implements KeysAPI.
func (k *httpKeysAPI) Get(ctx context.Context, key string, opts *GetOptions) (*Response, error) {
	// The query names only the options set (README, compatibility
	// notes).
	var o GetOptions
	if opts != nil {
		o = *opts
	}
	kind := KindRead
	if o.Quorum {
		kind = KindQuorumRead
	}
	query := getQueries[b2i(o.Quorum)<<2|b2i(o.Recursive)<<1|b2i(o.Sort)]
	kp := k.keyURI(key, query)
	return k.roundTrip(ctx, &request{
		method: http.MethodGet, path: kp.path, rawPath: kp.rawPath, uri: kp.uri,
		query: query, kind: kind, replayable: true,
	})
}

// getQueries are the query strings of Get, indexed by quorum<<2 |
// recursive<<1 | sorted: the options set, in that order.
var getQueries = [8]string{
	"", "sorted=true", "recursive=true", "recursive=true&sorted=true",
	"quorum=true", "quorum=true&sorted=true", "quorum=true&recursive=true", "quorum=true&recursive=true&sorted=true",
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Set implements KeysAPI.
func (k *httpKeysAPI) Set(ctx context.Context, key, value string, opts *SetOptions) (*Response, error) {
	return k.set(ctx, "Set", key, value, opts)
}

// Create implements KeysAPI.
func (k *httpKeysAPI) Create(ctx context.Context, key, value string) (*Response, error) {
	return k.set(ctx, "Create", key, value, &SetOptions{PrevExist: PrevNoExist})
}

// Update implements KeysAPI.
func (k *httpKeysAPI) Update(ctx context.Context, key, value string) (*Response, error) {
	return k.set(ctx, "Update", key, value, &SetOptions{PrevExist: PrevExist})
}

func (k *httpKeysAPI) set(ctx context.Context, op, key, value string, opts *SetOptions) (*Response, error) {
	var o SetOptions
	if opts != nil {
		o = *opts
	}
	kp := k.keyURL(key)
	// What the server rejects on its own (the root key: 107; a refresh
	// with a value: 211, or without a TTL: 212; a PrevExist that is no
	// boolean: 209) is sent, so that the caller gets the server's Error.
	// Only what it would silently misread is refused here.
	ttl, err := ttlSeconds(op, "SetOptions.TTL", o.TTL)
	if err != nil {
		return nil, err
	}
	if o.Refresh && o.PrevExist == PrevNoExist {
		// The server would create an empty key instead of refreshing one.
		return nil, &InvalidRequestError{Op: op, Field: "SetOptions.PrevExist", Reason: "a refresh needs an existing node"}
	}

	q := url.Values{}
	form := url.Values{}
	if o.Dir {
		q.Set("dir", "true")
	} else {
		if o.PrevValue != "" {
			q.Set("prevValue", o.PrevValue)
		}
		form.Set("value", value)
	}
	if o.PrevIndex != 0 {
		q.Set("prevIndex", strconv.FormatUint(o.PrevIndex, 10))
	}
	prevExist := o.PrevExist
	if o.Refresh && prevExist == PrevIgnore {
		prevExist = PrevExist
	}
	if prevExist != PrevIgnore {
		q.Set("prevExist", string(prevExist))
	}
	if ttl != "" {
		form.Set("ttl", ttl)
	}
	if o.Refresh {
		form.Set("refresh", "true")
	}
	if o.NoValueOnSuccess {
		q.Set("noValueOnSuccess", "true")
	}
	return k.roundTrip(ctx, &request{
		method: http.MethodPut, path: kp.path, rawPath: kp.rawPath,
		query: q.Encode(), body: []byte(form.Encode()), contentType: formContentType,
		kind:      KindWrite,
		overwrite: o.PrevExist == PrevIgnore && o.PrevValue == "" && o.PrevIndex == 0 && !o.Dir && !o.Refresh,
	})
}

// CreateInOrder implements KeysAPI.
func (k *httpKeysAPI) CreateInOrder(ctx context.Context, dir, value string, opts *CreateInOrderOptions) (*Response, error) {
	kp := k.keyURL(dir)
	form := url.Values{}
	form.Set("value", value)
	if opts != nil {
		ttl, err := ttlSeconds("CreateInOrder", "CreateInOrderOptions.TTL", opts.TTL)
		if err != nil {
			return nil, err
		}
		if ttl != "" {
			form.Set("ttl", ttl)
		}
	}
	return k.roundTrip(ctx, &request{
		method: http.MethodPost, path: kp.path, rawPath: kp.rawPath,
		body: []byte(form.Encode()), contentType: formContentType,
		kind: KindWrite, replayable: false,
	})
}

// Delete implements KeysAPI. Its conditions travel in the query string:
// the server ignores the body of a DELETE.
func (k *httpKeysAPI) Delete(ctx context.Context, key string, opts *DeleteOptions) (*Response, error) {
	kp := k.keyURL(key)
	q := url.Values{}
	if opts != nil {
		if opts.PrevValue != "" {
			q.Set("prevValue", opts.PrevValue)
		}
		if opts.PrevIndex != 0 {
			q.Set("prevIndex", strconv.FormatUint(opts.PrevIndex, 10))
		}
		if opts.Dir {
			q.Set("dir", "true")
		}
		if opts.Recursive {
			q.Set("recursive", "true")
		}
	}
	return k.roundTrip(ctx, &request{
		method: http.MethodDelete, path: kp.path, rawPath: kp.rawPath,
		query: q.Encode(), kind: KindWrite, replayable: false,
	})
}

// roundTrip sends r and decodes the answer.
func (k *httpKeysAPI) roundTrip(ctx context.Context, r *request) (*Response, error) {
	r.keys = true
	var resp *response
	var err error
	if c, ok := k.client.(*httpClusterClient); ok {
		resp, err = c.do(ctx, r) // a static call: r can stay on the caller's stack
	} else {
		rr := *r
		resp, err = k.client.do(ctx, &rr)
	}
	if err != nil {
		return nil, err
	}
	res, err := decodeKeysResponse(resp)
	var serverErr Error
	if err != nil && ctx.Err() != nil && !errors.As(err, &serverErr) {
		// The answer was cut off by ctx. An error the server answered
		// is the call's answer even when ctx ended after it came.
		return nil, ctx.Err()
	}
	return res, err
}
