package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/etcdv2/client/internal/v2fake"
	"github.com/stretchr/testify/require"
)

// redirectingMembers starts n members that redirect every key request to a
// relative Location on themselves, and counts the requests they get.
func redirectingMembers(t *testing.T, n int, loc string) ([]*fakeMember, *atomic.Int64) {
	var total atomic.Int64
	ms := make([]*fakeMember, n)
	for i := range ms {
		ms[i] = newFakeMember(t, "c1")
		ms[i].setHandler(func(w http.ResponseWriter, r *http.Request) {
			total.Add(1)
			if loc != "" {
				w.Header().Set("Location", loc)
			}
			w.WriteHeader(http.StatusTemporaryRedirect)
		})
	}
	return ms, &total
}

func fakeURLs(ms []*fakeMember) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.URL
	}
	return out
}

// requireHealthy checks that no endpoint of c has a failure counted.
func requireHealthy(t *testing.T, c *httpClusterClient) {
	t.Helper()
	for _, e := range c.Stats().Endpoints {
		require.Zero(t, e.Failures, "failures counted at %s", e.URL)
		require.Equal(t, StateHealthy, e.State, "state of %s", e.URL)
	}
}

func TestCheckRedirectRefusalEndsTheCall(t *testing.T) {
	refusal := errors.New("no redirects here")
	for _, kind := range []struct {
		name string
		r    *request
	}{
		{"read", &request{method: http.MethodGet, path: "/v2/keys/k", kind: KindRead, replayable: true}},
		{"write that cannot be resent", &request{method: http.MethodPut, path: "/v2/keys/k", body: []byte("value=1"), contentType: formContentType, kind: KindWrite}},
	} {
		t.Run(kind.name, func(t *testing.T) {
			ms, total := redirectingMembers(t, 3, "/v2/keys/elsewhere")
			var vias []int
			c := newTestClient(t, Config{Endpoints: fakeURLs(ms), CheckRedirect: func(via int) error {
				vias = append(vias, via)
				return refusal
			}})
			_, err := c.do(context.Background(), kind.r)
			require.ErrorIs(t, err, refusal)
			require.NotErrorIs(t, err, ErrOutcomeUnknown, "a redirect is an answer: nothing was applied")
			var ce *ClusterError
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Errors, 1)
			require.Equal(t, []int{1}, vias, "CheckRedirect is asked once, as by the official client")
			require.EqualValues(t, 1, total.Load(), "one request sent")
			requireHealthy(t, c)
		})
	}
}

func TestTooManyRedirectsEndsTheCall(t *testing.T) {
	ms, total := redirectingMembers(t, 3, "/v2/keys/loop")
	c := newTestClient(t, Config{Endpoints: fakeURLs(ms)})
	_, err := get(c, context.Background(), "/v2/keys/loop")
	require.ErrorIs(t, err, ErrTooManyRedirects)
	require.EqualValues(t, 11, total.Load(), "the first request and the 10 redirects DefaultCheckRedirect allows, at one endpoint")
	requireHealthy(t, c)
}

func TestRedirectWithoutLocationEndsTheCall(t *testing.T) {
	ms, total := redirectingMembers(t, 3, "")
	c := newTestClient(t, Config{Endpoints: fakeURLs(ms)})
	_, err := get(c, context.Background(), "/v2/keys/k")
	require.ErrorContains(t, err, "without a usable Location")
	require.EqualValues(t, 1, total.Load())
	requireHealthy(t, c)
}

// TestCertificateFailureEndsTheCall: a server certificate the client does
// not trust fails the handshake once, not once per endpoint and round; the
// x509 error is reachable with errors.As.
func TestCertificateFailureEndsTheCall(t *testing.T) {
	var hellos atomic.Int64
	urls := make([]string, 3)
	servers := make([]*v2fake.Server, 3)
	for i := range urls {
		s := v2fake.New(v2fake.Options{})
		s.HTTP.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			hellos.Add(1)
			return nil, nil
		}}
		s.StartTLS()
		t.Cleanup(s.Close)
		urls[i], servers[i] = s.URL, s
	}
	c := newTestClient(t, Config{Endpoints: urls, Transport: &http.Transport{}})
	_, err := get(c, context.Background(), "/v2/keys/k")
	var ua x509.UnknownAuthorityError
	require.ErrorAs(t, err, &ua)
	var cv *tls.CertificateVerificationError
	require.ErrorAs(t, err, &cv)
	var ce *ClusterError
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Errors, 1)
	require.EqualValues(t, 1, hellos.Load(), "one handshake")
	for _, s := range servers {
		require.Zero(t, s.Count("*"))
	}
	requireHealthy(t, c)
}

// TestRedirectToAnotherOrigin: credentials and bodies are never sent to
// another origin, and https is never given up for http; a redirect within
// the endpoint's origin is followed with both.
func TestRedirectToAnotherOrigin(t *testing.T) {
	other := v2fake.Start(t, v2fake.Options{})
	_, otherPort, _ := splitHostPort(t, other.URL)

	var gotAuth, gotBody string
	origin := newFakeMember(t, "c1")
	origin.setHandler(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/keys/other":
			w.Header().Set("Location", other.URL+"/v2/keys/x")
		case "/v2/keys/otherport":
			w.Header().Set("Location", "http://127.0.0.1:"+otherPort+"/v2/keys/x")
		case "/v2/keys/same":
			w.Header().Set("Location", origin.URL+"/v2/keys/here") // absolute, same origin
		default:
			gotAuth = r.Header.Get("Authorization")
			b, _ := io.ReadAll(r.Body)
			gotBody = string(b)
			return
		}
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	c := newTestClient(t, Config{Endpoints: []string{origin.URL}, Username: "u", Password: "secret"})
	for _, p := range []string{"/v2/keys/other", "/v2/keys/otherport"} {
		_, err := c.do(context.Background(), &request{method: http.MethodPut, path: p, body: []byte("value=secret"), contentType: formContentType, kind: KindWrite, replayable: true})
		require.ErrorIs(t, err, ErrCrossOriginRedirect, p)
	}
	require.Zero(t, other.Count("*"), "nothing went to the other origin")
	requireHealthy(t, c)

	_, err := c.do(context.Background(), &request{method: http.MethodPut, path: "/v2/keys/same", body: []byte("value=1"), contentType: formContentType, kind: KindWrite, replayable: true})
	require.NoError(t, err)
	require.NotEmpty(t, gotAuth, "credentials follow a redirect within the origin")
	require.Equal(t, "value=1", gotBody)

	// https to http on the same host and port is another origin too.
	var plain atomic.Int64
	tlsSrv := v2fake.New(v2fake.Options{})
	tlsSrv.On("*", v2fake.Func(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			plain.Add(1)
		}
		w.Header().Set("Location", "http://"+r.Host+"/v2/keys/x")
		w.WriteHeader(http.StatusMovedPermanently)
	}))
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	tc := newTestClient(t, Config{Endpoints: []string{tlsSrv.URL}, Transport: tlsSrv.HTTP.Client().Transport.(*http.Transport), Username: "u", Password: "secret"})
	_, err = get(tc, context.Background(), "/v2/keys/k")
	require.ErrorIs(t, err, ErrCrossOriginRedirect)
	require.Zero(t, plain.Load())
}
