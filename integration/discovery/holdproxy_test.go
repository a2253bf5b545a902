package discovery_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// exchange is one request that went through a holdProxy, and the
// member's answer to it.
type exchange struct {
	Method string
	Form   url.Values // the query and, for a form body, its fields
	Status int        // the member's HTTP status
	Held   bool       // the answer was held back (see holdProxy)
}

// refresh reports whether x is a TTL refresh (refresh=true).
func (x exchange) refresh() bool { return x.Form.Get("refresh") == "true" }

// holdProxy is an HTTP proxy on loopback in front of one member. It
// forwards every request at once, so that writes are applied as usual. The
// answer to a request matched by a rule given to hold is held back (each
// rule matches once): the proxy records the exchange, then answers only
// after the client gave up on the request (its connection closed), as a
// member whose answer is lost would, or after holdMax, when the test has
// failed anyway. It records every exchange, so a test waits for the ones
// it needs instead of sleeping.
type holdProxy struct {
	t   *testing.T
	tr  *http.Transport
	srv *httptest.Server

	mu     sync.Mutex
	target string
	cut    context.Context // ended by retarget: cuts what goes to target
	cutAll context.CancelFunc
	rules  []holdRule
	log    []exchange
	more   chan struct{} // closed and replaced when log grows
}

// holdMax bounds how long the proxy holds an answer back.
const holdMax = 20 * time.Second

func newHoldProxy(t *testing.T, target string) *holdProxy {
	p := &holdProxy{t: t, target: target, tr: &http.Transport{}, more: make(chan struct{})}
	p.cut, p.cutAll = context.WithCancel(context.Background())
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.mu.Lock()
		p.cutAll()
		p.mu.Unlock()
		p.srv.CloseClientConnections()
		p.srv.Close()
		p.tr.CloseIdleConnections()
	})
	return p
}

// retarget sends every request from now on to target, and cuts the
// requests still open to the old one (long polls): as if the member
// behind the endpoint were replaced.
func (p *holdProxy) retarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutAll()
	p.target = target
	p.cut, p.cutAll = context.WithCancel(context.Background())
}

// URL is the proxy's endpoint.
func (p *holdProxy) URL() string { return p.srv.URL }

// holdRule holds back the answer to the next request that match accepts,
// and calls then (when not nil) once the member has answered it.
type holdRule struct {
	match func(exchange) bool
	then  func()
}

// hold adds a holdRule.
func (p *holdProxy) hold(match func(exchange) bool, then func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, holdRule{match, then})
}

// waitFor returns the first exchange recorded at or after position from
// that ok accepts, and its position, failing the test if none comes within
// d.
func (p *holdProxy) waitFor(t *testing.T, from int, d time.Duration, what string, ok func(exchange) bool) (exchange, int) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for ; from < len(p.log); from++ {
			if ok(p.log[from]) {
				x := p.log[from]
				p.mu.Unlock()
				return x, from
			}
		}
		more := p.more
		p.mu.Unlock()
		select {
		case <-more:
		case <-deadline.C:
			t.Fatalf("no exchange through the proxy where %s within %v", what, d)
		}
	}
}

func (p *holdProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	x := exchange{Method: r.Method, Form: r.URL.Query()}
	if f, err := url.ParseQuery(string(body)); err == nil {
		for k, v := range f {
			x.Form[k] = append(x.Form[k], v...)
		}
	}
	p.mu.Lock()
	target, cut := p.target, p.cut
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(cut, cancel)()
	req, err := http.NewRequestWithContext(ctx, r.Method, target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := p.tr.RoundTrip(req)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	x.Status = resp.StatusCode
	if r.URL.Query().Get("wait") != "true" {
		// Not a long poll: the whole answer is there.
		b, _ := io.ReadAll(resp.Body)
		var then func()
		p.mu.Lock()
		for i, rule := range p.rules {
			if rule.match(x) {
				x.Held, then = true, rule.then
				p.rules = append(p.rules[:i], p.rules[i+1:]...)
				break
			}
		}
		p.record(x)
		if then != nil {
			then()
		}
		if x.Held {
			t := time.NewTimer(holdMax)
			select {
			case <-r.Context().Done():
			case <-t.C:
			}
			t.Stop()
			if r.Context().Err() != nil {
				return
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(b)
		return
	}
	p.mu.Lock()
	p.record(x)
	w.WriteHeader(resp.StatusCode)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	_, _ = io.Copy(flushWriter{w}, resp.Body)
}

// record appends x to the log (p.mu held; it unlocks it).
func (p *holdProxy) record(x exchange) {
	p.log = append(p.log, x)
	close(p.more)
	p.more = make(chan struct{})
	p.mu.Unlock()
}

// flushWriter flushes after every write, so a long poll's answer reaches
// the client when the member sends it.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// isWrite matches a status or registration write: a PUT that is not a
// refresh.
func isWrite(x exchange) bool { return x.Method == http.MethodPut && !x.refresh() }

// isRefreshOK matches a refresh the member applied.
func isRefreshOK(x exchange) bool {
	return x.Method == http.MethodPut && x.refresh() && x.Status == http.StatusOK
}

// isHeld matches an exchange whose answer was held back.
func isHeld(x exchange) bool { return x.Held }
