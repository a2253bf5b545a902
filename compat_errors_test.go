package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOutcomeUnknownReadsAsOriginal: a write whose outcome is unknown (the
// server answered 500) reads as the original client's error for the same
// failure, and still matches ErrOutcomeUnknown: a bare error for a create
// and an in-order create, a *ClusterError for other writes.
func TestOutcomeUnknownReadsAsOriginal(t *testing.T) {
	failing := newFakeMember(t, "c1")
	failing.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request timed out","index":0}`)
	})
	c := newTestClient(t, Config{Endpoints: []string{failing.URL}})
	k := NewKeysAPI(c)
	ctx := context.Background()
	noLeader := "client: etcd member " + failing.URL + " has no leader"

	for name, call := range map[string]func() error{
		"create":          func() error { _, err := k.Create(ctx, "/a", "v"); return err },
		"set prevNoExist": func() error { _, err := k.Set(ctx, "/a", "v", &SetOptions{PrevExist: PrevNoExist}); return err },
		"in-order create": func() error { _, err := k.CreateInOrder(ctx, "/q", "v", nil); return err },
	} {
		err := call()
		var oe *OutcomeUnknownError
		require.True(t, errors.As(err, &oe), "%s: %T %v", name, err, err)
		require.Same(t, oe, err, "%s: the bare error, as the original", name)
		require.Equal(t, noLeader, err.Error(), name)
		require.ErrorIs(t, err, ErrOutcomeUnknown, name)
		require.Contains(t, oe.Detail(), "outcome of the write is unknown", name)
		require.ErrorIs(t, err, Error{Code: ErrorCodeRaftInternal}, name)
	}

	for name, call := range map[string]func() error{
		"compare and swap": func() error { _, err := k.Set(ctx, "/a", "v", &SetOptions{PrevValue: "x"}); return err },
		"update":           func() error { _, err := k.Update(ctx, "/a", "v"); return err },
		"delete":           func() error { _, err := k.Delete(ctx, "/a", nil); return err },
	} {
		err := call()
		var ce *ClusterError
		require.True(t, errors.As(err, &ce), "%s: %T %v", name, err, err)
		require.Equal(t, "client: etcd cluster is unavailable or misconfigured; error #0: "+noLeader+"\n", err.Error(), name)
		require.Equal(t, "error #0: "+noLeader+"\n", ce.Detail(), name)
		require.ErrorIs(t, err, ErrOutcomeUnknown, name)
		var oe *OutcomeUnknownError
		require.ErrorAs(t, err, &oe, name)
		require.Equal(t, failing.URL, oe.Endpoint, name)
	}
	require.EqualValues(t, 6, failing.keyHits(), "each write was sent once")
}
