package testbed

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Ports are picked below the kernel's ephemeral range (read from
// /proc/sys/net/ipv4/ip_local_port_range, usually 32768-60999), so that a
// port we probed and released cannot be taken by some unrelated outgoing
// connection before etcd binds it, and so that a Proxy can re-listen on its
// port after Refuse(false). Within this process a port is never handed out
// twice; across processes the random choice makes collisions unlikely and
// NewCluster retries when a member fails to bind.

const portLow = 12000

var (
	portMu   sync.Mutex
	portUsed = map[int]bool{}
)

func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// freePort returns a loopback TCP port that was bindable a moment ago.
func freePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	hi := ephemeralLow()
	if hi-portLow >= 1000 {
		for i := 0; i < 200; i++ {
			p := portLow + rand.IntN(hi-portLow)
			if portUsed[p] {
				continue
			}
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				continue
			}
			ln.Close()
			portUsed[p] = true
			return p, nil
		}
	}
	// Fallback: let the kernel choose (may be in the ephemeral range).
	for i := 0; i < 50; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !portUsed[p] {
			portUsed[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port found")
}

// listenFree listens on a fresh loopback port chosen like freePort.
func listenFree() (net.Listener, error) {
	var lastErr error
	for i := 0; i < 20; i++ {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err == nil {
			return ln, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func splitHostPort(hp string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	return h, n, nil
}

func parseIPv4(h string) net.IP {
	ip := net.ParseIP(h)
	if ip == nil {
		return nil
	}
	return ip.To4()
}
