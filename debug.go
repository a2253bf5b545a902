package client

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
)

// curlDebug is switched by EnablecURLDebug and DisablecURLDebug, the
// original client's package-level switch.
var curlDebug atomic.Bool

// curlOut is where the curl commands go: standard error, or a buffer in
// tests. curlMu guards it and keeps lines whole.
var (
	curlMu  sync.Mutex
	curlOut io.Writer = os.Stderr
)

// EnablecURLDebug makes every client print each request it sends to
// standard error as an equivalent curl command, in the original client's
// format:
//
//	cURL Command: curl -X PUT http://127.0.0.1:2379/v2/keys/a -d "value=1"
//
// A body that carries a password is shown as -d "<redacted>".
func EnablecURLDebug() { curlDebug.Store(true) }

// DisablecURLDebug turns off what EnablecURLDebug turned on.
func DisablecURLDebug() { curlDebug.Store(false) }

func printcURL(r *request, u *url.URL) {
	if !curlDebug.Load() {
		return
	}
	line := "cURL Command: " + curlCommand(r, u)
	curlMu.Lock()
	defer curlMu.Unlock()
	fmt.Fprintln(curlOut, line)
}

// curlCommand formats r as the original client did: the method, the URL
// as it is sent, and the body, if any, quoted as Go quotes strings.
func curlCommand(r *request, u *url.URL) string {
	if u.Opaque != "" {
		// The request URI sent as is (request.uri): print it as the
		// path and the query it holds.
		v := *u
		v.Opaque, v.RawQuery = "", r.query
		u = &v
	}
	s := fmt.Sprintf("curl -X %s %s", r.method, u)
	if len(r.body) > 0 || r.contentType != "" { // a request with a body, even an empty one
		if r.sensitive {
			s += ` -d "<redacted>"`
		} else {
			s += fmt.Sprintf(" -d %q", r.body)
		}
	}
	return s
}
