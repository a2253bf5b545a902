package client

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/health"
	"github.com/etcdv2/client/internal/v2fake"
)

// slowHandshakeServer is a TLS fake v2 member whose handshakes take delay
// once delay is set: what a burst of new connections to a loaded member
// looks like.
func slowHandshakeServer(t *testing.T) (*v2fake.Server, *atomic.Int64) {
	t.Helper()
	var delay atomic.Int64
	s := v2fake.New(v2fake.Options{})
	s.HTTP.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		time.Sleep(time.Duration(delay.Load())) // the handshake's own cost, not synchronisation
		return nil, nil
	}}
	s.HTTP.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut off by the tests
	s.StartTLS()
	t.Cleanup(s.Close)
	return s, &delay
}

// TestNewConnectionGetsItsOwnBudget: the adaptive per-attempt timeout is
// learned on warm connections; a read that has to make a new connection
// whose handshake takes longer than that timeout still succeeds.
func TestNewConnectionGetsItsOwnBudget(t *testing.T) {
	s, delay := slowHandshakeServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := NewKeysAPI(newTestClient(t, Config{Endpoints: []string{s.URL}, Transport: s.HTTP.Client().Transport.(*http.Transport)})).Set(ctx, "/k", "v", nil); err != nil {
		t.Fatal(err)
	}
	// A client and transport of its own for each kind: a plain read's
	// liveness check makes a connection of its own, which may become
	// idle after the read and would serve the next read.
	for _, kind := range []string{"plain read", "quorum read"} {
		delay.Store(0)
		tr := s.HTTP.Client().Transport.(*http.Transport).Clone()
		c := newTestClient(t, Config{Endpoints: []string{s.URL}, Transport: tr})
		kapi := NewKeysAPI(c)
		// Warm-up: enough fast answers for the adaptive timeout to
		// reach its floor.
		for i := 0; i < 2*health.Every && c.health.Timeout() != MinAdaptiveHeaderTimeout; i++ {
			if _, err := kapi.Get(ctx, "/k", nil); err != nil {
				t.Fatal(err)
			}
		}
		if got := c.health.Timeout(); got != MinAdaptiveHeaderTimeout {
			t.Fatalf("%s: adaptive timeout after warm-up: %v, want the floor %v", kind, got, MinAdaptiveHeaderTimeout)
		}
		delay.Store(int64(3 * MinAdaptiveHeaderTimeout / 2))
		tr.CloseIdleConnections()
		start := time.Now()
		_, err := kapi.Get(ctx, "/k", &GetOptions{Quorum: kind == "quorum read"})
		if err != nil {
			t.Fatalf("%s over a new connection with a slow handshake: %v", kind, err)
		}
		if d := time.Since(start); d < time.Duration(delay.Load()) {
			t.Fatalf("%s took %v, less than the handshake delay: no new connection was made", kind, d)
		}
		// Nor is the member taken for one whose raft holds requests
		// (a liveness check during the handshake would find it
		// answering).
		if st := stateOf(c, s.URL); st.Failures != 0 || !st.HasLeader {
			t.Errorf("%s: member: %+v, want no failure and a leader", kind, st)
		}
		if st := c.Stats(); st.Retries != 0 {
			t.Errorf("%s: %d retries, want none", kind, st.Retries)
		}
	}
}

// stuckHandshakeListener accepts TCP connections and never answers on
// them, as a stopped (SIGSTOP) TLS member: the kernel accepts, the
// handshake never completes.
func stuckHandshakeListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "https://" + l.Addr().String()
}

// TestStuckHandshakeIsLeftInBoundedTime: the budget of a new connection
// is bounded, so a member that accepts connections but never completes a
// handshake is still left, and blamed, within a bounded time.
func TestStuckHandshakeIsLeftInBoundedTime(t *testing.T) {
	good, _ := slowHandshakeServer(t)
	hung := stuckHandshakeListener(t)
	for _, quorum := range []bool{false, true} {
		tr := good.HTTP.Client().Transport.(*http.Transport).Clone()
		c := newTestClient(t, Config{Endpoints: []string{hung, good.URL}, Transport: tr,
			Selector: preferOrder(hung, good.URL)})
		c.health.SetTimeout(MinAdaptiveHeaderTimeout) // as after many fast answers
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		_, err := NewKeysAPI(c).Get(ctx, "/", &GetOptions{Quorum: quorum})
		cancel()
		d := time.Since(start)
		tr.CloseIdleConnections()
		if err != nil {
			t.Fatalf("get (quorum %v): %v, want an answer from the other member", quorum, err)
		}
		if d > DefaultHeaderTimeoutPerRequest+time.Second {
			t.Errorf("get (quorum %v) took %v, want the stuck handshake given up after about %v", quorum, d, DefaultHeaderTimeoutPerRequest)
		}
		if s := stateOf(c, hung); s.Failures != 1 {
			t.Errorf("hung member (quorum %v): %+v, want its timeout counted", quorum, s)
		}
	}

	// Alone, the member's attempt ends as a timeout.
	tr := good.HTTP.Client().Transport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	c := newTestClient(t, Config{Endpoints: []string{hung}, Transport: tr, Rounds: 1})
	c.health.SetTimeout(MinAdaptiveHeaderTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := NewKeysAPI(c).Get(ctx, "/", nil)
	if !errors.Is(err, ErrAttemptTimeout) {
		t.Fatalf("get from the stuck member alone: %v, want an attempt timeout", err)
	}
	if d := time.Since(start); d > DefaultHeaderTimeoutPerRequest+time.Second {
		t.Errorf("get took %v, want about %v", d, DefaultHeaderTimeoutPerRequest)
	}
}
