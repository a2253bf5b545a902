package client

import (
	"net/url"
	"runtime"
	"testing"
)

func runtimeStack(buf []byte) int { return runtime.Stack(buf, true) }

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func splitHostPort(t *testing.T, raw string) (scheme, port, host string) {
	t.Helper()
	u := mustParse(t, raw)
	return u.Scheme, u.Port(), u.Hostname()
}
