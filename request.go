package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// request is one logical request to the cluster; do sends it to one
// endpoint after another until one answers.
type request struct {
	method string
	// path is the unescaped path below the endpoint, like "/v2/keys/a b".
	path string
	// rawPath is path escaped for the wire; "" lets net/url escape path.
	rawPath string
	// query is the encoded query string, without "?".
	query string
	// body and contentType are sent as they are.
	body        []byte
	contentType string
	// kind tells the selector what the request is.
	kind RequestKind
	// replayable means the request may be resent to another member even
	// after it may have reached a server: reads, watches, and writes whose
	// repetition cannot change their effect. A request that is not
	// replayable fails with an *OutcomeUnknownError instead.
	replayable bool
	// sensitive marks a body that holds a secret and is never printed.
	sensitive bool
}

// response is an answer with a 1xx-4xx status; the caller must close Body.
type response struct {
	*http.Response
	// endpoint is the endpoint that answered.
	endpoint string
}

// errorBodyLimit bounds how much of a 5xx body is read to describe it.
const errorBodyLimit = 64 << 10

// do sends r to the cluster. It tries each endpoint at most once, in the
// order the selector chooses, and returns the first answer whose status is
// below 500. A request that is not replayable is not resent once it may
// have reached a server. When ctx ends, do returns exactly ctx.Err().
func (c *httpClusterClient) do(ctx context.Context, r *request) (*response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.closed.Load() {
		return nil, ErrClosed
	}
	set := c.eps.Load()
	n := len(set.list)
	tried := make([]bool, n)
	candidates := make([]Endpoint, 0, n)
	var errs []error
	for attempt := 0; attempt < n; attempt++ {
		candidates = candidates[:0]
		for i, e := range set.list {
			if !tried[i] {
				candidates = append(candidates, e.view)
			}
		}
		info := RequestInfo{Kind: r.kind, Attempt: attempt}
		pick := c.selector.Select(info, candidates)
		if pick < 0 || pick >= len(candidates) {
			pick = 0
		}
		ep := set.list[candidates[pick].Index]
		tried[ep.view.Index] = true

		var (
			resp *http.Response
			sent bool
			err  error
		)
		start := time.Now()
		if !r.replayable && !ep.verified.Load() && c.clusterID.Load() != nil {
			// Before a write that cannot be resent goes to an endpoint
			// not yet seen answering for this cluster, make sure it is
			// a member of it: a write to another cluster cannot be undone.
			err = c.verify(ctx, ep)
		}
		if err == nil {
			resp, sent, err = c.attempt(ctx, ep, r)
			if err == nil {
				err = c.checkResponse(ep, resp)
			}
		}
		c.logAttempt(ctx, ep, r, resp, err, time.Since(start))
		if err == nil {
			c.observe(ep, info, nil)
			return &response{Response: resp, endpoint: ep.raw}, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if c.closed.Load() {
			return nil, ErrClosed
		}
		c.observe(ep, info, err)
		if sent && !r.replayable && !errors.Is(err, ErrClusterIDMismatch) {
			return nil, &OutcomeUnknownError{Endpoint: ep.raw, Err: err}
		}
		errs = append(errs, &EndpointError{Endpoint: ep.raw, Err: err})
	}
	return nil, &ClusterError{Errors: errs}
}

func (c *httpClusterClient) observe(ep *endpoint, info RequestInfo, err error) {
	if c.observer != nil {
		c.observer.Observe(Outcome{Endpoint: ep.view, Info: info, Err: err})
	}
	if err != nil && ep.view.Leader && c.wantLeader {
		c.refreshLeaderAsync()
	}
}

// verify checks that ep answers for the cluster this client knows.
func (c *httpClusterClient) verify(ctx context.Context, ep *endpoint) error {
	resp, _, err := c.attempt(ctx, ep, &request{method: http.MethodGet, path: "/v2/members", kind: KindCluster, replayable: true})
	if err != nil {
		return err
	}
	if err := c.checkResponse(ep, resp); err != nil {
		return err
	}
	resp.Body.Close()
	if !ep.verified.Load() {
		return fmt.Errorf("client: endpoint %s sent no cluster ID; it is probably not an etcd member", ep.raw)
	}
	return nil
}

// checkResponse checks the cluster ID and the status of an answer. It
// closes the body of an answer it rejects.
func (c *httpClusterClient) checkResponse(ep *endpoint, resp *http.Response) error {
	if id := resp.Header.Get("X-Etcd-Cluster-Id"); id != "" {
		known := c.clusterID.Load()
		if known == nil && c.clusterID.CompareAndSwap(nil, &id) {
			known = &id
		} else if known == nil {
			known = c.clusterID.Load()
		}
		if *known != id {
			resp.Body.Close()
			return &ClusterIDMismatchError{Endpoint: ep.raw, Want: *known, Got: id}
		}
		ep.verified.Store(true)
	}
	if t := resp.Header.Get("X-Raft-Term"); t != "" {
		if term, err := strconv.ParseUint(t, 10, 64); err == nil {
			c.noteTerm(term)
		}
	}
	if resp.StatusCode >= 500 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
		resp.Body.Close()
		return decodeErrorBody(resp.StatusCode, b)
	}
	return nil
}

// decodeErrorBody turns an error answer into an Error when the body is an
// etcd key error, and into an *HTTPError otherwise.
func decodeErrorBody(status int, b []byte) error {
	var v struct {
		Code    *int   `json:"errorCode"`
		Message string `json:"message"`
		Cause   string `json:"cause"`
		Index   uint64 `json:"index"`
	}
	if err := json.Unmarshal(b, &v); err == nil {
		if v.Code != nil {
			return Error{Code: *v.Code, Message: v.Message, Cause: v.Cause, Index: v.Index}
		}
		if v.Message != "" {
			return &HTTPError{StatusCode: status, Message: v.Message}
		}
	}
	msg := string(bytes.TrimSpace(b))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return &HTTPError{StatusCode: status, Message: msg}
}

// attempt sends r to one endpoint, following redirects, and returns the
// answer with its body capped. sent reports whether the request may have
// reached a server.
func (c *httpClusterClient) attempt(ctx context.Context, ep *endpoint, r *request) (resp *http.Response, sent bool, err error) {
	actx, cancel := context.WithCancelCause(ctx)
	stopClose := context.AfterFunc(c.closeCtx, func() { cancel(ErrClosed) })
	var timer *time.Timer
	if c.headerTimeout > 0 {
		timeout := c.headerTimeout
		timer = time.AfterFunc(timeout, func() { cancel(&AttemptTimeoutError{After: timeout}) })
	}
	release := func() {
		if timer != nil {
			timer.Stop()
		}
		stopClose()
		cancel(nil)
	}
	var wrote atomic.Bool
	if !r.replayable {
		actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
			WroteRequest: func(info httptrace.WroteRequestInfo) {
				if info.Err == nil {
					wrote.Store(true)
				}
			},
		})
	}

	u := &url.URL{
		Scheme:   ep.url.Scheme,
		Host:     ep.url.Host,
		Path:     ep.url.Path + r.path,
		RawQuery: r.query,
	}
	if r.rawPath != "" {
		u.RawPath = ep.url.EscapedPath() + r.rawPath
	}
	for via := 1; ; via++ {
		req := c.newHTTPRequest(actx, r, u)
		resp, err = c.transport.RoundTrip(req)
		if err != nil {
			err = attemptError(actx, err)
			release()
			return nil, wrote.Load(), err
		}
		if resp.StatusCode < 300 || resp.StatusCode >= 400 {
			break
		}
		// A redirect: the only one a current etcd sends is Go's path
		// cleaning, with a relative Location; resolve and follow it.
		loc, lerr := resp.Location()
		resp.Body.Close()
		if lerr != nil {
			release()
			return nil, wrote.Load(), fmt.Errorf("client: redirect (HTTP %d) without a usable Location: %w", resp.StatusCode, lerr)
		}
		if cerr := c.checkRedirect(via); cerr != nil {
			release()
			return nil, wrote.Load(), cerr
		}
		if via >= maxRedirects {
			release()
			return nil, wrote.Load(), ErrTooManyRedirects
		}
		u = loc
	}
	if timer != nil && !timer.Stop() {
		// The timeout fired just as the headers came.
		resp.Body.Close()
		release()
		return nil, true, attemptError(actx, context.Canceled)
	}
	resp.Body = &cappedBody{rc: resp.Body, remaining: c.maxBody, limit: c.maxBody, release: release}
	return resp, true, nil
}

// attemptError replaces the context error of a request cancelled by the
// per-attempt timeout or by Close with that cause.
func attemptError(actx context.Context, err error) error {
	if cause := context.Cause(actx); cause != nil && cause != context.Canceled && cause != context.DeadlineExceeded {
		var te *AttemptTimeoutError
		if errors.As(cause, &te) || errors.Is(cause, ErrClosed) {
			return cause
		}
	}
	return err
}

func (c *httpClusterClient) newHTTPRequest(ctx context.Context, r *request, u *url.URL) *http.Request {
	h := make(http.Header, 2)
	if r.contentType != "" {
		h["Content-Type"] = []string{r.contentType}
	}
	if c.authHeader != "" {
		h["Authorization"] = []string{c.authHeader}
	}
	req := &http.Request{
		Method:     r.method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       u.Host,
	}
	if len(r.body) > 0 {
		body := r.body
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	printcURL(r, u)
	return req.WithContext(ctx)
}

// cappedBody limits a response body to Config.MaxResponseBytes and
// releases the attempt's resources when closed.
type cappedBody struct {
	rc        io.ReadCloser
	remaining int64 // negative: no cap
	limit     int64
	release   func()
	closed    bool
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.remaining < 0 {
		return b.rc.Read(p)
	}
	if b.remaining == 0 {
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, b.limit)
		}
		return 0, err
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.rc.Read(p)
	b.remaining -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.rc.Close()
	b.release()
	return err
}

// drainLimit is how much of a body finishBody reads past what the caller
// decoded (a JSON decoder leaves the final newline unread).
const drainLimit = 4 << 10

// finishBody reads what is left of a body whose content has been decoded,
// up to drainLimit, and closes it, so that the connection is reused. Use
// it only on a body whose end is near: never on an unfinished watch.
func finishBody(body io.ReadCloser) error {
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	return body.Close()
}

func (c *httpClusterClient) logAttempt(ctx context.Context, ep *endpoint, r *request, resp *http.Response, err error, d time.Duration) {
	if c.logger == nil || !c.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{
		slog.String("endpoint", ep.raw),
		slog.String("method", r.method),
		slog.String("path", r.path),
		slog.Duration("duration", d),
	}
	if resp != nil {
		attrs = append(attrs, slog.Int("status", resp.StatusCode))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.logger.LogAttrs(ctx, slog.LevelDebug, "etcd attempt", attrs...)
}

// probe checks that an endpoint answers (GET /version within the
// per-attempt timeout, or one second when there is none) and reports the
// outcome to the selector as an attempt would, so that a failed probe moves
// sticky requests away from the endpoint. It is used to notice a hung
// member under a long-poll watch, which no request would otherwise notice.
func (c *httpClusterClient) probe(ctx context.Context, url string) error {
	set := c.eps.Load()
	var ep *endpoint
	for _, e := range set.list {
		if e.raw == url {
			ep = e
		}
	}
	if ep == nil {
		return fmt.Errorf("%w: %s is not an endpoint of the client", ErrInvalidEndpoint, url)
	}
	if c.headerTimeout <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Second)
		defer cancel()
	}
	r := &request{method: http.MethodGet, path: "/version", kind: KindCluster, replayable: true}
	resp, _, err := c.attempt(ctx, ep, r)
	if err == nil {
		err = c.checkResponse(ep, resp)
		if err == nil {
			err = finishBody(resp.Body)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.observe(ep, RequestInfo{Kind: KindCluster}, err)
	return err
}
