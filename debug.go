package client

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
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
// standard error as an equivalent curl command. Credentials are left out,
// and bodies that carry a password are shown as <redacted>.
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

func curlCommand(r *request, u *url.URL) string {
	var b strings.Builder
	b.WriteString("curl -X ")
	b.WriteString(r.method)
	b.WriteString(" ")
	b.WriteString(shellQuote(u.String()))
	if r.contentType != "" {
		b.WriteString(" -H ")
		b.WriteString(shellQuote("Content-Type: " + r.contentType))
	}
	if len(r.body) > 0 {
		b.WriteString(" -d ")
		if r.sensitive {
			b.WriteString("'<redacted>'")
		} else {
			b.WriteString(shellQuote(string(r.body)))
		}
	}
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
