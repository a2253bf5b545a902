package observability_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/observability/etcdotel"
	"github.com/etcdv2/client/observability/etcdprom"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a
// slog handler used by several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoCredentialsInTelemetry runs clients with a username and password
// (sent as HTTP basic auth) on a real etcd cluster with auth enabled, with
// both adapters and a JSON slog handler at debug level, through answers,
// etcd errors, refused credentials and failed attempts, and checks that
// no secret reaches a metric label, a span name, attribute, event or
// status, or a log record.
func TestNoCredentialsInTelemetry(t *testing.T) {
	const (
		rootPassword  = "r00t-Pa55word-7f3a"
		userPassword  = "b0b-Pa55word-c91d"
		wrongPassword = "wr0ng-Pa55word-e42b"
	)
	cl := testbed.NewCluster(t, testbed.Options{Size: 1, Plain: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tm := newTelemetry(t)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// An endpoint nothing listens on, so that attempts fail and errors
	// are recorded in spans and logs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	newClient := func(user, password string) client.Client {
		c, err := client.New(client.Config{
			Endpoints: []string{deadURL, cl.ClientURLs()[0]},
			Selector:  client.RoundRobin(),
			Username:  user,
			Password:  password,
			Logger:    logger,
			Hooks:     client.JoinHooks(tm.prom, tm.otel),
		})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	anon := newClient("", "")
	root := newClient("root", rootPassword)
	tm.prom.Track(root)
	tm.otel.Track(root)

	require.NoError(t, client.NewAuthUserAPI(anon).AddUser(ctx, "root", rootPassword))
	require.NoError(t, client.NewAuthAPI(anon).Enable(ctx))
	users := client.NewAuthUserAPI(root)
	require.NoError(t, users.AddUser(ctx, "bob", userPassword))
	_, err = users.ChangePassword(ctx, "bob", userPassword+"2")
	require.NoError(t, err)
	kapi := client.NewKeysAPI(root)
	_, err = kapi.Set(ctx, "/secrets/k", "v", nil)
	require.NoError(t, err)
	for range 4 {
		_, err = kapi.Get(ctx, "/secrets/k", nil)
		require.NoError(t, err)
	}
	_, err = kapi.Get(ctx, "/secrets/missing", nil)
	require.True(t, client.IsKeyNotFound(err), "%v", err)
	_, err = client.NewKeysAPI(newClient("root", wrongPassword)).Get(ctx, "/secrets/k", nil)
	var ee client.Error
	require.True(t, errors.As(err, &ee) && ee.Code == client.ErrorCodeUnauthorized, "wrong password: %v", err)

	// An endpoint URL with user information is refused; were it taken,
	// the adapters would drop the user information from labels.
	withUser := strings.Replace(cl.ClientURLs()[0], "://", "://root:"+rootPassword+"@", 1)
	_, err = client.New(client.Config{Endpoints: []string{withUser}, Hooks: tm.prom})
	require.ErrorIs(t, err, client.ErrInvalidEndpoint)
	assert.Equal(t, cl.ClientURLs()[0], etcdprom.EndpointLabel(withUser))
	assert.Equal(t, cl.ClientURLs()[0], etcdotel.EndpointLabel(withUser))

	// Everything the telemetry holds, as text.
	var seen strings.Builder
	scraped, _ := tm.scrape(t)
	seen.WriteString(scraped)
	rm := tm.collect(t)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			fmt.Fprintf(&seen, "%s %s %s\n", m.Name, m.Description, m.Unit)
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					fmt.Fprintln(&seen, p.Attributes.Encoded(nil))
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					fmt.Fprintln(&seen, p.Attributes.ToSlice())
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					fmt.Fprintln(&seen, p.Attributes.ToSlice())
				}
			}
		}
	}
	spans := tm.spans.Ended()
	errorEvents := 0
	for _, s := range spans {
		fmt.Fprintln(&seen, s.Name(), s.Attributes(), s.Status())
		for _, e := range s.Events() {
			fmt.Fprintln(&seen, e.Name, e.Attributes)
			errorEvents++
		}
	}
	logged := logs.String()
	seen.WriteString(logged)

	// The capture saw the traffic: failed attempts at the dead
	// endpoint, the refused credentials, attempts logged.
	assert.Contains(t, scraped, `outcome="connect"`)
	assert.Contains(t, scraped, `etcd_client_attempts_total{endpoint="`+cl.ClientURLs()[0]+`",kind="read",outcome="ok",retry="false"}`)
	assert.Greater(t, errorEvents, 0, "errors recorded in spans")
	assert.Contains(t, logged, `"msg":"etcd attempt"`)
	assert.Contains(t, logged, `"status":401`)
	assert.Greater(t, len(spans), 10)

	all := seen.String()
	for _, secret := range []string{rootPassword, userPassword, wrongPassword, "Pa55word",
		base64.StdEncoding.EncodeToString([]byte("root:" + rootPassword)),
		base64.StdEncoding.EncodeToString([]byte("root:" + wrongPassword)),
	} {
		assert.NotContains(t, all, secret)
	}
}
