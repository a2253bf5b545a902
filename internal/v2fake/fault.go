package v2fake

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// Fault decides what a request matched by a rule gets. next answers as the
// member would (with no fault); a fault may call it, wrap it or ignore it.
// The request's context ends when the client goes away or the server is
// closed.
type Fault func(w http.ResponseWriter, r *http.Request, next http.Handler)

// Rule is a fault hook installed by On.
type Rule struct {
	s     *Server
	route route
	fault Fault
	left  int // requests left; -1: unlimited
}

type route struct {
	method string // "" any
	path   string // "" any
	prefix bool
}

// parseRoute reads "METHOD /path", "/path" or "*"; a path ending in "*"
// matches by prefix.
func parseRoute(s string) route {
	var rt route
	if m, p, ok := strings.Cut(s, " "); ok {
		rt.method, s = m, p
	}
	if s == "*" {
		return rt
	}
	if strings.HasSuffix(s, "*") {
		rt.prefix = true
		s = strings.TrimSuffix(s, "*")
	}
	rt.path = s
	return rt
}

func (rt route) match(method, p string) bool {
	if rt.method != "" && rt.method != method {
		return false
	}
	switch {
	case rt.path == "" && !rt.prefix:
		return true
	case rt.prefix:
		return strings.HasPrefix(p, rt.path)
	}
	return p == rt.path
}

// On makes the requests matching route get fault, until the rule is
// removed or has been used Times times. route is "METHOD /path", "/path"
// (any method) or "*" (every request); a path ending in "*" matches by
// prefix. Of the rules that match a request, the one installed last
// applies, so a later rule overrides an earlier one.
func (s *Server) On(route string, f Fault) *Rule {
	r := &Rule{s: s, route: parseRoute(route), fault: f, left: -1}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, r)
	return r
}

// Times limits the rule to the next n matching requests; call it before
// such requests can arrive.
func (r *Rule) Times(n int) *Rule {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.left = n
	return r
}

// Remove uninstalls the rule; requests it already holds are not released.
func (r *Rule) Remove() {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	for i, x := range r.s.rules {
		if x == r {
			r.s.rules = append(r.s.rules[:i:i], r.s.rules[i+1:]...)
			return
		}
	}
}

// ClearRules uninstalls every rule.
func (s *Server) ClearRules() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// ruleFor returns the rule for r and uses it up once; s.mu is held.
func (s *Server) ruleFor(r *http.Request) *Rule {
	for i := len(s.rules) - 1; i >= 0; i-- {
		x := s.rules[i]
		if x.left != 0 && x.route.match(r.Method, r.URL.Path) {
			if x.left > 0 {
				x.left--
			}
			return x
		}
	}
	return nil
}

// Respond answers status with a JSON body (Content-Type application/json).
func Respond(status int, body string) Fault {
	return RespondHeader(status, nil, body)
}

// RespondHeader answers status with the given headers and body; the
// Content-Type is application/json unless h sets it.
func RespondHeader(status int, h http.Header, body string) Fault {
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		w.Header().Set("Content-Type", "application/json")
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// Func answers with h, ignoring the member.
func Func(h http.HandlerFunc) Fault {
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) { h(w, r) }
}

// Delay waits d (or until the request ends) and then answers normally.
func Delay(d time.Duration) Fault {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		next.ServeHTTP(w, r)
	}
}

// Hang never answers: the request is held until the client goes away or
// the server is closed.
func Hang() Fault { return HangUntil(nil) }

// HangUntil holds the request until release is closed (then it is answered
// normally), the client goes away or the server is closed.
func HangUntil(release <-chan struct{}) Fault {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		select {
		case <-release:
			next.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}
}

// HeadersThenHang sends the member's headers of a 200 answer with
// X-Etcd-Index index (as a registered watch does) and then holds the
// request as Hang does.
func HeadersThenHang(index uint64) Fault {
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Etcd-Index", uitoa(index))
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}

// Drop closes the connection without answering (after reading the
// request), so the client cannot know whether a write was applied.
func Drop() Fault {
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		panic(http.ErrAbortHandler)
	}
}

// CloseAfterHeaders sends the headers the member would send and then
// closes the connection, before any byte of the body.
func CloseAfterHeaders() Fault { return CloseMidBody(0) }

// CloseMidBody sends the member's headers and the first n bytes of its
// body, then closes the connection. The member's whole answer is made
// first, so this is not for watches (nor are StallMidBody and Body).
func CloseMidBody(n int) Fault { return midBody(n, false, false) }

// CloseMidSizedBody is CloseMidBody with headers that announce the whole
// body's Content-Length, so that the client sees a body shorter than
// announced rather than a chunked body without its end.
func CloseMidSizedBody(n int) Fault { return midBody(n, true, false) }

// StallMidBody sends the member's headers and the first n bytes of its
// body, then sends nothing more until the request ends (the client goes
// away or the server is closed).
func StallMidBody(n int) Fault { return midBody(n, false, true) }

// StallMidSizedBody is StallMidBody with headers that announce the whole
// body's Content-Length.
func StallMidSizedBody(n int) Fault { return midBody(n, true, true) }

// midBody sends the member's headers (with the whole body's length if
// sized, else chunked) and the first n bytes of its body, then stalls
// until the request ends or closes the connection.
func midBody(n int, sized, stall bool) Fault {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		b := rec.Body.Bytes()
		w.Header().Del("Content-Length")
		if sized {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		}
		w.WriteHeader(rec.Code)
		if n < len(b) {
			b = b[:n]
		}
		w.Write(b)
		w.(http.Flusher).Flush()
		if stall {
			<-r.Context().Done()
			return
		}
		panic(http.ErrAbortHandler)
	}
}

// Redirect answers status (a 3xx) with Location set to base followed by
// the request's path and query.
func Redirect(status int, base string) Fault {
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		loc := strings.TrimSuffix(base, "/") + r.URL.Path
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(status)
	}
}

// NoLeader answers as an etcd 3.5 member without a leader answers a write
// that times out: 500 with error 300.
func NoLeader() Fault {
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		writeKeyError(w, newError(300, "etcdserver: request timed out", 0))
	}
}

// Body replaces the member's body with body, keeping its status and
// headers.
func Body(body string) Fault {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		io.Copy(w, bytes.NewBufferString(body))
	}
}

func uitoa(i uint64) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return string(b[n:])
}
