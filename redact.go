package client

import (
	"errors"
	"net/url"
	"strings"
)

// redactUserinfo returns the URL s with any user information (a
// password, or a user name that might be one) replaced by "[redacted]",
// for error messages. It works on text, so that an unparseable URL is
// redacted too.
func redactUserinfo(s string) string {
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return s
	}
	return prefix + redacted + rest[at:]
}

// endpointParseError is the error of parsing endpoint s, which failed
// with err (nil when s parsed but is not a usable endpoint), with the URL
// redacted.
func endpointParseError(s string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its URL is s, unredacted
	}
	switch {
	case err == nil:
		err = errors.New("want http://host:port or https://host:port")
	case redactUserinfo(s) != s:
		// The parser's message can quote a piece of the user
		// information (`invalid URL escape "%zz"`).
		err = errors.New("not a valid URL")
	}
	return &url.Error{Op: "parse", URL: redactUserinfo(s), Err: errors.Join(ErrInvalidEndpoint, err)}
}
