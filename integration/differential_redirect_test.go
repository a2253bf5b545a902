package integration_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	official "go.etcd.io/etcd/client/v2"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// redirectFront stands in front of a real member: a request below /r/ is
// passed to the member without that prefix; any other is redirected, to
// the same URL below /r/ (mode "once") or to itself (mode "loop"). It
// counts the requests it gets.
type redirectFront struct {
	*httptest.Server
	mode     atomic.Value // string
	requests atomic.Int64
}

func newRedirectFront(t *testing.T, member string) *redirectFront {
	target, err := url.Parse(member)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	f := &redirectFront{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/r/"); ok {
			r.URL.Path = "/" + rest
			r.URL.RawPath = ""
			proxy.ServeHTTP(w, r)
			return
		}
		f.requests.Add(1)
		loc := f.URL + "/r" + r.URL.RequestURI()
		if f.mode.Load() == "loop" {
			loc = f.URL + r.URL.RequestURI()
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	t.Cleanup(f.Close)
	return f
}

// redirectOutcome is what one scenario shows of a client.
type redirectOutcome struct {
	Calls    []int // the arguments CheckRedirect was called with
	Requests int64 // requests the redirecting front got
	Action   string
	Value    string
	// Err describes a failure: the type of the error, how many errors
	// it lists, and whether it matches the refusal or ErrTooManyRedirects.
	Err string
}

type redirectScenario struct {
	name   string
	mode   string
	refuse bool
	run    func(ctx context.Context, set func(k, v string) (string, string, error), get func(k string) (string, string, error)) (string, string, error)
}

var redirectScenarios = []redirectScenario{
	{"refused", "once", true, func(_ context.Context, _ func(k, v string) (string, string, error), get func(string) (string, string, error)) (string, string, error) {
		return get("/redirect/a")
	}},
	{"refused write", "once", true, func(_ context.Context, set func(k, v string) (string, string, error), _ func(string) (string, string, error)) (string, string, error) {
		return set("/redirect/a", "1")
	}},
	{"followed write", "once", false, func(_ context.Context, set func(k, v string) (string, string, error), _ func(string) (string, string, error)) (string, string, error) {
		return set("/redirect/b", "2")
	}},
	{"followed read", "once", false, func(_ context.Context, _ func(k, v string) (string, string, error), get func(string) (string, string, error)) (string, string, error) {
		return get("/redirect/b")
	}},
	{"too many", "loop", false, func(_ context.Context, _ func(k, v string) (string, string, error), get func(string) (string, string, error)) (string, string, error) {
		return get("/redirect/b")
	}},
}

var errRefusedRedirect = errors.New("redirect refused by the caller")

// describeRedirectErr describes a failure by what both libraries share:
// a cluster error listing errs (nil for another error), and whether those
// are the caller's refusal or ErrTooManyRedirects.
func describeRedirectErr(err error, errs []error) string {
	if err == nil {
		return ""
	}
	if errs == nil {
		return "other: " + err.Error()
	}
	s := "cluster error of " + strconv.Itoa(len(errs))
	for _, e := range errs {
		if errors.Is(e, errRefusedRedirect) {
			s += ", refusal"
		}
		if errors.Is(e, client.ErrTooManyRedirects) || errors.Is(e, official.ErrTooManyRedirects) {
			s += ", too many redirects"
		}
	}
	return s
}

// TestDifferentialRedirects runs redirect scenarios through this client
// and the official one, each behind its own redirecting front to one real
// member, and compares what CheckRedirect was asked, the requests sent
// and the results.
func TestDifferentialRedirects(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := testbed.NewCluster(t, testbed.Options{Size: 1})
	member := cl.ClientURLs()[0]

	run := func(s redirectScenario, ours bool) redirectOutcome {
		front := newRedirectFront(t, member)
		front.mode.Store(s.mode)
		var mu sync.Mutex
		var out redirectOutcome
		check := func(via int) error {
			mu.Lock()
			out.Calls = append(out.Calls, via)
			mu.Unlock()
			if s.refuse {
				return errRefusedRedirect
			}
			if via > 10 {
				return client.ErrTooManyRedirects
			}
			return nil
		}
		var set func(k, v string) (string, string, error)
		var get func(k string) (string, string, error)
		var describe func(error) string
		if ours {
			c := newClient(t, client.Config{Endpoints: []string{front.URL}, CheckRedirect: check})
			k := client.NewKeysAPI(c)
			set = func(key, v string) (string, string, error) {
				r, err := k.Set(ctx, key, v, nil)
				if err != nil {
					return "", "", err
				}
				return r.Action, r.Node.Value, nil
			}
			get = func(key string) (string, string, error) {
				r, err := k.Get(ctx, key, nil)
				if err != nil {
					return "", "", err
				}
				return r.Action, r.Node.Value, nil
			}
			describe = func(err error) string {
				var ce *client.ClusterError
				if errors.As(err, &ce) {
					return describeRedirectErr(err, ce.Errors)
				}
				return describeRedirectErr(err, nil)
			}
		} else {
			c, err := official.New(official.Config{Endpoints: []string{front.URL}, Transport: official.DefaultTransport, CheckRedirect: check})
			require.NoError(t, err)
			k := official.NewKeysAPI(c)
			set = func(key, v string) (string, string, error) {
				r, err := k.Set(ctx, key, v, nil)
				if err != nil {
					return "", "", err
				}
				return r.Action, r.Node.Value, nil
			}
			get = func(key string) (string, string, error) {
				r, err := k.Get(ctx, key, nil)
				if err != nil {
					return "", "", err
				}
				return r.Action, r.Node.Value, nil
			}
			describe = func(err error) string {
				var ce *official.ClusterError
				if errors.As(err, &ce) {
					return describeRedirectErr(err, ce.Errors)
				}
				return describeRedirectErr(err, nil)
			}
		}
		action, value, err := s.run(ctx, set, get)
		out.Action, out.Value, out.Err = action, value, describe(err)
		out.Requests = front.requests.Load()
		return out
	}

	differing := 0
	for _, s := range redirectScenarios {
		want := run(s, false)
		got := run(s, true)
		if !assert.Equal(t, want, got, "step %q", s.name) {
			differing++
		}
		t.Logf("%-15s calls=%v requests=%d action=%q value=%q err=%q", s.name, got.Calls, got.Requests, got.Action, got.Value, got.Err)
	}
	require.Zero(t, differing, "differing steps")
}
