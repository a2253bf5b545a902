package concurrency

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
)

// unreachable is a KeysAPI whose every call fails as if no member answered:
// the error paths below never reach a server.
type unreachable struct{ client.KeysAPI }

func TestSessionOptionsRejected(t *testing.T) {
	for _, ttl := range []time.Duration{time.Second, 2500 * time.Millisecond, -time.Second} {
		_, err := NewSession(unreachable{}, WithTTL(ttl))
		require.Error(t, err, "TTL %v", ttl)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	e := envelope{Kind: kindElection, Owner: newID(), Session: newID(), Value: `a "quoted" value`, Limit: 3}
	got, ok := decodeEnvelope(e.encode())
	require.True(t, ok)
	require.Equal(t, e, got)
	for _, bad := range []string{"", "x", `{"kind":"mutex"}`, `{"owner":"o"}`} {
		_, ok := decodeEnvelope(bad)
		require.False(t, ok, bad)
	}
	require.Len(t, newID(), 32)
	require.NotEqual(t, newID(), newID())
}

func TestLeaderOfForeignValue(t *testing.T) {
	l := leaderOf(&client.Node{Key: "/e/1", Value: "raw", CreatedIndex: 7})
	require.Equal(t, Leader{Key: "/e/1", Value: "raw", Token: 7}, l)
}

func TestApplyEvent(t *testing.T) {
	c := map[string]*client.Node{}
	applyEvent(c, "/e", &client.Response{Action: "create", Node: &client.Node{Key: "/e2/1", CreatedIndex: 1}})
	applyEvent(c, "/e", &client.Response{Action: "create", Node: &client.Node{Key: "/e/2", CreatedIndex: 2}})
	applyEvent(c, "/e", &client.Response{Action: "create", Node: &client.Node{Key: "/e/3", CreatedIndex: 3}})
	applyEvent(c, "/e", &client.Response{Action: "set", Node: &client.Node{Key: "/e/3/deeper", CreatedIndex: 4}})
	applyEvent(c, "/e", &client.Response{Action: "set", Node: &client.Node{Key: "/other", CreatedIndex: 5}})
	require.Len(t, c, 2)
	applyEvent(c, "/e", &client.Response{Action: "expire", Node: &client.Node{Key: "/e/2"}})
	require.Len(t, c, 1)
	applyEvent(c, "/e", &client.Response{Action: "delete", Node: &client.Node{Key: "/e2", Dir: true}})
	require.Len(t, c, 1)
	applyEvent(c, "/p/e", &client.Response{Action: "create", Node: &client.Node{Key: "/p/e/9", CreatedIndex: 9}})
	require.Len(t, c, 2)
	applyEvent(c, "/p/e", &client.Response{Action: "expire", Node: &client.Node{Key: "/p", Dir: true}})
	require.Empty(t, c)
}

func TestErrorsMatch(t *testing.T) {
	require.True(t, errCode(client.Error{Code: 100}, client.ErrorCodeKeyNotFound))
	require.True(t, serverRefused(client.Error{Code: 101}))
	require.False(t, serverRefused(context.DeadlineExceeded))
	require.False(t, serverRefused(&client.OutcomeUnknownError{Endpoint: "x", Err: errors.New("reset")}))
	require.False(t, serverRefused(&client.OutcomeUnknownError{Endpoint: "x", Err: client.Error{Code: client.ErrorCodeRaftInternal}}))
	require.False(t, serverRefused(client.Error{Code: client.ErrorCodeLeaderElect}))
	require.True(t, serverRefused(client.Error{Code: client.ErrorCodeUnauthorized}))

	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	require.True(t, notSent(&client.ClusterError{Errors: []error{refused}, Attempts: []error{&client.EndpointError{Endpoint: "x", Err: refused}}}))
	require.False(t, notSent(&client.OutcomeUnknownError{Endpoint: "x", Err: errors.New("reset")}))
	require.False(t, notSent(&client.ClusterError{Attempts: []error{&client.EndpointError{Endpoint: "x", Err: refused}, &client.OutcomeUnknownError{Endpoint: "y", Err: errors.New("reset")}}}))
	require.False(t, notSent(client.Error{Code: client.ErrorCodeRaftInternal}))
	require.False(t, notSent(&client.Error{Code: client.ErrorCodeLeaderElect}))
}
