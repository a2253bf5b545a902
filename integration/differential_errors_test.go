package integration_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	official "go.etcd.io/etcd/client/v2"

	"github.com/etcdv2/client"
)

// TestDifferentialFailureTexts: when no endpoint gives an answer (all
// refused, not etcd, hung), this client's error has the official client's
// text, its ClusterError the same Detail and entries of the same kinds,
// so that programs inspecting them (etcdctl's exit codes) behave the same.
func TestDifferentialFailureTexts(t *testing.T) {
	t.Parallel()
	notEtcd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<html>not etcd</html>")
	}))
	defer notEtcd.Close()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	status := func(code int, body string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
		}))
		t.Cleanup(s.Close)
		return s
	}
	notFound := status(404, "<html>no such page</html>")
	badGateway := status(502, "<html>bad gateway</html>")
	unavailable := status(503, `{"message":"etcdserver: no leader"}`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()

	type outcome struct {
		text, detail string
		types        []string
	}
	describe := func(err error) outcome {
		o := outcome{text: fmt.Sprint(err)}
		var oc *official.ClusterError
		var cc *client.ClusterError
		var entries []error
		switch {
		case errors.As(err, &oc):
			o.detail, entries = oc.Detail(), oc.Errors
		case errors.As(err, &cc):
			o.detail, entries = cc.Detail(), cc.Errors
		}
		for _, e := range entries {
			o.types = append(o.types, entryKind(e))
		}
		return o
	}
	for _, sc := range []struct {
		name string
		eps  []string
	}{
		{"refused", []string{refused}},
		{"not etcd", []string{notEtcd.URL}},
		{"hung", []string{hang.URL}},
		{"404 not etcd", []string{notFound.URL}},
		{"502", []string{badGateway.URL}},
		{"503", []string{unavailable.URL}},
		{"400 JSON not etcd", []string{status(400, `{"message":"bad"}`).URL}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			oc, err := official.New(official.Config{Endpoints: sc.eps, Transport: tr, HeaderTimeoutPerRequest: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, oerr := official.NewKeysAPI(oc).Get(ctx, "/a", nil)
			k, _ := newKeys(t, client.Config{Endpoints: sc.eps, HeaderTimeoutPerRequest: 300 * time.Millisecond})
			_, cerr := k.Get(ctx, "/a", nil)
			want, got := describe(oerr), describe(cerr)
			if fmt.Sprint(want) != fmt.Sprint(got) {
				t.Errorf("official: %#v\nours:     %#v", want, got)
			}
			t.Logf("%#v", got)
		})
	}
}

// entryKind is what a type switch of the official client's users (etcdctl's
// isConnectionError) can tell of a ClusterError entry.
func entryKind(e error) string {
	switch t := e.(type) {
	case *net.OpError:
		return "*net.OpError " + t.Op
	case syscall.Errno:
		return "syscall.Errno " + t.Error()
	case net.Error:
		return fmt.Sprintf("net.Error timeout=%v", t.Timeout())
	}
	return "other"
}
