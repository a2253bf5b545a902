package client

import (
	"context"
	"errors"
	"net"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/dnstest"
)

// newTestDiscoverer starts a DNS server on loopback and returns it with an
// SRVDiscoverer whose resolver only talks to it. At cleanup the server is
// closed and the test fails if goroutines of the server, the resolver or the
// discoverer are left behind.
func newTestDiscoverer(t *testing.T) (*dnstest.Server, *SRVDiscoverer) {
	t.Helper()
	t.Cleanup(func() { checkNoLeakedGoroutines(t) }) // runs after the server's Close
	s := dnstest.Start(t)
	return s, &SRVDiscoverer{Resolver: s.Resolver()}
}

// checkNoLeakedGoroutines fails t if goroutines running discovery, resolver
// or test server code remain. Goroutines that are done but not yet gone are
// given a bounded number of chances to exit.
func checkNoLeakedGoroutines(t *testing.T) {
	t.Helper()
	markers := []string{"internal/dnstest.", "(*SRVDiscoverer)", "net.(*Resolver)"}
	var leaked []string
	for i := 0; i < 200; i++ {
		leaked = leaked[:0]
		buf := make([]byte, 1<<20)
		stacks := strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
		for _, g := range stacks[1:] { // the first is this goroutine
			for _, m := range markers {
				if strings.Contains(g, m) {
					leaked = append(leaked, g)
					break
				}
			}
		}
		if len(leaked) == 0 {
			return
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond) // polling for exit, not synchronisation
	}
	t.Errorf("leaked goroutines:\n%s", strings.Join(leaked, "\n\n"))
}

func countSRVQueries(s *dnstest.Server) int {
	n := 0
	for _, q := range s.Queries() {
		if q.Type == dnstest.TypeSRV {
			n++
		}
	}
	return n
}

func TestSRVDiscoverBothKinds(t *testing.T) {
	s, d := newTestDiscoverer(t)
	// Added out of priority order; the resolver sorts by priority.
	s.AddSRV("_etcd-client-ssl._tcp.example.test", 20, 0, 2379, "b.example.test.")
	s.AddSRV("_etcd-client-ssl._tcp.example.test", 10, 0, 2379, "a.example.test.")
	s.AddSRV("_etcd-client-ssl._tcp.example.test", 30, 0, 2379, "a.example.test.") // duplicate
	s.AddSRV("_etcd-client._tcp.example.test", 5, 0, 4001, "c.example.test.")
	s.AddSRV("_etcd-client._tcp.example.test", 1, 0, 2379, "a.example.test.")
	s.AddA("a.example.test", net.IPv4(127, 0, 0, 1))

	got, err := d.Discover("example.test")
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	// TLS records exist: the plain http ones are left out, so that no
	// credentials go over plain http.
	want := []string{
		"https://a.example.test:2379",
		"https://b.example.test:2379",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Discover = %q, want %q", got, want)
	}
	for _, q := range s.Queries() {
		if q.Type != dnstest.TypeSRV {
			t.Errorf("unexpected non-SRV query %+v", q)
		}
	}

	// The same through the Discoverer returned by NewSRVDiscover.
	nd, ok := NewSRVDiscover().(*SRVDiscoverer)
	if !ok || nd.Resolver != nil || nd.ServiceName != "" {
		t.Fatalf("NewSRVDiscover() = %#v, want a zero *SRVDiscoverer", nd)
	}
	nd.Resolver = d.Resolver
	var dd Discoverer = nd
	if got, err := dd.Discover("example.test."); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("rooted domain: Discover = %q, %v; want %q", got, err, want)
	}
}

func TestSRVDiscoverOneKind(t *testing.T) {
	t.Run("ssl only", func(t *testing.T) {
		s, d := newTestDiscoverer(t)
		s.AddSRV("_etcd-client-ssl._tcp.example.test", 0, 0, 2379, "etcd.example.test.")
		got, err := d.Discover("example.test")
		if want := []string{"https://etcd.example.test:2379"}; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Discover = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("plain only", func(t *testing.T) {
		s, d := newTestDiscoverer(t)
		s.AddSRV("_etcd-client._tcp.example.test", 0, 0, 2379, "etcd.example.test.")
		got, err := d.Discover("example.test")
		if want := []string{"http://etcd.example.test:2379"}; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Discover = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("other kind fails with server failure", func(t *testing.T) {
		s, d := newTestDiscoverer(t)
		s.SetRcode("_etcd-client-ssl._tcp.example.test", dnstest.RcodeServFail)
		s.AddSRV("_etcd-client._tcp.example.test", 0, 0, 2379, "etcd.example.test.")
		got, err := d.Discover("example.test.")
		if want := []string{"http://etcd.example.test:2379"}; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Discover = %q, %v; want %q", got, err, want)
		}
	})
}

func TestSRVDiscoverNeither(t *testing.T) {
	s, d := newTestDiscoverer(t)
	s.AddSRV("_etcd-server-ssl._tcp.example.test", 0, 0, 2380, "etcd.example.test.") // not a client record

	got, err := d.Discover("example.test.")
	if err == nil {
		t.Fatalf("Discover = %q, want an error", got)
	}
	var srvErr *SRVError
	if !errors.As(err, &srvErr) {
		t.Fatalf("error %v (%T) is not an *SRVError", err, err)
	}
	wantNames := []string{"_etcd-client-ssl._tcp.example.test.", "_etcd-client._tcp.example.test."}
	if srvErr.Domain != "example.test." || !reflect.DeepEqual(srvErr.Names, wantNames) {
		t.Errorf("SRVError = %+v, want domain example.test. and names %q", srvErr, wantNames)
	}
	for _, name := range wantNames {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if len(srvErr.Errs) != 2 || len(srvErr.Unwrap()) != 2 {
		t.Fatalf("SRVError has causes %v, want 2", srvErr.Errs)
	}
	for i, cause := range srvErr.Errs {
		var dnsErr *net.DNSError
		if !errors.As(cause, &dnsErr) || !dnsErr.IsNotFound {
			t.Errorf("cause %d = %v, want a not-found *net.DNSError", i, cause)
		}
	}
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Errorf("errors.As(%v, *net.DNSError) = false", err)
	}
	if errors.Is(err, ErrInvalidDomain) {
		t.Errorf("errors.Is(%v, ErrInvalidDomain) = true", err)
	}
}

func TestSRVDiscoverNXDomainVersusServerFailure(t *testing.T) {
	s, d := newTestDiscoverer(t)
	s.SetRcode("_etcd-client-ssl._tcp.example.test", dnstest.RcodeServFail)
	// _etcd-client._tcp.example.test does not exist: NXDOMAIN.

	_, err := d.Discover("example.test.")
	var srvErr *SRVError
	if !errors.As(err, &srvErr) || len(srvErr.Errs) != 2 {
		t.Fatalf("Discover error = %v, want an *SRVError with 2 causes", err)
	}
	var servFail, nxDomain *net.DNSError
	if !errors.As(srvErr.Errs[0], &servFail) || servFail.IsNotFound || !servFail.IsTemporary {
		t.Errorf("ssl cause = %#v, want a temporary, not not-found *net.DNSError", srvErr.Errs[0])
	}
	if !errors.As(srvErr.Errs[1], &nxDomain) || !nxDomain.IsNotFound || nxDomain.IsTemporary {
		t.Errorf("plain cause = %#v, want a not-found *net.DNSError", srvErr.Errs[1])
	}
}

func TestSRVDiscoverServiceName(t *testing.T) {
	s, d := newTestDiscoverer(t)
	d.ServiceName = "prod"
	s.AddSRV("_etcd-client-ssl._tcp.example.test", 0, 0, 2379, "default.example.test.")
	s.AddSRV("_etcd-client._tcp.example.test", 0, 0, 2379, "default.example.test.")
	s.AddSRV("_etcd-client-ssl-prod._tcp.example.test", 0, 0, 2379, "prod1.example.test.")
	s.AddSRV("_etcd-client-prod._tcp.example.test", 0, 0, 2379, "prod2.example.test.")
	s.AddSRV("_etcd-client-plain._tcp.example.test", 0, 0, 2379, "plain.example.test.")

	got, err := d.Discover("example.test")
	want := []string{"https://prod1.example.test:2379"} // TLS records exist: only those
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Discover = %q, %v; want %q", got, err, want)
	}
	d.ServiceName = "plain"
	got, err = d.Discover("example.test")
	want = []string{"http://plain.example.test:2379"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Discover = %q, %v; want %q", got, err, want)
	}

	d.ServiceName = "staging"
	_, err = d.Discover("example.test.")
	var srvErr *SRVError
	wantNames := []string{"_etcd-client-ssl-staging._tcp.example.test.", "_etcd-client-staging._tcp.example.test."}
	if !errors.As(err, &srvErr) || !reflect.DeepEqual(srvErr.Names, wantNames) {
		t.Errorf("Discover error = %v, want an *SRVError naming %q", err, wantNames)
	}

	before := len(s.Queries())
	for _, bad := range []string{"a.b", "x y", strings.Repeat("n", 60)} {
		d.ServiceName = bad
		if got, err := d.Discover("example.test"); err == nil {
			t.Errorf("ServiceName %q: Discover = %q, want an error", bad, got)
		}
	}
	if n := len(s.Queries()) - before; n != 0 {
		t.Errorf("invalid service names caused %d queries, want 0", n)
	}
}

func TestSRVDiscoverTargets(t *testing.T) {
	s, d := newTestDiscoverer(t)
	// The resolver drops SRV records whose target is not a domain name,
	// such as an IPv6 literal, and reports them alongside the valid ones.
	s.AddSRV("_etcd-client-ssl._tcp.example.test", 0, 0, 2379, "::1")
	s.AddSRV("_etcd-client-ssl._tcp.example.test", 1, 0, 2379, "etcd.example.test.")
	// "." means the service is decidedly not available (RFC 2782).
	s.AddSRV("_etcd-client._tcp.example.test", 0, 0, 2379, ".")

	got, err := d.Discover("example.test")
	if want := []string{"https://etcd.example.test:2379"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Discover = %q, %v; want %q", got, err, want)
	}

	s.AddSRV("_etcd-client-ssl._tcp.none.test", 0, 0, 2379, ".")
	_, err = d.Discover("none.test.")
	var srvErr *SRVError
	var dnsErr *net.DNSError
	if !errors.As(err, &srvErr) || len(srvErr.Errs) != 2 || !errors.As(srvErr.Errs[0], &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("only %q targets: Discover error = %v, want an *SRVError with a not-found first cause", ".", err)
	}
}

func TestSRVEndpoints(t *testing.T) {
	srvs := []*net.SRV{
		{Target: "etcd.example.test.", Port: 2379},
		{Target: "etcd.example.test", Port: 2380},
		{Target: "::1", Port: 2379},
		{Target: "fd00::2.", Port: 4001},
		{Target: "10.0.0.1.", Port: 2379},
		{Target: ".", Port: 2379},
		nil,
	}
	got := srvEndpoints("https", srvs)
	want := []string{
		"https://etcd.example.test:2379",
		"https://etcd.example.test:2380",
		"https://[::1]:2379",
		"https://[fd00::2]:4001",
		"https://10.0.0.1:2379",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("srvEndpoints = %q, want %q", got, want)
	}
}

func TestSRVDiscoverOverTCP(t *testing.T) {
	s, d := newTestDiscoverer(t)
	s.TruncateUDP("_etcd-client-ssl._tcp.example.test")
	s.AddSRV("_etcd-client-ssl._tcp.example.test", 0, 0, 2379, "etcd.example.test.")

	got, err := d.Discover("example.test.")
	if want := []string{"https://etcd.example.test:2379"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Discover = %q, %v; want %q", got, err, want)
	}
	tcp := 0
	for _, q := range s.Queries() {
		if q.Net == "tcp" && q.Name == "_etcd-client-ssl._tcp.example.test." {
			tcp++
		}
	}
	if tcp == 0 {
		t.Errorf("no TCP query after a truncated UDP answer; queries: %+v", s.Queries())
	}
}

func TestSRVDiscoverInvalidDomain(t *testing.T) {
	s, d := newTestDiscoverer(t)
	s.AddSRV("_etcd-client._tcp.example.test", 0, 0, 2379, "etcd.example.test.")
	for _, domain := range []string{
		"", ".", "example..test", ".example.test", "example.test:2379",
		"http://example.test", "exa mple.test", strings.Repeat("a", 64) + ".test",
		strings.Repeat("abcdefghi.", 26),
	} {
		got, err := d.Discover(domain)
		if !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("Discover(%q) = %q, %v; want an error wrapping ErrInvalidDomain", domain, got, err)
		}
	}
	_, err := d.Discover("")
	if err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Discover(\"\") error = %v, want it to say the domain is empty", err)
	}
	if _, err := (*SRVDiscoverer)(nil).Discover(""); !errors.Is(err, ErrInvalidDomain) {
		t.Errorf("nil SRVDiscoverer: Discover(\"\") error = %v, want ErrInvalidDomain", err)
	}
	if n := countSRVQueries(s); n != 0 {
		t.Errorf("invalid domains caused %d queries, want 0", n)
	}
}

func TestSRVDiscoverContextCancelled(t *testing.T) {
	t.Run("before the call", func(t *testing.T) {
		s, d := newTestDiscoverer(t)
		s.AddSRV("_etcd-client._tcp.example.test", 0, 0, 2379, "etcd.example.test.")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		got, err := d.DiscoverContext(ctx, "example.test")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("DiscoverContext = %q, %v; want context.Canceled", got, err)
		}
		if n := countSRVQueries(s); n != 0 {
			t.Errorf("%d queries after a cancelled context, want 0", n)
		}
	})

	t.Run("during the look-ups", func(t *testing.T) {
		s, d := newTestDiscoverer(t)
		s.Drop("_etcd-client-ssl._tcp.example.test")
		s.Drop("_etcd-client._tcp.example.test")
		seen := make(chan dnstest.Query, 16)
		s.Notify(seen)

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		defer close(done)
		go func() {
			// Cancel once the server holds an unanswered query.
			select {
			case <-seen:
				cancel()
			case <-done:
			}
		}()
		start := time.Now()
		got, err := d.DiscoverContext(ctx, "example.test.")
		elapsed := time.Since(start)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("DiscoverContext = %q, %v; want context.Canceled", got, err)
		}
		// The resolver's own timeout is several seconds per attempt.
		if elapsed > 2*time.Second {
			t.Errorf("DiscoverContext took %v after cancellation, want prompt return", elapsed)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		s, d := newTestDiscoverer(t)
		s.Drop("_etcd-client-ssl._tcp.example.test")
		s.AddSRV("_etcd-client._tcp.example.test", 0, 0, 2379, "etcd.example.test.")
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		got, err := d.DiscoverContext(ctx, "example.test.")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("DiscoverContext = %q, %v; want context.DeadlineExceeded", got, err)
		}
	})
}

func TestSRVErrorMessage(t *testing.T) {
	cause := errors.New("boom")
	e := &SRVError{
		Domain: "example.test",
		Names:  []string{"_etcd-client-ssl._tcp.example.test", "_etcd-client._tcp.example.test"},
		Errs:   []error{cause, nil},
	}
	want := `client: no etcd SRV records found for "example.test": _etcd-client-ssl._tcp.example.test: boom; _etcd-client._tcp.example.test`
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, cause) || len(e.Unwrap()) != 1 {
		t.Errorf("Unwrap() = %v, want [boom]", e.Unwrap())
	}
}
