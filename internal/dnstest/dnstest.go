// Package dnstest provides a small authoritative DNS server on loopback for
// tests. It speaks just enough of RFC 1035 over UDP and TCP to answer
// questions with SRV, A and AAAA records, NXDOMAIN, or a chosen error code.
package dnstest

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// DNS record types served.
const (
	TypeA    uint16 = 1
	TypeAAAA uint16 = 28
	TypeSRV  uint16 = 33
)

// DNS response codes.
const (
	RcodeSuccess  = 0
	RcodeFormErr  = 1
	RcodeServFail = 2
	RcodeNXDomain = 3
	RcodeNotImp   = 4
	RcodeRefused  = 5
)

const classINET = 1

// Query is one question received by the server.
type Query struct {
	Net  string // "udp" or "tcp"
	Name string // as received, lower-cased, with a trailing dot
	Type uint16
}

type rr struct {
	typ  uint16
	data []byte
}

// Server is a DNS server listening on 127.0.0.1 over UDP and TCP.
type Server struct {
	udp net.PacketConn
	tcp net.Listener
	wg  sync.WaitGroup

	mu        sync.Mutex
	records   map[string][]rr
	rcodes    map[string]int
	drop      map[string]bool
	truncate  map[string]bool
	queries   []Query
	notify    []chan<- Query
	conns     map[net.Conn]bool // server side TCP connections
	clients   map[*tracker]bool // connections dialed by Resolver
	clientsWG sync.WaitGroup
	closed    bool
}

// Start starts a server on 127.0.0.1 with random ports and registers its
// Close with tb.Cleanup.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := New()
	if err != nil {
		tb.Fatalf("dnstest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// New starts a server on 127.0.0.1 with random ports. Call Close when done.
func New() (*Server, error) {
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		udp.Close()
		return nil, err
	}
	s := &Server{
		udp:      udp,
		tcp:      tcp,
		records:  make(map[string][]rr),
		rcodes:   make(map[string]int),
		drop:     make(map[string]bool),
		truncate: make(map[string]bool),
		conns:    make(map[net.Conn]bool),
		clients:  make(map[*tracker]bool),
	}
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	return s, nil
}

// UDPAddr returns the address of the UDP socket.
func (s *Server) UDPAddr() string { return s.udp.LocalAddr().String() }

// TCPAddr returns the address of the TCP listener.
func (s *Server) TCPAddr() string { return s.tcp.Addr().String() }

// Close stops the server, closes every connection to it and every connection
// dialed by its resolvers, and waits for its goroutines to exit.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.udp.Close()
	s.tcp.Close()
	for c := range s.conns {
		c.Close()
	}
	var clients []*tracker
	for t := range s.clients {
		clients = append(clients, t)
	}
	s.mu.Unlock()
	for _, t := range clients {
		t.close()
	}
	s.wg.Wait()
	s.clientsWG.Wait()
}

func canonical(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func (s *Server) add(name string, r rr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = canonical(name)
	s.records[name] = append(s.records[name], r)
}

// AddSRV adds an SRV record. Records are answered in the order added.
func (s *Server) AddSRV(name string, priority, weight, port uint16, target string) {
	data := binary.BigEndian.AppendUint16(nil, priority)
	data = binary.BigEndian.AppendUint16(data, weight)
	data = binary.BigEndian.AppendUint16(data, port)
	data = appendName(data, target)
	s.add(name, rr{TypeSRV, data})
}

// AddA adds an A record; ip must be an IPv4 address.
func (s *Server) AddA(name string, ip net.IP) {
	s.add(name, rr{TypeA, append([]byte(nil), ip.To4()...)})
}

// AddAAAA adds an AAAA record.
func (s *Server) AddAAAA(name string, ip net.IP) {
	s.add(name, rr{TypeAAAA, append([]byte(nil), ip.To16()...)})
}

// SetRcode makes the server answer every question for name with rcode and no
// records.
func (s *Server) SetRcode(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcodes[canonical(name)] = rcode
}

// Drop makes the server record questions for name but never answer them.
func (s *Server) Drop(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop[canonical(name)] = true
}

// TruncateUDP makes the server answer questions for name over UDP with the
// TC bit and no records, so that clients retry over TCP.
func (s *Server) TruncateUDP(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.truncate[canonical(name)] = true
}

// Notify makes the server send each question it receives to ch, without
// blocking: a question is not sent if ch is full.
func (s *Server) Notify(ch chan<- Query) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notify = append(s.notify, ch)
}

// Queries returns the questions received so far, in order.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.queries...)
}

// Resolver returns a pure-Go resolver that sends every query to this server,
// over UDP or TCP as the resolver asks. Connections it dials are closed when
// the context of the look-up that dialed them is done, and by Close.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			addr := s.UDPAddr()
			if strings.HasPrefix(network, "tcp") {
				addr = s.TCPAddr()
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				c.Close()
				return nil, net.ErrClosed
			}
			t := &tracker{s: s, c: c}
			s.clients[t] = true
			s.clientsWG.Add(1)
			s.mu.Unlock()
			t.mu.Lock()
			t.stop = context.AfterFunc(ctx, func() { t.close() })
			t.mu.Unlock()
			// The resolver tells datagram from stream connections by
			// whether they implement net.PacketConn.
			if uc, ok := c.(*net.UDPConn); ok {
				return &trackedUDPConn{uc, t}, nil
			}
			return &trackedConn{c, t}, nil
		},
	}
}

// tracker unregisters a client connection once it is closed.
type tracker struct {
	s    *Server
	c    net.Conn
	once sync.Once
	mu   sync.Mutex
	stop func() bool // guarded by mu
}

func (t *tracker) close() error {
	err := t.c.Close()
	t.once.Do(func() {
		t.mu.Lock()
		stop := t.stop
		t.mu.Unlock()
		if stop != nil {
			stop()
		}
		t.s.mu.Lock()
		delete(t.s.clients, t)
		t.s.mu.Unlock()
		t.s.clientsWG.Done()
	})
	return err
}

type trackedConn struct {
	net.Conn
	t *tracker
}

func (c *trackedConn) Close() error { return c.t.close() }

type trackedUDPConn struct {
	*net.UDPConn
	t *tracker
}

func (c *trackedUDPConn) Close() error { return c.t.close() }

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, addr, err := s.udp.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if resp := s.handle("udp", buf[:n]); resp != nil {
			s.udp.WriteTo(resp, addr)
		}
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	var lenBuf [2]byte
	for {
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		resp := s.handle("tcp", msg)
		if resp == nil {
			continue
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

// handle returns the response to msg, or nil to send none.
func (s *Server) handle(network string, msg []byte) []byte {
	if len(msg) < 12 {
		return nil
	}
	id := binary.BigEndian.Uint16(msg[0:2])
	flags := binary.BigEndian.Uint16(msg[2:4])
	if flags&0x8000 != 0 { // a response, not a query
		return nil
	}
	opcode := (flags >> 11) & 0xF
	rd := flags & 0x0100
	qdcount := binary.BigEndian.Uint16(msg[4:6])
	header := func(rcode int, tc bool, an uint16) []byte {
		f := uint16(0x8000) | opcode<<11 | 0x0400 /* AA */ | rd | 0x0080 /* RA */ | uint16(rcode&0xF)
		if tc {
			f |= 0x0200
		}
		h := binary.BigEndian.AppendUint16(nil, id)
		h = binary.BigEndian.AppendUint16(h, f)
		h = binary.BigEndian.AppendUint16(h, 1)
		h = binary.BigEndian.AppendUint16(h, an)
		h = binary.BigEndian.AppendUint16(h, 0)
		return binary.BigEndian.AppendUint16(h, 0)
	}
	if qdcount != 1 {
		h := header(RcodeFormErr, false, 0)
		binary.BigEndian.PutUint16(h[4:6], 0)
		return h
	}
	name, off, err := parseName(msg, 12)
	if err != nil || off+4 > len(msg) {
		h := header(RcodeFormErr, false, 0)
		binary.BigEndian.PutUint16(h[4:6], 0)
		return h
	}
	qtype := binary.BigEndian.Uint16(msg[off : off+2])
	qclass := binary.BigEndian.Uint16(msg[off+2 : off+4])
	question := appendName(nil, name)
	question = binary.BigEndian.AppendUint16(question, qtype)
	question = binary.BigEndian.AppendUint16(question, qclass)

	key := canonical(name)
	q := Query{Net: network, Name: key, Type: qtype}

	s.mu.Lock()
	s.queries = append(s.queries, q)
	for _, ch := range s.notify {
		select {
		case ch <- q:
		default:
		}
	}
	drop := s.drop[key]
	rcode, hasRcode := s.rcodes[key]
	truncate := network == "udp" && s.truncate[key]
	all, exists := s.records[key]
	s.mu.Unlock()

	switch {
	case drop:
		return nil
	case opcode != 0:
		return append(header(RcodeNotImp, false, 0), question...)
	case hasRcode:
		return append(header(rcode, false, 0), question...)
	case truncate:
		return append(header(RcodeSuccess, true, 0), question...)
	case !exists || qclass != classINET:
		return append(header(RcodeNXDomain, false, 0), question...)
	}
	var answers []byte
	var an uint16
	for _, r := range all {
		if r.typ != qtype {
			continue
		}
		answers = appendName(answers, name)
		answers = binary.BigEndian.AppendUint16(answers, r.typ)
		answers = binary.BigEndian.AppendUint16(answers, classINET)
		answers = binary.BigEndian.AppendUint32(answers, 60)
		answers = binary.BigEndian.AppendUint16(answers, uint16(len(r.data)))
		answers = append(answers, r.data...)
		an++
	}
	resp := append(header(RcodeSuccess, false, an), question...)
	return append(resp, answers...)
}

var errBadName = errors.New("dnstest: malformed name")

// parseName reads the possibly compressed name at off in msg and returns it
// in dotted form with a trailing dot, and the offset just past it.
func parseName(msg []byte, off int) (string, int, error) {
	var b strings.Builder
	end := -1 // offset after the name where it started, set at first pointer
	for jumps := 0; ; {
		if off >= len(msg) {
			return "", 0, errBadName
		}
		l := int(msg[off])
		switch l & 0xC0 {
		case 0x00:
			off++
			if l == 0 {
				if end < 0 {
					end = off
				}
				if b.Len() == 0 {
					b.WriteByte('.')
				}
				if b.Len() > 255 {
					return "", 0, errBadName
				}
				return b.String(), end, nil
			}
			if off+l > len(msg) {
				return "", 0, errBadName
			}
			b.Write(msg[off : off+l])
			b.WriteByte('.')
			off += l
		case 0xC0:
			if off+1 >= len(msg) {
				return "", 0, errBadName
			}
			if jumps++; jumps > 16 {
				return "", 0, errBadName
			}
			if end < 0 {
				end = off + 2
			}
			off = int(binary.BigEndian.Uint16(msg[off:off+2]) & 0x3FFF)
		default:
			return "", 0, errBadName
		}
	}
}

// appendName appends name, in dotted form, uncompressed.
func appendName(b []byte, name string) []byte {
	name = strings.TrimSuffix(name, ".")
	if name != "" {
		for _, label := range strings.Split(name, ".") {
			b = append(b, byte(len(label)))
			b = append(b, label...)
		}
	}
	return append(b, 0)
}
