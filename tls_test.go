package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/v2fake"
	"github.com/stretchr/testify/require"
)

// These use Go's own http servers for the answers etcd does not give: a
// plain Go https server answers a plain http request with a 400 and a
// sentence, and a plain Go http server answers a TLS handshake in http.

func tlsTestGet(t *testing.T, endpoint string, tr CancelableTransport) error {
	t.Helper()
	c := newTestClient(t, Config{Endpoints: []string{endpoint}, Transport: tr})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := NewKeysAPI(c).Get(ctx, "/k", nil)
	return err
}

func TestTLSErrorPlainHTTPToGoHTTPSServer(t *testing.T) {
	s := v2fake.New(v2fake.Options{})
	s.StartTLS()
	defer s.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	err := tlsTestGet(t, "http://"+s.HTTP.Listener.Addr().String(), tr)
	var te *TLSError
	require.ErrorAs(t, err, &te)
	require.Equal(t, TLSPlainHTTPToTLSPort, te.Problem)
	require.Contains(t, err.Error(), httpsServerAnswer)
	require.Contains(t, err.Error(), "fix: use an https:// endpoint")
}

func TestTLSErrorHTTPSToGoHTTPServer(t *testing.T) {
	s := v2fake.Start(t, v2fake.Options{})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	err := tlsTestGet(t, "https://"+s.HTTP.Listener.Addr().String(), tr)
	var te *TLSError
	require.ErrorAs(t, err, &te)
	require.Equal(t, TLSToPlainPort, te.Problem)
	var rh tls.RecordHeaderError
	require.ErrorAs(t, err, &rh)
}

// A 400 that is not the https server's sentence reaches the caller whole.
func TestTLSErrorOther400Untouched(t *testing.T) {
	s := v2fake.Start(t, v2fake.Options{})
	s.On("*", v2fake.Func(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"message":"`+strings.Repeat("x", 300)+`"}`, http.StatusBadRequest)
	}))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	err := tlsTestGet(t, s.URL, tr)
	require.False(t, errors.As(err, new(*TLSError)), "%v", err)
	// The body is JSON, so it is the server's error, as the original
	// client decodes it.
	var ke Error
	require.ErrorAs(t, err, &ke)
	require.Equal(t, strings.Repeat("x", 300), ke.Message)
}

// A connection closed by a port that speaks neither protocol (a member
// going away, say) is not taken for a scheme mismatch. A raw listener: the
// https case needs a port that reads the TLS hello and hangs up, below the
// HTTP layer a fake member scripts.
func TestTLSErrorEOFIsNotAMismatch(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Read(make([]byte, 64<<10)) // wait for the client to speak, then hang up
				c.Close()
			}
		}()
		tr := &http.Transport{}
		err = tlsTestGet(t, scheme+"://"+ln.Addr().String(), tr)
		tr.CloseIdleConnections()
		ln.Close()
		<-done
		require.Error(t, err, scheme)
		require.False(t, errors.As(err, new(*TLSError)), "%s: %v", scheme, err)
		require.ErrorIs(t, err, io.EOF, scheme)
	}
}

func TestNewTLSTransportNeedsBothCertAndKey(t *testing.T) {
	_, err := NewTLSTransport(TLSInfo{KeyFile: "key.pem"})
	require.ErrorContains(t, err, "both CertFile and KeyFile")
	tr, err := NewTLSTransport(TLSInfo{})
	require.NoError(t, err, "the zero TLSInfo: system CAs, no client certificate")
	require.Equal(t, DefaultTransport.(*http.Transport).MaxIdleConnsPerHost, tr.MaxIdleConnsPerHost)
}

// selfSigned returns a PEM certificate and key for name.
func selfSigned(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
}

// Files being rewritten: a certificate and key that do not match, or a CA
// file without a certificate yet, leave the last good ones in use; a
// complete new pair or bundle replaces them.
func TestTLSFilesKeepLastGoodDuringRotation(t *testing.T) {
	dir := t.TempDir()
	info := TLSInfo{CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem"), TrustedCAFile: filepath.Join(dir, "ca.pem")}
	c1, k1 := selfSigned(t, "one")
	c2, k2 := selfSigned(t, "two")
	write := func(path string, b []byte) { require.NoError(t, os.WriteFile(path, b, 0o600)) }
	write(info.CertFile, c1)
	write(info.KeyFile, k1)
	write(info.TrustedCAFile, c1)
	f := &tlsFiles{info: info}
	leafName := func() string {
		t.Helper()
		c, err := f.clientCert(nil)
		require.NoError(t, err)
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		require.NoError(t, err)
		return leaf.Subject.CommonName
	}
	require.Equal(t, "one", leafName())
	pool1, err := f.roots()
	require.NoError(t, err)

	write(info.CertFile, c2) // the key is not replaced yet
	require.Equal(t, "one", leafName(), "mismatched pair: the last good one")
	write(info.KeyFile, k2)
	require.Equal(t, "two", leafName(), "the new pair")

	write(info.TrustedCAFile, nil) // truncated while being rewritten
	p, err := f.roots()
	require.NoError(t, err)
	require.Same(t, pool1, p, "the last good bundle")
	write(info.TrustedCAFile, append(c1, c2...))
	p, err = f.roots()
	require.NoError(t, err)
	require.NotSame(t, pool1, p, "the new bundle")
}

// TestTLSAlertWithoutTransportWords: a certificate alert that net/http
// wraps in words of its own (it came while the connection waited between
// requests) is reported as the alert, as when it comes during a request.
func TestTLSAlertWithoutTransportWords(t *testing.T) {
	alert := &net.OpError{Op: "remote error", Err: tls.AlertError(116)}
	for _, err := range []error{alert, fmt.Errorf("readLoopPeekFailLocked: %w", alert)} {
		te := explainTLSError("https://127.0.0.1:1", err, false)
		if te == nil {
			t.Fatalf("%v: not explained", err)
		}
		if te.Problem != TLSClientCertificateRequired {
			t.Errorf("%v: problem %v", err, te.Problem)
		}
		if te.transportErr != error(alert) || te.Err != error(alert) {
			t.Errorf("%v: reported as %v / %v, want the alert", err, te.transportErr, te.Err)
		}
		if got := te.transportErr.Error(); got != "remote error: tls: certificate required" {
			t.Errorf("text %q", got)
		}
	}
}
