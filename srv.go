package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidDomain is wrapped by the error SRVDiscoverer returns, before any
// DNS look-up is made, when the domain to discover is empty or is not a
// syntactically valid DNS name.
var ErrInvalidDomain = errors.New("client: invalid discovery domain")

// NewSRVDiscover returns a Discoverer that looks up etcd client endpoints in
// DNS SRV records using net.DefaultResolver. It is equivalent to
// &SRVDiscoverer{}.
func NewSRVDiscover() Discoverer {
	return &SRVDiscoverer{}
}

// SRVDiscoverer looks up etcd client endpoints in DNS SRV records. Its zero
// value is usable.
//
// For a domain it looks up "_etcd-client-ssl._tcp.<domain>", whose targets
// become "https://host:port" endpoints, and "_etcd-client._tcp.<domain>",
// whose targets become "http://host:port" endpoints. When the TLS name has
// usable records, only its endpoints are returned: unlike the original
// client, which returned both kinds (so that a client would send its
// credentials over plain http to some of the members), the plain http
// records are then ignored. An SRVDiscoverer is safe for concurrent use as
// long as its fields are not modified.
type SRVDiscoverer struct {
	// Resolver used for look-ups; nil means net.DefaultResolver.
	Resolver *net.Resolver

	// ServiceName, when not empty, looks up "_etcd-client-ssl-<name>._tcp"
	// and "_etcd-client-<name>._tcp" instead.
	ServiceName string
}

// Discover looks up the etcd client endpoints for domain. It is
// DiscoverContext with context.Background().
func (d *SRVDiscoverer) Discover(domain string) ([]string, error) {
	return d.DiscoverContext(context.Background(), domain)
}

// DiscoverContext looks up the etcd client endpoints for domain.
//
// Both SRV names are looked up concurrently. The endpoints of the TLS name
// ("https://...") are returned if there are any, otherwise those of the
// plain name ("http://..."), in the order the resolver returns them (SRV
// priority, then weight); duplicates are removed. Trailing dots are stripped from targets, IPv6
// literal hosts are bracketed, and targets of "." (service not available,
// RFC 2782) are skipped.
//
// If one name yields endpoints, DiscoverContext succeeds even if the look-up
// of the other fails. If neither yields any, it returns an *SRVError naming
// both records and wrapping each cause. If the domain is invalid it returns an
// error wrapping ErrInvalidDomain without making any look-up. If ctx is done
// before discovery completes, or by the time a look-up fails, it returns
// promptly with an error wrapping ctx.Err() rather than partial results; a
// look-up still in flight then finishes in the background within the
// resolver's own timeout.
func (d *SRVDiscoverer) DiscoverContext(ctx context.Context, domain string) ([]string, error) {
	if err := validateDomain(domain); err != nil {
		return nil, err
	}
	var resolver *net.Resolver
	var serviceName string
	if d != nil {
		resolver, serviceName = d.Resolver, d.ServiceName
	}
	if err := validateServiceName(serviceName); err != nil {
		return nil, err
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("client: discover etcd SRV records for %q: %w", domain, err)
	}

	lookups := [2]struct{ service, scheme string }{
		{"etcd-client-ssl", "https"},
		{"etcd-client", "http"},
	}
	type result struct {
		i     int
		addrs []*net.SRV
		err   error
	}
	// Buffered so that a look-up abandoned because ctx is done can still
	// deliver its result and let its goroutine exit.
	results := make(chan result, len(lookups))
	names := make([]string, len(lookups))
	for i, l := range lookups {
		service := l.service
		if serviceName != "" {
			service += "-" + serviceName
		}
		names[i] = "_" + service + "._tcp." + domain
		go func() {
			_, addrs, err := resolver.LookupSRV(ctx, service, "tcp", domain)
			results <- result{i, addrs, err}
		}()
	}

	var srvs [len(lookups)][]*net.SRV
	var errs [len(lookups)]error
	for range lookups {
		select {
		case r := <-results:
			srvs[r.i], errs[r.i] = r.addrs, r.err
		case <-ctx.Done():
			return nil, fmt.Errorf("client: discover etcd SRV records for %q: %w", domain, ctx.Err())
		}
	}

	// A look-up that failed once ctx is done may have failed because of
	// it; rather than return partial results, report ctx's error.
	if err := contextErr(ctx); err != nil && (errs[0] != nil || errs[1] != nil) {
		return nil, fmt.Errorf("client: discover etcd SRV records for %q: %w", domain, err)
	}

	var endpoints []string
	seen := make(map[string]bool)
	for i, l := range lookups {
		if i > 0 && len(endpoints) > 0 {
			// TLS endpoints exist: plain http ones are not mixed in,
			// so that credentials never go over plain http.
			break
		}
		// The resolver drops malformed records and reports an error
		// alongside any valid ones left; those are still used.
		n := 0
		for _, ep := range srvEndpoints(l.scheme, srvs[i]) {
			n++
			if !seen[ep] {
				seen[ep] = true
				endpoints = append(endpoints, ep)
			}
		}
		if n == 0 && errs[i] == nil {
			errs[i] = &net.DNSError{Err: "no usable SRV records", Name: names[i], IsNotFound: true}
		}
	}
	if len(endpoints) > 0 {
		return endpoints, nil
	}
	return nil, &SRVError{Domain: domain, Names: names, Errs: errs[:]}
}

// contextErr is ctx.Err(), but also reports context.DeadlineExceeded as soon
// as ctx's deadline has passed: a resolver's socket deadline can expire just
// before ctx's own timer fires.
func contextErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// srvEndpoints turns SRV records into scheme://host:port endpoints, keeping
// their order.
func srvEndpoints(scheme string, srvs []*net.SRV) []string {
	var eps []string
	for _, srv := range srvs {
		if srv == nil {
			continue
		}
		host := strings.TrimSuffix(srv.Target, ".")
		if host == "" {
			continue
		}
		eps = append(eps, scheme+"://"+net.JoinHostPort(host, strconv.Itoa(int(srv.Port))))
	}
	return eps
}

// SRVError is returned by SRVDiscoverer when no etcd endpoint could be
// discovered from either SRV name. It works with errors.Is and errors.As
// through each look-up's cause.
type SRVError struct {
	// Domain is the domain discovery was attempted for.
	Domain string
	// Names holds the SRV names looked up, TLS name first, for example
	// "_etcd-client-ssl._tcp.example.com" and "_etcd-client._tcp.example.com".
	Names []string
	// Errs holds the cause of the failure for each name in Names, at the
	// same index. A look-up that succeeded without usable records is
	// reported as a *net.DNSError with IsNotFound set.
	Errs []error
}

// Error returns a message naming every SRV name looked up and its cause.
func (e *SRVError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client: no etcd SRV records found for %q", e.Domain)
	for i, name := range e.Names {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(name)
		if i < len(e.Errs) && e.Errs[i] != nil {
			b.WriteString(": ")
			b.WriteString(e.Errs[i].Error())
		}
	}
	return b.String()
}

// Unwrap returns the non-nil causes, one per name looked up.
func (e *SRVError) Unwrap() []error {
	var errs []error
	for _, err := range e.Errs {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// validateDomain checks that domain is a syntactically valid DNS name,
// optionally ending in a dot.
func validateDomain(domain string) error {
	if domain == "" {
		return fmt.Errorf("%w %q: domain is empty", ErrInvalidDomain, domain)
	}
	name := strings.TrimSuffix(domain, ".")
	if name == "" {
		return fmt.Errorf("%w %q: domain is the DNS root", ErrInvalidDomain, domain)
	}
	if len(name) > 253 {
		return fmt.Errorf("%w %q: longer than 253 characters", ErrInvalidDomain, domain)
	}
	for _, label := range strings.Split(name, ".") {
		if reason := checkLabel(label); reason != "" {
			return fmt.Errorf("%w %q: %s", ErrInvalidDomain, domain, reason)
		}
	}
	return nil
}

// validateServiceName checks that name can extend an SRV service label.
func validateServiceName(name string) error {
	if name == "" {
		return nil
	}
	// The longest label built from it is "_etcd-client-ssl-<name>".
	if reason := checkLabel("etcd-client-ssl-" + name); reason != "" {
		return fmt.Errorf("client: invalid SRV service name %q: %s", name, reason)
	}
	return nil
}

// checkLabel returns why label is not a valid DNS label, or "" if it is.
func checkLabel(label string) string {
	if label == "" {
		return "empty label"
	}
	if len(label) > 63 {
		return fmt.Sprintf("label %q longer than 63 characters", label)
	}
	for _, c := range []byte(label) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return fmt.Sprintf("invalid character %q", c)
		}
	}
	return ""
}
