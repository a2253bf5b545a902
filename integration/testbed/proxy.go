package testbed

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP fault-injection proxy listening on 127.0.0.1 in front of
// one target address. Every accepted connection gets its own connection to
// the target and bytes are copied both ways. All methods are safe for
// concurrent use. Close stops every goroutine the proxy started.
//
// Faults:
//
//   - SetDelay(d): every chunk of bytes read from either side (one Read call,
//     at most 32 KiB) is written to the other side no earlier than d after
//     it was read; chunks keep their order. The delay in force when a chunk
//     is read applies to it. A request/response exchange therefore takes at
//     least 2*d longer: d before the server sees the request's first byte and
//     d before the client sees the response's first byte. It also delays
//     the target's greeting/close; it does not delay accepting or dialing.
//   - BlackHole(true): every existing connection and every connection
//     accepted while it is on goes silent for good: the proxy keeps reading
//     and discarding what the client sends, forwards nothing either way and
//     never closes the connection by itself. Connections accepted while it is
//     on are never dialed through to the target. BlackHole(false) only
//     affects connections accepted afterwards (bytes were dropped, so the
//     silenced ones could not carry a sane stream again): use ResetAll to get
//     rid of them.
//   - ResetAll(): every open connection is closed with SO_LINGER=0 on both the
//     client and target sides, so both peers see a TCP RST
//     ("connection reset by peer").
//   - Refuse(true): the listener is closed, so new connects fail with
//     "connection refused"; open connections are untouched. Refuse(false)
//     listens on the same port again.
//   - CutAfterHeaders(match, n): the answers to the next n requests whose
//     bytes contain match are cut right after their HTTP header block:
//     the client gets the status line and the headers, then a TCP RST
//     instead of the body (as when a member dies between a watch's headers
//     and its event). Cuts counts the answers cut so far.
type Proxy struct {
	tb     testing.TB
	target string
	addr   string // fixed 127.0.0.1:port
	// https marks the proxy of a TLS member's port, for URL.
	https bool

	delay atomic.Int64 // nanoseconds

	mu        sync.Mutex
	ln        net.Listener  // nil while refusing or closed
	lnDone    chan struct{} // closed when ln's accept loop has returned
	blackhole bool
	closed    bool
	conns     map[*proxyConn]struct{}
	drop      func(c net.Conn) bool // set by the cluster for peer isolation
	cutMatch  []byte                // CutAfterHeaders: requests to match
	cutLeft   int                   // CutAfterHeaders: requests still to cut
	cuts      int                   // answers cut so far

	wg sync.WaitGroup
}

type proxyConn struct {
	client net.Conn
	silent atomic.Bool
	done   chan struct{} // closed by close
	// cut is set when the answer now coming from the target is to be cut
	// after its header block (CutAfterHeaders).
	cut atomic.Bool

	mu       sync.Mutex
	upstream net.Conn // nil until dialed (and forever for silenced-at-accept)
	closed   bool
}

// setUpstream attaches the target connection unless pc was closed already.
func (pc *proxyConn) setUpstream(up net.Conn) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		return false
	}
	pc.upstream = up
	return true
}

// close closes both sides once; with rst, SO_LINGER=0 makes it a TCP RST.
func (pc *proxyConn) close(rst bool) {
	pc.mu.Lock()
	if pc.closed {
		pc.mu.Unlock()
		return
	}
	pc.closed = true
	close(pc.done)
	conns := []net.Conn{pc.client, pc.upstream}
	pc.mu.Unlock()
	for _, c := range conns {
		if c == nil {
			continue
		}
		if rst {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
		}
		c.Close()
	}
}

// NewProxy starts a Proxy on a free 127.0.0.1 port forwarding to target
// (host:port). tb.Cleanup closes it. Failure to listen is fatal to tb.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	p, err := newProxy(tb, target)
	if err != nil {
		tb.Fatalf("testbed: proxy for %s: %v", target, err)
	}
	tb.Cleanup(p.Close)
	return p
}

func newProxy(tb testing.TB, target string) (*Proxy, error) {
	ln, err := listenFree()
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		tb:     tb,
		target: target,
		addr:   ln.Addr().String(),
		conns:  map[*proxyConn]struct{}{},
	}
	p.startAccepting(ln)
	return p, nil
}

// Addr returns the proxy's listen address, "127.0.0.1:port". It does not
// change across Refuse(true)/Refuse(false).
func (p *Proxy) Addr() string { return p.addr }

// URL returns "http://" + Addr(), or "https://" + Addr() for the proxy of
// a member port that serves TLS (Options.ClientTLS, PeerTLS); the proxy
// itself forwards bytes and does not take part in TLS.
func (p *Proxy) URL() string {
	if p.https {
		return "https://" + p.addr
	}
	return "http://" + p.addr
}

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// SetDelay sets the delay applied to each chunk read from now on (see the
// Proxy doc). Zero or negative disables it.
func (p *Proxy) SetDelay(d time.Duration) {
	if d < 0 {
		d = 0
	}
	p.delay.Store(int64(d))
}

// BlackHole turns the black hole on or off (see the Proxy doc). Turning it
// on silences every open connection; turning it off affects only
// connections accepted afterwards.
func (p *Proxy) BlackHole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackhole = on
	if on {
		for pc := range p.conns {
			pc.silent.Store(true)
		}
	}
}

// ResetAll closes every open connection with SO_LINGER=0, so both the client
// and the target see a TCP RST.
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	conns := make([]*proxyConn, 0, len(p.conns))
	for pc := range p.conns {
		conns = append(conns, pc)
	}
	p.mu.Unlock()
	for _, pc := range conns {
		pc.close(true)
	}
}

// Refuse(true) closes the listener so that connecting to Addr fails with
// "connection refused"; open connections stay. Refuse(false) listens on
// Addr again (retrying for up to 2s if the port is briefly busy; a failure
// is reported with tb.Errorf).
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if on {
		if p.ln != nil {
			p.ln.Close()
			p.ln = nil
			// The socket is really closed only once the accept loop
			// has left Accept; until then connects still succeed.
			done := p.lnDone
			p.mu.Unlock()
			<-done
			p.mu.Lock()
		}
		return
	}
	if p.ln != nil {
		return
	}
	var err error
	deadline := time.Now().Add(2 * time.Second)
	for {
		var ln net.Listener
		ln, err = net.Listen("tcp", p.addr)
		if err == nil {
			p.startAccepting(ln)
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // port release is not an awaitable event
	}
	p.tb.Errorf("testbed: proxy %s: re-listen: %v", p.addr, err)
}

// Close stops listening, closes every connection and waits for all of the
// proxy's goroutines to end. It is idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return
	}
	p.closed = true
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	conns := make([]*proxyConn, 0, len(p.conns))
	for pc := range p.conns {
		conns = append(conns, pc)
	}
	p.mu.Unlock()
	for _, pc := range conns {
		pc.close(false)
	}
	p.wg.Wait()
}

// CutAfterHeaders arms a cut for the answers to the next n requests (on any
// connection, open or new) whose bytes, as read in one chunk from the
// client, contain match: each such answer is forwarded up to the end of
// its header block ("\r\n\r\n"), then the connection is reset on both
// sides. n <= 0 disarms it.
func (p *Proxy) CutAfterHeaders(match string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutMatch, p.cutLeft = []byte(match), max(n, 0)
}

// Cuts returns how many answers CutAfterHeaders has cut so far.
func (p *Proxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// armCut marks pc's coming answer for a cut if b is a request to cut.
func (p *Proxy) armCut(pc *proxyConn, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cutLeft > 0 && bytes.Contains(b, p.cutMatch) {
		p.cutLeft--
		pc.cut.Store(true)
	}
}

// cutDone counts an answer cut.
func (p *Proxy) cutDone() {
	p.mu.Lock()
	p.cuts++
	p.mu.Unlock()
}

// setDrop installs a filter deciding, per accepted connection, whether it is
// refused with a RST; open connections matching it are reset at once. nil
// removes the filter.
func (p *Proxy) setDrop(f func(c net.Conn) bool) {
	p.mu.Lock()
	p.drop = f
	var victims []*proxyConn
	if f != nil {
		for pc := range p.conns {
			victims = append(victims, pc)
		}
	}
	p.mu.Unlock()
	for _, pc := range victims {
		if f(pc.client) {
			pc.close(true)
		}
	}
}

// startAccepting installs ln and starts its accept loop; p.mu must be held
// (or p not yet shared).
func (p *Proxy) startAccepting(ln net.Listener) {
	p.ln = ln
	done := make(chan struct{})
	p.lnDone = done
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(done)
		p.acceptLoop(ln)
	}()
}

func (p *Proxy) acceptLoop(ln net.Listener) {
	var tempDelay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (e.g. EMFILE): back off briefly and retry.
			if tempDelay == 0 {
				tempDelay = 5 * time.Millisecond
			} else if tempDelay < time.Second {
				tempDelay *= 2
			}
			time.Sleep(tempDelay)
			continue
		}
		tempDelay = 0
		// Decide and register under one lock, so that BlackHole, setDrop
		// and Close either see this connection or it sees their state.
		pc := &proxyConn{client: c, done: make(chan struct{})}
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			c.Close()
			continue
		case p.drop != nil && p.drop(c):
			p.mu.Unlock()
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		p.conns[pc] = struct{}{}
		silent := p.blackhole
		pc.silent.Store(silent)
		p.wg.Add(1)
		p.mu.Unlock()
		if silent {
			go func() {
				defer p.wg.Done()
				p.discard(pc)
			}()
		} else {
			go p.dialAndPump(pc)
		}
	}
}

func (p *Proxy) untrack(pc *proxyConn) {
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

func (p *Proxy) discard(pc *proxyConn) {
	defer p.untrack(pc)
	buf := make([]byte, 32*1024)
	for {
		if _, err := pc.client.Read(buf); err != nil {
			pc.close(false)
			return
		}
	}
}

func (p *Proxy) dialAndPump(pc *proxyConn) {
	defer p.wg.Done()
	defer p.untrack(pc)
	d := net.Dialer{Timeout: 5 * time.Second}
	up, err := d.Dial("tcp", p.target)
	if err != nil {
		pc.close(false)
		return
	}
	if !pc.setUpstream(up) {
		up.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(pc, pc.client, up, true) }()
	go func() { defer wg.Done(); p.pipe(pc, up, pc.client, false) }()
	wg.Wait()
	pc.close(false)
}

type chunk struct {
	b   []byte
	due time.Time
	// reset: after writing b, reset the connection (a cut answer).
	reset bool
}

// pipe copies src to dst through a delay line. On EOF from src it forwards
// what is queued and half-closes dst; on any other error it closes the whole
// proxied connection. While pc is silent, bytes read are dropped.
func (p *Proxy) pipe(pc *proxyConn, src, dst net.Conn, fromClient bool) {
	ch := make(chan chunk, 64)
	writerDone := make(chan struct{})
	go p.delayedWriter(pc, dst, ch, writerDone)

	buf := make([]byte, 32*1024)
	var readErr error
	aborted := false
	// tail holds the last bytes of an answer being cut, to find a header
	// block's end split across reads.
	var tail []byte
	for readErr == nil && !aborted {
		n, err := src.Read(buf)
		readErr = err
		if n > 0 && !pc.silent.Load() {
			c := chunk{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(time.Duration(p.delay.Load()))}
			if fromClient {
				p.armCut(pc, c.b)
			} else if pc.cut.Load() {
				seen := append(tail, c.b...)
				if i := bytes.Index(seen, []byte("\r\n\r\n")); i >= 0 {
					c.b = c.b[:i+4-len(tail)]
					c.reset = true
					readErr = errCut
				} else {
					tail = seen[max(len(seen)-3, 0):]
				}
			}
			select {
			case ch <- c:
			case <-pc.done:
				aborted = true
			}
		}
	}
	close(ch)
	switch {
	case aborted, readErr == errCut:
	case pc.silent.Load():
		if fromClient {
			pc.close(false) // the client went away
		} else {
			<-pc.done // never tell the client; wait for reset/close
		}
	case errors.Is(readErr, io.EOF):
		select {
		case <-writerDone:
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		case <-pc.done:
		}
	default:
		pc.close(false)
	}
	<-writerDone
}

// delayedWriter writes queued chunks to dst once they are due.
func (p *Proxy) delayedWriter(pc *proxyConn, dst net.Conn, ch <-chan chunk, done chan<- struct{}) {
	defer close(done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for c := range ch {
		if wait := time.Until(c.due); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-pc.done:
				return
			}
		}
		if pc.silent.Load() {
			continue
		}
		if _, err := dst.Write(c.b); err != nil {
			pc.close(false)
			return
		}
		if c.reset {
			p.cutDone()
			pc.close(true)
			return
		}
	}
}

// errCut ends the reading of an answer cut after its headers.
var errCut = errors.New("testbed: answer cut after its headers")
