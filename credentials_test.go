package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCredentialsNeverPrinted: printing a client or its Config, with any
// verb or through slog, shows neither the password nor the Authorization
// header value.
func TestCredentialsNeverPrinted(t *testing.T) {
	const password = "s3cret-Pa55"
	m := newFakeMember(t, "c1")
	cfg := Config{Endpoints: []string{m.URL}, Username: "alice", Password: password}
	c, err := New(cfg)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.GetVersion(context.Background()) // headers built and used
	require.NoError(t, err)
	header := base64.StdEncoding.EncodeToString([]byte("alice:" + password))

	var logged bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logged, nil), slog.NewTextHandler(&logged, nil)} {
		slog.New(h).Info("config", "cfg", cfg, "client", c, "ptr", &cfg)
	}
	outputs := map[string]string{"slog": logged.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outputs["client "+verb] = fmt.Sprintf(verb, c)
		outputs["config "+verb] = fmt.Sprintf(verb, cfg)
		outputs["config pointer "+verb] = fmt.Sprintf(verb, &cfg)
		outputs["credentials "+verb] = fmt.Sprintf(verb, c.(*httpClusterClient).creds)
	}
	for name, out := range outputs {
		require.NotContains(t, out, password, name)
		require.NotContains(t, out, header, name)
		require.NotContains(t, out, "Basic ", name)
	}
	require.Contains(t, outputs["client %+v"], m.URL, "the client still says what it is")
	require.Contains(t, outputs["config %+v"], "alice")
	require.Contains(t, outputs["slog"], "alice")
}

// TestPasswordWithoutUsernameNotSent: as with the original client, a
// password alone sends no credentials (the requests stay a guest's, and
// the password goes nowhere); with a user name both are sent.
func TestPasswordWithoutUsernameNotSent(t *testing.T) {
	auth := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
		w.Header().Set("X-Etcd-Index", "1")
		w.Write([]byte(`{"action":"get","node":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		user string
		want string
	}{
		{"", ""},
		{"alice", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:only-a-password"))},
	} {
		c, err := New(Config{Endpoints: []string{srv.URL}, Username: tc.user, Password: "only-a-password"})
		require.NoError(t, err)
		_, err = NewKeysAPI(c).Get(context.Background(), "/k", nil)
		require.NoError(t, err)
		require.Equal(t, tc.want, <-auth, "user %q", tc.user)
		c.Close()
	}
}
