package client

import "testing"

// TestPlainKeyURLMatchesFull: the fast path gives what the full
// canonicalization gives, on every key it accepts.
func TestPlainKeyURLMatchesFull(t *testing.T) {
	for _, prefix := range []string{"/v2/keys", "", "/custom/pre"} {
		k := NewKeysAPIWithPrefix(nil, prefix).(*httpKeysAPI)
		for _, key := range []string{"a", "/a", "/a/", "a/b/c", "/a/b/c/", "/registry/nodes/n-1.x_y~z", "/.hidden", "/a..b", "/...", "/_x",
			"", "/", "//", "/a//b", "/a/./b", "/a/../b", "/a/.", "/a/..", "./a", "../a", "/a b", "/a?b", "/a#b", "/a%b", "/ü", "/a/b//"} {
			full := k.fullKeyURL(key)
			fast, ok := k.plainKeyURL(key)
			if !ok {
				continue
			}
			if fast.path != full.path || (full.rawPath != fast.rawPath && full.rawPath != "") {
				t.Errorf("prefix %q key %q: fast %+v, full %+v", prefix, key, fast, full)
			}
		}
		for _, key := range []string{"", "/", "//", "/a//b", "/a/./b", "/a/../b", "/a/.", "/a/..", "./a", "../a", "/a b", "/a?b", "/a#b", "/a%b", "/ü"} {
			if _, ok := k.plainKeyURL(key); ok {
				t.Errorf("prefix %q: %q taken by the fast path", prefix, key)
			}
		}
	}
}
