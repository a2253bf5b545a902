package dnstest

import (
	"context"
	"errors"
	"net"
	"reflect"
	"sort"
	"testing"
)

func TestServerAddresses(t *testing.T) {
	s := Start(t)
	s.AddA("host.example.test", net.IPv4(192, 0, 2, 1))
	s.AddAAAA("host.example.test", net.ParseIP("2001:db8::1"))
	r := s.Resolver()

	addrs, err := r.LookupHost(context.Background(), "host.example.test.")
	if err != nil {
		t.Fatalf("LookupHost: %v", err)
	}
	sort.Strings(addrs)
	if want := []string{"192.0.2.1", "2001:db8::1"}; !reflect.DeepEqual(addrs, want) {
		t.Errorf("LookupHost = %q, want %q", addrs, want)
	}

	_, err = r.LookupHost(context.Background(), "missing.example.test.")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("LookupHost(missing) error = %v, want not found", err)
	}
}

func TestParseName(t *testing.T) {
	// Header, then "a.example.test." at 12 and "b" + pointer to "example.test." at 29.
	msg := make([]byte, 12)
	msg = appendName(msg, "a.example.test.")
	off := len(msg)
	msg = append(msg, 1, 'b', 0xC0, 14)
	name, next, err := parseName(msg, off)
	if err != nil || name != "b.example.test." || next != len(msg) {
		t.Errorf("parseName = %q, %d, %v; want b.example.test., %d", name, next, err, len(msg))
	}
	name, next, err = parseName(msg, 12)
	if err != nil || name != "a.example.test." || next != off {
		t.Errorf("parseName = %q, %d, %v; want a.example.test., %d", name, next, err, off)
	}
	// A pointer loop and a truncated label are rejected.
	for _, bad := range [][]byte{
		append(make([]byte, 12), 0xC0, 12),
		append(make([]byte, 12), 5, 'a'),
		append(make([]byte, 12), 0x40),
	} {
		if _, _, err := parseName(bad, 12); err == nil {
			t.Errorf("parseName(%v) succeeded, want an error", bad[12:])
		}
	}
}
