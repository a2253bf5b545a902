package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// TLSProblem says what went wrong in a TLSError.
type TLSProblem int

const (
	// TLSUnknownAuthority: the member's certificate does not chain to a
	// trusted CA (x509.UnknownAuthorityError).
	TLSUnknownAuthority TLSProblem = iota + 1
	// TLSNameMismatch: the member's certificate is not valid for the
	// endpoint's host (x509.HostnameError).
	TLSNameMismatch
	// TLSCertificateExpired: the member's certificate has expired or is
	// not valid yet (x509.CertificateInvalidError with reason
	// x509.Expired).
	TLSCertificateExpired
	// TLSCertificateInvalid: the member's certificate failed verification
	// for another reason (another x509.CertificateInvalidError, or a
	// *tls.CertificateVerificationError).
	TLSCertificateInvalid
	// TLSClientCertificateRequired: the member requires a client
	// certificate and the client has none (TLS alert "certificate
	// required", or "bad certificate" when none was sent).
	TLSClientCertificateRequired
	// TLSClientCertificateRejected: the member refused the client's
	// certificate (a TLS alert such as "bad certificate", "unknown
	// certificate authority" or "expired certificate").
	TLSClientCertificateRejected
	// TLSPlainHTTPToTLSPort: an http:// endpoint is served over https.
	// etcd closes the connection (io.EOF), which the client tells from a
	// member going away by a TLS handshake with the port; a plain Go
	// server answers "Client sent an HTTP request to an HTTPS server".
	TLSPlainHTTPToTLSPort
	// TLSToPlainPort: an https:// endpoint is served over plain http.
	// etcd closes the connection during the handshake (io.EOF), which the
	// client tells from a member going away by a plain GET /version; a
	// plain Go server answers in plain http (tls.RecordHeaderError).
	TLSToPlainPort
)

// String returns a short description of the problem.
func (p TLSProblem) String() string {
	switch p {
	case TLSUnknownAuthority:
		return "the member's certificate is signed by an unknown authority"
	case TLSNameMismatch:
		return "the member's certificate is not valid for the endpoint's host"
	case TLSCertificateExpired:
		return "the member's certificate has expired or is not valid yet"
	case TLSCertificateInvalid:
		return "the member's certificate is not valid"
	case TLSClientCertificateRequired:
		return "the member requires a client certificate"
	case TLSClientCertificateRejected:
		return "the member rejected the client certificate"
	case TLSPlainHTTPToTLSPort:
		return "the endpoint is http:// but the member serves https"
	case TLSToPlainPort:
		return "the endpoint is https:// but the member serves plain http"
	}
	return fmt.Sprintf("TLSProblem(%d)", int(p))
}

// fix says what to change for p.
func (p TLSProblem) fix() string {
	switch p {
	case TLSUnknownAuthority:
		return "set TLSInfo.TrustedCAFile (etcdctl --ca-file) to the CA certificate(s) that issued the members' certificates"
	case TLSNameMismatch:
		return "use an endpoint whose host name or IP address is on the member's certificate, reissue the certificate with that name, or set TLSInfo.ServerName to a name it has"
	case TLSCertificateExpired:
		return "renew the member's certificate (etcd reads it again for every new connection), or check this machine's clock"
	case TLSCertificateInvalid:
		return "reissue the member's certificate for server authentication from a trusted CA"
	case TLSClientCertificateRequired:
		return "set TLSInfo.CertFile and TLSInfo.KeyFile (etcdctl --cert-file, --key-file) to a client certificate issued by the CA of the member's --trusted-ca-file"
	case TLSClientCertificateRejected:
		return "use a client certificate and key (TLSInfo.CertFile, KeyFile) issued by the CA of the member's --trusted-ca-file, for client authentication and not expired"
	case TLSPlainHTTPToTLSPort:
		return "use an https:// endpoint, with a TLS transport (NewTLSTransport)"
	case TLSToPlainPort:
		return "use an http:// endpoint, or enable TLS on the member (--cert-file, --key-file)"
	}
	return "check the TLS settings of the client and of the member"
}

// TLSError is the failure of a TLS connection to a member, or of a request
// sent with the wrong scheme, explained: Problem says what is wrong and the
// message what to change. Err is the underlying error, reachable with
// errors.As (x509.UnknownAuthorityError, x509.HostnameError,
// x509.CertificateInvalidError, *tls.CertificateVerificationError,
// tls.RecordHeaderError, and tls.AlertError for an alert the member sent).
//
// Such a failure would be the same at every attempt, so the call ends at
// once with a *ClusterError holding it (inside an *EndpointError), without
// trying other endpoints or counting against the member's health. The
// client makes TLSErrors whatever Config.Transport is.
type TLSError struct {
	// Endpoint is the endpoint's URL.
	Endpoint string
	// Problem says what is wrong.
	Problem TLSProblem
	// Alert is the TLS alert the member sent, or 0.
	Alert tls.AlertError
	// Err is the underlying error.
	Err error

	// transportErr is the error the transport returned, as the original
	// client recorded it in ClusterError.Errors; nil when there was none
	// (an answer that shows the scheme is wrong).
	transportErr error
}

// Error names the endpoint and says what is wrong, the cause, and the fix.
// ClusterError.Errors holds the transport's error, as the original client
// did, so that the ClusterError's text is the original's; the TLSError is
// among its Attempts (errors.As, AttemptsDetail).
func (e *TLSError) Error() string {
	return fmt.Sprintf("TLS: %s: %s (%v); fix: %s", e.Endpoint, e.Problem, e.Err, e.Problem.fix())
}

// Unwrap returns Err.
func (e *TLSError) Unwrap() error { return e.Err }

// As sets a *tls.AlertError target to Alert when the member sent one.
func (e *TLSError) As(target any) bool {
	if t, ok := target.(*tls.AlertError); ok && e.Alert != 0 {
		*t = e.Alert
		return true
	}
	return false
}

// Alerts a member sends about the client's certificate.
var clientCertAlerts = []tls.AlertError{
	42,  // bad certificate
	43,  // unsupported certificate
	44,  // certificate revoked
	45,  // certificate expired
	46,  // certificate unknown
	48,  // unknown certificate authority
	116, // certificate required
}

// remoteAlert returns the alert of a "remote error" (a TLS alert the peer
// sent) and that error, or 0. crypto/tls reports it as a *net.OpError
// whose Err has the alert's text.
func remoteAlert(err error) (tls.AlertError, *net.OpError) {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || oe.Err == nil {
		return 0, nil
	}
	msg := oe.Err.Error()
	for _, a := range clientCertAlerts {
		if msg == a.Error() {
			return a, oe
		}
	}
	return 0, nil
}

// explainTLSError returns a *TLSError for a transport error that is a TLS
// problem every attempt would meet, or nil.
func explainTLSError(endpoint string, err error, sentCert bool) *TLSError {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		cv  *tls.CertificateVerificationError
		rh  tls.RecordHeaderError
		out = &TLSError{Endpoint: endpoint, Err: err, transportErr: err}
	)
	switch {
	case errors.As(err, &ua):
		out.Problem = TLSUnknownAuthority
	case errors.As(err, &he):
		out.Problem = TLSNameMismatch
	case errors.As(err, &ci):
		out.Problem = TLSCertificateInvalid
		if ci.Reason == x509.Expired {
			out.Problem = TLSCertificateExpired
		}
	case errors.As(err, &cv):
		out.Problem = TLSCertificateInvalid
	case errors.As(err, &rh):
		out.Problem = TLSToPlainPort
	default:
		a, oe := remoteAlert(err)
		if a == 0 {
			return nil
		}
		// The alert itself: net/http wraps it in words of its own
		// ("readLoopPeekFailLocked: ...") when it comes while the
		// connection waits between requests, which depends on timing.
		out.Err, out.transportErr = oe, oe
		out.Alert = a
		out.Problem = TLSClientCertificateRejected
		if a == 116 || !sentCert {
			out.Problem = TLSClientCertificateRequired
		}
	}
	return out
}

// httpsServerAnswer is the start of the body Go's https servers (etcd's
// among them) answer a plain http request with.
const httpsServerAnswer = "Client sent an HTTP request to an HTTPS server"

// tlsExplainer is the transport the client uses: Config.Transport, with
// TLS failures turned into *TLSErrors marked permanent.
type tlsExplainer struct {
	CancelableTransport
}

// RoundTrip implements http.RoundTripper.
func (t tlsExplainer) RoundTrip(req *http.Request) (*http.Response, error) {
	var sentCert bool
	if req.URL.Scheme == "https" {
		if ht, ok := t.CancelableTransport.(*http.Transport); ok && ht.TLSClientConfig != nil {
			c := ht.TLSClientConfig
			sentCert = len(c.Certificates) > 0 || c.GetClientCertificate != nil
		} else {
			sentCert = true // unknown: do not claim it sent none
		}
	}
	resp, err := t.CancelableTransport.RoundTrip(req)
	if err != nil {
		if te := explainTLSError(endpointOf(req), err, sentCert); te != nil {
			return nil, &permanentError{te}
		}
		if te := probeScheme(req, err); te != nil {
			return nil, &permanentError{te}
		}
		return nil, err
	}
	if resp.StatusCode == http.StatusBadRequest && req.URL.Scheme == "http" && resp.Header.Get("X-Etcd-Cluster-Id") == "" {
		peek := make([]byte, 128)
		n, _ := io.ReadFull(resp.Body, peek)
		peek = peek[:n]
		if bytes.Contains(peek, []byte(httpsServerAnswer)) {
			resp.Body.Close()
			msg := strings.TrimSpace(string(peek))
			return nil, &permanentError{&TLSError{Endpoint: endpointOf(req), Problem: TLSPlainHTTPToTLSPort, Err: fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)}}
		}
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
	}
	return resp, nil
}

// CloseIdleConnections closes the underlying transport's idle connections,
// if it has any.
func (t tlsExplainer) CloseIdleConnections() {
	if c, ok := t.CancelableTransport.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func endpointOf(req *http.Request) string {
	return req.URL.Scheme + "://" + req.URL.Host
}

// probeTimeout bounds probeScheme.
const probeTimeout = time.Second

// probeScheme looks, after a connection closed without an answer (io.EOF),
// whether the endpoint's port speaks the other protocol: etcd closes such
// a connection without a word when a plain http request reaches its https
// port, or a TLS handshake its plain http port. It makes one short
// connection: a TLS handshake (verifying nothing, sending no request) for
// an http:// endpoint, a plain GET /version for an https:// one. It
// returns nil when the port does not speak the other protocol either (a
// member that died mid-request, say), so that err is kept.
func probeScheme(req *http.Request, err error) *TLSError {
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	ctx, cancel := context.WithTimeout(req.Context(), probeTimeout)
	defer cancel()
	host := req.URL.Host
	if req.URL.Port() == "" {
		if req.URL.Scheme == "https" {
			host = net.JoinHostPort(req.URL.Hostname(), "443")
		} else {
			host = net.JoinHostPort(req.URL.Hostname(), "80")
		}
	}
	var d net.Dialer
	conn, derr := d.DialContext(ctx, "tcp", host)
	if derr != nil {
		return nil
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	switch req.URL.Scheme {
	case "http":
		tc := tls.Client(conn, &tls.Config{
			ServerName:         req.URL.Hostname(),
			InsecureSkipVerify: true, // only asking whether the port speaks TLS
		})
		herr := tc.HandshakeContext(ctx)
		if herr == nil || hasAlert(herr) {
			return &TLSError{Endpoint: endpointOf(req), Problem: TLSPlainHTTPToTLSPort, transportErr: err,
				Err: fmt.Errorf("%w (the member closed the connection; its port answers a TLS handshake)", err)}
		}
	case "https":
		if _, werr := io.WriteString(conn, "GET /version HTTP/1.1\r\nHost: "+req.URL.Host+"\r\nConnection: close\r\n\r\n"); werr != nil {
			return nil
		}
		b := make([]byte, 5)
		if _, rerr := io.ReadFull(conn, b); rerr == nil && string(b) == "HTTP/" {
			return &TLSError{Endpoint: endpointOf(req), Problem: TLSToPlainPort, transportErr: err,
				Err: fmt.Errorf("%w (the member closed the connection during the TLS handshake; its port answers plain http)", err)}
		}
	}
	return nil
}

// hasAlert reports whether err is a TLS alert about the client's
// certificate (see remoteAlert).
func hasAlert(err error) bool {
	a, _ := remoteAlert(err)
	return a != 0
}
