package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// TLSInfo names the files of a client's TLS settings, the way etcd's tools
// take them (etcdctl --cert-file, --key-file and --ca-file). Its zero value
// means https with the system's trusted CAs and no client certificate.
type TLSInfo struct {
	// CertFile and KeyFile are the PEM client certificate (with any
	// intermediates) and its private key, presented to members that ask
	// for one (etcd --client-cert-auth). Both empty means no client
	// certificate; one without the other is an error.
	CertFile, KeyFile string

	// TrustedCAFile is a PEM bundle of the CA certificates the members'
	// certificates must chain to. Empty means the system's trusted CAs.
	TrustedCAFile string

	// ServerName, when not empty, is the name every member's certificate
	// must be valid for, instead of the host of the endpoint's URL (a DNS
	// name or an IP address, checked against the certificate's subject
	// alternative names).
	ServerName string
}

// NewTLSTransport returns a transport for Config.Transport that speaks
// https to the members with info's files. It is tuned like DefaultTransport
// (and is a new *http.Transport that callers may tune further before
// first use). It always verifies the member's certificate: that it chains
// to a CA of TrustedCAFile (or of the system), is valid now, and is valid
// for the endpoint's host (or ServerName).
//
// The files are read once here, so that a missing or malformed file is
// reported at once, and again for each new connection: a certificate, key
// or CA file replaced while the program runs (certificate rotation) is
// used from the next connection on, without a restart; connections
// already open keep the settings they were made with. A certificate and
// key that do not match (one file replaced but not yet the other) are
// ignored in favour of the last pair that did.
//
// Through an HTTP proxy (HTTPS_PROXY), the CA file read here is used for
// the life of the transport.
func NewTLSTransport(info TLSInfo) (*http.Transport, error) {
	f := &tlsFiles{info: info}
	if (info.CertFile == "") != (info.KeyFile == "") {
		return nil, fmt.Errorf("client: TLSInfo needs both CertFile and KeyFile, or neither (CertFile %q, KeyFile %q)", info.CertFile, info.KeyFile)
	}
	if info.CertFile != "" {
		if _, err := f.clientCert(nil); err != nil {
			return nil, err
		}
	}
	roots, err := f.roots()
	if err != nil {
		return nil, err
	}
	t := newDefaultTransport()
	t.TLSClientConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    roots,
		ServerName: info.ServerName,
	}
	if info.CertFile != "" {
		t.TLSClientConfig.GetClientCertificate = f.clientCert
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: dialKeepAlive}
	t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return f.dialTLS(ctx, dialer, t.TLSClientConfig, t.TLSHandshakeTimeout, network, addr)
	}
	return t, nil
}

// tlsFiles reads a TLSInfo's files again when they change.
type tlsFiles struct {
	info TLSInfo

	mu              sync.Mutex
	certPEM, keyPEM []byte
	cert            *tls.Certificate
	caPEM           []byte
	pool            *x509.CertPool
}

// clientCert returns the client certificate, reading the files again and
// parsing them when their content changed.
func (f *tlsFiles) clientCert(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(f.info.CertFile)
	if err != nil {
		return nil, fmt.Errorf("client: reading the client certificate (TLSInfo.CertFile): %w", err)
	}
	keyPEM, err := os.ReadFile(f.info.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("client: reading the client key (TLSInfo.KeyFile): %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cert != nil && bytes.Equal(certPEM, f.certPEM) && bytes.Equal(keyPEM, f.keyPEM) {
		return f.cert, nil
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if f.cert != nil {
			return f.cert, nil // mid-rotation: keep the last good pair
		}
		return nil, fmt.Errorf("client: loading the client certificate %s and key %s: %w", f.info.CertFile, f.info.KeyFile, err)
	}
	f.certPEM, f.keyPEM, f.cert = certPEM, keyPEM, &c
	return f.cert, nil
}

// roots returns the trusted CAs: nil (the system's) without a CA file,
// else the file's certificates, parsed again when its content changed.
func (f *tlsFiles) roots() (*x509.CertPool, error) {
	if f.info.TrustedCAFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(f.info.TrustedCAFile)
	if err != nil {
		return nil, fmt.Errorf("client: reading the trusted CA file (TLSInfo.TrustedCAFile): %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pool != nil && bytes.Equal(b, f.caPEM) {
		return f.pool, nil
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		if f.pool != nil {
			return f.pool, nil // being rewritten: keep the last good bundle
		}
		return nil, fmt.Errorf("client: no PEM certificate in the trusted CA file %s", f.info.TrustedCAFile)
	}
	f.caPEM, f.pool = b, p
	return p, nil
}

// dialTLS dials addr and makes a TLS connection with base's settings, the
// current CA file and, unless base names one, addr's host as server name.
func (f *tlsFiles) dialTLS(ctx context.Context, d *net.Dialer, base *tls.Config, handshakeTimeout time.Duration, network, addr string) (net.Conn, error) {
	cfg := base.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if f.info.TrustedCAFile != "" {
		roots, err := f.roots()
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = roots
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		cfg.ServerName = host
	}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if handshakeTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, handshakeTimeout)
		defer cancel()
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}
