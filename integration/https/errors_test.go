package https_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// checkTLSFailure runs a read and a write on c and checks that each fails
// with a *TLSError of problem at the first attempt, naming the endpoint
// and a fix, not as an unknown outcome, and that no endpoint is counted
// as failing; as, if not nil, must be reachable with errors.As.
func checkTLSFailure(t *testing.T, c client.Client, ct *counted, endpoints []string, problem client.TLSProblem, as any) {
	t.Helper()
	kapi := client.NewKeysAPI(c)
	for _, op := range []string{"get", "set"} {
		before := ct.requests.Load()
		start := time.Now()
		var err error
		if op == "get" {
			_, err = kapi.Get(ctxT(t, 20*time.Second), "/k", nil)
		} else {
			_, err = kapi.Set(ctxT(t, 20*time.Second), "/k", "v", nil)
		}
		took := time.Since(start)
		attempts := ct.requests.Load() - before
		require.Error(t, err, op)
		require.ErrorAs(t, err, new(*client.ClusterError), op)
		var te *client.TLSError
		require.ErrorAs(t, err, &te, "%s: %v", op, err)
		require.Equal(t, problem, te.Problem, "%s: %v", op, err)
		require.Contains(t, endpoints, te.Endpoint)
		// The explanation names the endpoint and the fix; the
		// ClusterError's own text keeps the original client's shape.
		require.Contains(t, te.Error(), te.Endpoint, op)
		require.Contains(t, te.Error(), "fix: ", op)
		var ce *client.ClusterError
		require.ErrorAs(t, err, &ce, op)
		require.Contains(t, ce.AttemptsDetail(), te.Error(), op)
		require.False(t, errors.Is(err, client.ErrOutcomeUnknown), "%s: %v", op, err)
		require.Equal(t, int64(1), attempts, "%s: the call ends at the first attempt", op)
		if as != nil {
			require.ErrorAs(t, err, as, "%s: %v", op, err)
		}
		t.Logf("%s: %d attempt(s) in %s: %v", op, attempts, took.Round(time.Millisecond), err)
	}
	// The members are not blamed: no failure counted, none ejected.
	for _, es := range c.(client.StatsReporter).Stats().Endpoints {
		require.Zero(t, es.Failures, es.URL)
		require.Zero(t, es.Ejections, es.URL)
	}
}

func TestTLSFailuresSayWhatIsWrong(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 3, ClientTLS: &testbed.TLSOptions{ClientCertAuth: true}})
	eps := cl.ClientURLs()
	good := clusterTLSInfo(cl)
	other := testbed.NewCA(t, "untrusted CA")
	otherClient := other.Issue(t, testbed.CertSpec{ClientOnly: true, CommonName: "stranger"})

	// Sanity: the right files work.
	c, _ := newTLSClient(t, eps, good, client.Config{})
	_, err := client.NewKeysAPI(c).Set(ctxT(t, 20*time.Second), "/k", "v", nil)
	require.NoError(t, err)

	t.Run("UnknownAuthority", func(t *testing.T) {
		info := good
		info.TrustedCAFile = other.CertFile
		c, ct := newTLSClient(t, eps, info, client.Config{})
		checkTLSFailure(t, c, ct, eps, client.TLSUnknownAuthority, new(x509.UnknownAuthorityError))
	})
	t.Run("NameMismatch", func(t *testing.T) {
		info := good
		info.ServerName = "etcd.example.com"
		c, ct := newTLSClient(t, eps, info, client.Config{})
		checkTLSFailure(t, c, ct, eps, client.TLSNameMismatch, new(x509.HostnameError))
	})
	t.Run("NoClientCertificate", func(t *testing.T) {
		info := good
		info.CertFile, info.KeyFile = "", ""
		c, ct := newTLSClient(t, eps, info, client.Config{})
		checkTLSFailure(t, c, ct, eps, client.TLSClientCertificateRequired, new(tls.AlertError))
	})
	t.Run("UntrustedClientCertificate", func(t *testing.T) {
		info := good
		info.CertFile, info.KeyFile = otherClient.CertFile, otherClient.KeyFile
		c, ct := newTLSClient(t, eps, info, client.Config{})
		checkTLSFailure(t, c, ct, eps, client.TLSClientCertificateRejected, new(tls.AlertError))
	})
	t.Run("CallersOwnTransport", func(t *testing.T) {
		// A transport made by the caller (as etcdctl makes its own)
		// gets the same explanation.
		ct := countTransport(&http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:      other.Pool(),
			Certificates: []tls.Certificate{cl.ClientTLS().Client.TLSCertificate()},
		}})
		c, err := client.New(client.Config{Endpoints: eps, Transport: ct})
		require.NoError(t, err)
		defer c.Close()
		checkTLSFailure(t, c, ct, eps, client.TLSUnknownAuthority, new(*tls.CertificateVerificationError))
	})
	t.Run("PlainHTTPToTLSPort", func(t *testing.T) {
		plain := make([]string, len(eps))
		for i, e := range eps {
			plain[i] = "http://" + strings.TrimPrefix(e, "https://")
		}
		tr, err := client.NewTLSTransport(good)
		require.NoError(t, err)
		ct := countTransport(tr)
		c, err := client.New(client.Config{Endpoints: plain, Transport: ct})
		require.NoError(t, err)
		defer c.Close()
		checkTLSFailure(t, c, ct, plain, client.TLSPlainHTTPToTLSPort, nil)
	})
}

func TestTLSFailureExpiredAndTLSToPlainPort(t *testing.T) {
	now := time.Now()
	expired := testbed.NewCluster(t, testbed.Options{ClientTLS: &testbed.TLSOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}})
	plain := testbed.NewCluster(t, testbed.Options{Plain: true})

	t.Run("Expired", func(t *testing.T) {
		eps := expired.ClientURLs()
		c, ct := newTLSClient(t, eps, client.TLSInfo{TrustedCAFile: expired.ClientTLS().CA.CertFile}, client.Config{})
		var ci x509.CertificateInvalidError
		checkTLSFailure(t, c, ct, eps, client.TLSCertificateExpired, &ci)
		require.Equal(t, x509.Expired, ci.Reason)
	})
	t.Run("TLSToPlainPort", func(t *testing.T) {
		eps := []string{"https://" + strings.TrimPrefix(plain.ClientURLs()[0], "http://")}
		c, ct := newTLSClient(t, eps, client.TLSInfo{TrustedCAFile: expired.ClientTLS().CA.CertFile}, client.Config{})
		// etcd closes the connection: no *tls.RecordHeaderError (a
		// plain Go server's answer) but io.EOF, explained.
		checkTLSFailure(t, c, ct, eps, client.TLSToPlainPort, nil)
	})
}
