package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
)

// ErrCrossOriginRedirect is matched by the error of an attempt that a server
// redirected to another origin (scheme, host or port) than the endpoint's:
// the client does not follow such a redirect, so that credentials and
// request bodies never go to a server the caller did not name, and https is
// never given up for plain http.
var ErrCrossOriginRedirect = errors.New("client: redirect to another origin refused")

// permanentError marks an error that the next attempt would meet again, when
// its type does not tell so: a refusal by Config.CheckRedirect, a redirect
// without a usable Location, a redirect to another origin. It is removed
// before the error reaches the caller.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent reports whether err, the failure of one attempt, would fail
// the same way on every attempt, at this endpoint or another, and returns
// it without its mark. Such an error ends the call at once (see do), and
// does not count against the endpoint's health (see classify): it is the
// caller's policy or configuration that fails, not the member. These are
//
//   - a refusal by Config.CheckRedirect, and ErrTooManyRedirects;
//   - a redirect without a usable Location, or to another origin;
//   - an answer larger than Config.MaxResponseBytes;
//   - a server certificate that fails verification (the *tls.
//     CertificateVerificationError, or the x509 error of a transport that
//     returns it bare, stays reachable with errors.As).
func permanent(err error) (bool, error) {
	if err == nil {
		return false, nil
	}
	var pe *permanentError
	if errors.As(err, &pe) {
		if pe == err {
			return true, pe.err
		}
		return true, err
	}
	if errors.Is(err, ErrTooManyRedirects) || errors.Is(err, ErrResponseTooLarge) {
		return true, err
	}
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) {
		return true, err
	}
	return false, err
}

// sameOrigin reports whether u has the origin of the endpoint e: the same
// scheme, host (case aside) and port (an omitted one is the scheme's
// default).
func sameOrigin(e, u *url.URL) bool {
	if !strings.EqualFold(e.Scheme, u.Scheme) || !strings.EqualFold(e.Hostname(), u.Hostname()) {
		return false
	}
	return originPort(e) == originPort(u)
}

func originPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}
