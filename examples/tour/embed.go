package main

// This file starts a throw-away, single-member etcd inside the tour's own
// process, so that the tour needs nothing installed. etcd 3.5 is the last
// release that still serves the v2 API, and only when asked to (EnableV2).

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// embeddedEtcd is a running etcd server and the URL its clients use.
type embeddedEtcd struct {
	Endpoint string // e.g. http://127.0.0.1:40123
	etcd     *embed.Etcd
	dir      string
}

// startEmbedded starts etcd in a temporary data directory and waits (at most
// timeout) until it is ready to serve requests.
func startEmbedded(timeout time.Duration) (*embeddedEtcd, error) {
	dir, err := os.MkdirTemp("", "etcd-tour-")
	if err != nil {
		return nil, err
	}
	clientURL, peerURL, err := freeLoopbackURLs()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}

	cfg := embed.NewConfig()
	cfg.Name = "tour"
	cfg.Dir = dir
	cfg.EnableV2 = true                  // the v2 API is off by default in etcd 3.5
	cfg.LogLevel = "error"               // keep etcd's own logging out of the tour's output
	cfg.UnsafeNoFsync = true             // a throw-away server does not need durable writes
	cfg.TickMs, cfg.ElectionMs = 10, 100 // elect itself leader quickly
	cfg.ListenClientUrls = []url.URL{*clientURL}
	cfg.AdvertiseClientUrls = []url.URL{*clientURL}
	cfg.ListenPeerUrls = []url.URL{*peerURL}
	cfg.AdvertisePeerUrls = []url.URL{*peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting embedded etcd: %w", err)
	}
	s := &embeddedEtcd{Endpoint: clientURL.String(), etcd: e, dir: dir}

	// Ready means: the member has joined its (one-member) cluster and can
	// commit writes. Never wait for it unbounded.
	select {
	case <-e.Server.ReadyNotify():
		return s, nil
	case err := <-e.Err():
		s.Stop()
		return nil, fmt.Errorf("embedded etcd failed: %w", err)
	case <-time.After(timeout):
		s.Stop()
		return nil, fmt.Errorf("embedded etcd not ready after %v", timeout)
	}
}

// Stop shuts the server down and removes its data directory.
func (s *embeddedEtcd) Stop() {
	s.etcd.Close() // waits for the server's goroutines to finish
	os.RemoveAll(s.dir)
}

// freeLoopbackURLs asks the kernel for two free ports on 127.0.0.1 (by
// listening on port 0) and gives them back for etcd's client and peer
// listeners. Both are held open together so they cannot be the same port.
func freeLoopbackURLs() (clientURL, peerURL *url.URL, err error) {
	var urls [2]*url.URL
	for i := range urls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		defer l.Close()
		urls[i] = &url.URL{Scheme: "http", Host: l.Addr().String()}
	}
	return urls[0], urls[1], nil
}
