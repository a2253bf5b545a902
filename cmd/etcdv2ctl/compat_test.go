package main

import (
	"testing"

	"github.com/etcdv2/client/integration/testbed"
)

// ep is the --endpoints flag for a script step.
const ep = "--endpoints={EP}"

// keysScript exercises the key commands, their flags and errors, in every
// output format.
var keysScript = []step{
	{args: []string{ep, "set", "/foo", "bar"}},
	{args: []string{"get", "/foo"}, env: []string{"ETCDCTL_ENDPOINTS={EP}"}},
	{args: []string{ep, "-o", "extended", "get", "/foo"}},
	{args: []string{ep, "--output", "json", "get", "/foo"}},
	{args: []string{ep, "get", "/nokey"}},
	{args: []string{ep, "-o", "json", "get", "/nokey"}},
	{args: []string{ep, "-o", "extended", "get", "/nokey"}},
	{args: []string{ep, "get"}},
	{args: []string{ep, "mk", "/foo", "x"}},
	{args: []string{ep, "mk", "/new", "v"}},
	{args: []string{ep, "-o", "extended", "mk", "--ttl", "100", "/ttlkey", "v"}},
	{args: []string{ep, "-o", "json", "mk", "--in-order", "/queue", "job1"}},
	{args: []string{ep, "mk", "--in-order", "/queue", "job2"}},
	{args: []string{ep, "ls", "--sort", "/queue"}},
	{args: []string{ep, "mkdir", "/dir"}},
	{args: []string{ep, "mkdir", "/dir"}},
	{args: []string{ep, "-o", "extended", "mkdir", "/dir2"}},
	{args: []string{ep, "setdir", "/dir"}},
	{args: []string{ep, "-o", "json", "setdir", "--ttl", "100", "/dir3"}},
	{args: []string{ep, "updatedir", "--ttl", "200", "/dir"}},
	{args: []string{ep, "-o", "extended", "updatedir", "/dir"}},
	{args: []string{ep, "updatedir", "/nodir"}},
	{args: []string{ep, "get", "/dir"}},
	{args: []string{ep, "update", "/foo", "baz"}},
	{args: []string{ep, "update", "/missing", "x"}},
	{args: []string{ep, "-o", "extended", "update", "--ttl", "50", "/foo", "baz2"}},
	{args: []string{ep, "set", "--swap-with-value", "wrong", "/foo", "v"}},
	{args: []string{ep, "set", "--swap-with-value", "baz2", "/foo", "v2"}},
	{args: []string{ep, "set", "--swap-with-index", "1", "/foo", "v3"}},
	{args: []string{ep, "-o", "extended", "set", "/foo", "v4"}},
	{args: []string{ep, "set", "/stdin"}, stdin: "from stdin\n"},
	{args: []string{ep, "get", "/stdin"}},
	{args: []string{ep, "set", "/novalue"}},
	{args: []string{ep, "set", "--", "/dash", "-value"}},
	{args: []string{ep, "get", "/dash"}},
	{args: []string{ep, "set", "/dir/a", "1"}},
	{args: []string{ep, "set", "/dir/sub/b", "2"}},
	{args: []string{ep, "set", "/dir/_hidden", "3"}},
	{args: []string{ep, "ls", "--sort"}},
	{args: []string{ep, "ls", "--sort", "--recursive", "/"}},
	{args: []string{ep, "ls", "-r", "-p", "--sort", "/dir"}},
	{args: []string{ep, "ls", "/dir", "-p", "--sort"}},
	{args: []string{ep, "ls", "/foo"}},
	{args: []string{ep, "ls", "/nodir"}},
	{args: []string{ep, "-o", "json", "ls", "--sort", "-r", "/dir"}},
	{args: []string{ep, "-o", "extended", "ls", "/dir/sub"}},
	{args: []string{ep, "get", "--quorum", "/dir/a"}},
	{args: []string{ep, "--no-sync", "get", "-q", "/dir/a"}},
	{args: []string{ep, "rm", "/dir"}},
	{args: []string{ep, "rm", "--dir", "/dir"}},
	{args: []string{ep, "rmdir", "/dir/sub"}},
	{args: []string{ep, "rmdir", "/dir2"}},
	{args: []string{ep, "-o", "extended", "rmdir", "/dir3"}},
	{args: []string{ep, "rm", "--with-value", "nope", "/dir/a"}},
	{args: []string{ep, "rm", "--with-index", "1", "/dir/a"}},
	{args: []string{ep, "-o", "extended", "rm", "--with-value", "1", "/dir/a"}},
	{args: []string{ep, "-o", "json", "rm", "/new"}},
	{args: []string{ep, "rm", "/stdin"}},
	{args: []string{ep, "rm", "-r", "/dir"}},
	{args: []string{ep, "rm", "/gone"}},
	{args: []string{ep, "rm"}},
	{args: []string{ep, "watch", "--after-index", "1", "/foo"}},
	{args: []string{ep, "watch", "-r", "--after-index", "1", "/dir"}},
	{args: []string{ep, "-o", "extended", "watch", "--after-index", "1", "/foo"}},
	{args: []string{ep, "-o", "json", "watch", "--recursive", "--after-index", "1", "/queue"}},
	{args: []string{ep, "watch", "--forever", "-r", "--after-index", "1", "/dir"}, lines: 8},
	{args: []string{ep, "watch"}},
	{args: []string{ep, "exec-watch", "--after-index", "1", "/foo", "--", "sh", "-c", "echo $ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_MODIFIED_INDEX"}, lines: 5, unordered: true},
	{args: []string{ep, "exec-watch", "/dir"}},
	{args: []string{ep, "get", "--bogus", "/foo"}, usage: true},
	{args: []string{"--bogus", "get", "/foo"}, usage: true},
	{args: []string{ep, "-o", "yaml", "get", "/foo"}},
	{args: []string{ep, "nosuchcommand"}},
	{args: []string{"--endpoints", "http://127.0.0.1:1", "get", "/foo"}},
	{args: []string{"--endpoints", "http://127.0.0.1:1", "--no-sync", "get", "/foo"}},
	{args: []string{"--peers", "{EP}", "get", "/foo"}},
	{args: []string{"get", "/foo"}, env: []string{"ETCDCTL_PEERS={EP}"}},
	{args: []string{"--endpoint", "{EP}", "get", "/foo"}},
	{args: []string{"--endpoints", "{EP}", "--timeout", "1s", "--total-timeout", "3s", "get", "/foo"}},
}

// TestCompatKeys compares the key commands with etcdctl v2's on two fresh
// single-member clusters.
func TestCompatKeys(t *testing.T) {
	ref, ours := newTargets(t, testbed.Options{})
	compare(t, ref, ours, keysScript)
}
