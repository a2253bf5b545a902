package integration_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client"
)

// newClientAs makes a client of urls with optional basic-auth credentials;
// it is closed when the test ends.
func newClientAs(t *testing.T, urls []string, user, password string) client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		Endpoints:               urls,
		Username:                user,
		Password:                password,
		HeaderTimeoutPerRequest: 10 * time.Second, // above the server's 7 s write timeout
		Transport:               envHTTPTransport(&http.Transport{Proxy: nil}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// keyAnswer is what keyRequest saw.
type keyAnswer struct {
	Status    int
	ErrorCode int
	Value     string
}

// rawHTTP is a plain HTTP client that keeps no connection, so nothing
// lingers for the leak check.
var rawHTTP = &http.Client{Timeout: 10 * time.Second, Transport: envHTTPTransport(&http.Transport{DisableKeepAlives: true, Proxy: nil})}

// keyRequest sends GET (value == "") or PUT (value set) /v2/keys/<key> to
// base, with basic auth when user is not empty.
func keyRequest(t *testing.T, base, key, value, user, password string) keyAnswer {
	t.Helper()
	method, body := http.MethodGet, io.Reader(nil)
	if value != "" {
		method, body = http.MethodPut, strings.NewReader(url.Values{"value": {value}}.Encode())
	}
	req, err := http.NewRequest(method, base+"/v2/keys/"+strings.TrimPrefix(key, "/"), body)
	if err != nil {
		t.Fatal(err)
	}
	if value != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := rawHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, key, err)
	}
	defer resp.Body.Close()
	var v struct {
		ErrorCode int `json:"errorCode"`
		Node      struct {
			Value string `json:"value"`
		} `json:"node"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &v)
	return keyAnswer{Status: resp.StatusCode, ErrorCode: v.ErrorCode, Value: v.Node.Value}
}
