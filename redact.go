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
	// The authority starts after a scheme followed by a slash (not
	// "user:password@") and any slashes ("//", "/", none).
	start := 0
	if i := strings.IndexByte(s, ':'); i > 0 && strings.HasPrefix(s[i+1:], "/") && isScheme(s[:i]) {
		start = i + 1
	}
	for start < len(s) && s[start] == '/' {
		start++
	}
	rest := s[start:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return s
	}
	return s[:start] + redacted + rest[at:]
}

// isScheme reports whether s has the characters of a URL scheme.
func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
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
