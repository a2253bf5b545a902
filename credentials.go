package client

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
)

// redacted stands for a secret in printed values.
const redacted = "[redacted]"

// credentials are the basic-auth credentials of a client. Every way of
// printing them (String, GoString, LogValue, and so fmt's %v, %+v, %#v and
// slog) shows the user name only.
type credentials struct {
	username, password string
	// header is the Authorization header value, or "".
	header string
}

func newCredentials(username, password string) credentials {
	cr := credentials{username: username, password: password}
	// As the original client: a password alone is not sent.
	if username != "" {
		cr.header = "Basic " + base64.StdEncoding.EncodeToString([]byte(username+":"+password))
	}
	return cr
}

// String shows the user name, and whether there is a password.
func (cr credentials) String() string {
	if cr.header == "" {
		return "none"
	}
	return fmt.Sprintf("user %q, password %s", cr.username, redacted)
}

// GoString is String, for %#v.
func (cr credentials) GoString() string { return cr.String() }

// LogValue shows the user name only.
func (cr credentials) LogValue() slog.Value {
	if cr.header == "" {
		return slog.StringValue("none")
	}
	return slog.GroupValue(slog.String("username", cr.username), slog.String("password", redacted))
}

// String describes the client without its credentials' secrets.
func (c *httpClusterClient) String() string {
	var b strings.Builder
	b.WriteString("client{endpoints: [")
	if set := c.eps.Load(); set != nil {
		for i, e := range set.list {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(e.raw)
		}
	}
	fmt.Fprintf(&b, "], credentials: %s, closed: %t}", c.creds, c.closed.Load())
	return b.String()
}

// GoString is String, for %#v.
func (c *httpClusterClient) GoString() string { return c.String() }

// LogValue describes the client for slog, without secrets.
func (c *httpClusterClient) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("endpoints", c.Endpoints()), slog.Any("credentials", c.creds), slog.Bool("closed", c.closed.Load()))
}

// configView is Config without its methods, for printing.
type configView Config

// String prints the Config as %+v would, with the password redacted.
func (cfg Config) String() string {
	v := configView(cfg)
	if v.Password != "" {
		v.Password = redacted
	}
	return fmt.Sprintf("%+v", v)
}

// GoString is String, for %#v.
func (cfg Config) GoString() string { return "client.Config" + cfg.String() }

// LogValue describes the Config for slog, with the password redacted.
func (cfg Config) LogValue() slog.Value {
	pw := ""
	if cfg.Password != "" {
		pw = redacted
	}
	return slog.GroupValue(
		slog.Any("endpoints", cfg.Endpoints),
		slog.String("username", cfg.Username),
		slog.String("password", pw),
		slog.Duration("header_timeout_per_request", cfg.HeaderTimeoutPerRequest),
		slog.Int("rounds", cfg.Rounds),
		slog.Int("selection_mode", int(cfg.SelectionMode)),
		slog.Bool("monotonic_reads", cfg.MonotonicReads),
		slog.Bool("resend_unconditional_sets", cfg.ResendUnconditionalSets),
		slog.Int64("max_response_bytes", cfg.MaxResponseBytes),
	)
}
