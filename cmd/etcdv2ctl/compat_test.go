package main

// The comparison with etcdctl v2: each script runs step by step through
// etcd 3.5's etcdctl (ETCDCTL_API=2) on one fresh cluster and through
// etcdv2ctl on another of the same size, and standard output, standard
// error and exit status must be identical at every step. The two clusters
// go through the same writes, so their indexes agree and are compared as
// they are. What differs between two fresh clusters, or is not defined, is
// normalised (see target.normalize and the step fields): member IDs, names
// and URL ports (numbered leader first), key expiration times, the order of
// lines that follow random member IDs or concurrent commands, the help text
// after the first line of a usage error, the curl lines of --debug, and the
// complaints of stty(1) that etcdctl's password prompt causes when standard
// input is not a terminal.

import (
	"context"
	"fmt"
	"time"

	"github.com/etcdv2/client"
	"github.com/stretchr/testify/require"
	"regexp"
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
	{args: []string{"--endpoints", "{EP},", "get", "/foo"}},
	{args: []string{"--endpoints", "{EP},", "--no-sync", "get", "/foo"}},
	{args: []string{"get", "/foo"}, env: []string{"ETCDCTL_ENDPOINTS={EP},"}},
	{args: []string{"get", "/foo"}, env: []string{"ETCDCTL_ENDPOINT={EP}"}},
	{args: []string{"--endpoints", "http://127.0.0.1:1", "get", "/foo"}, env: []string{"ETCDCTL_ENDPOINTS={EP}"}},
	{args: []string{"--endpoints", "{EP}", "--timeout", "1s", "--total-timeout", "3s", "get", "/foo"}},
	{args: []string{"--endpoints", "{EP}", "--timeout", "0", "get", "/foo"}},
	{args: []string{ep, "--cert-file", "/nonexistent", "get", "/foo"}},
	{args: []string{ep, "--cert-file", "/nonexistent", "--key-file", "/nonexistent", "get", "/foo"}},
	{args: []string{ep, "--ca-file", "/nonexistent", "get", "/foo"}},
	{args: []string{ep, "get", "/foo"}, env: []string{"ETCDCTL_CA_FILE=/nonexistent"}},
	{args: []string{ep, "set", "/queue", "x"}},
	{args: []string{ep, "update", "/queue", "x"}},
	{args: []string{ep, "updatedir", "/foo"}},
	{args: []string{ep, "setdir", "/foo"}},
	{args: []string{ep, "mk", "--in-order", "/foo", "x"}},
	{args: []string{ep, "-o", "json", "mk", "/foo", "x"}},
	{args: []string{ep, "-o", "json", "ls", "/foo"}},
	{args: []string{ep, "-o", "extended", "ls", "/foo"}},
	{args: []string{ep, "rm", "/"}},
	{args: []string{ep, "rm", "-r", "/"}},
	{args: []string{ep, "set", "/a/b/c/d", "deep"}},
	{args: []string{ep, "ls", "-r", "-p", "/a"}},
	{args: []string{ep, "-o", "json", "get", "/a/b/c/d"}},
	{args: []string{ep, "set", "/unicode", "héllo wörld ✓"}},
	{args: []string{ep, "-o", "json", "get", "/unicode"}},
	{args: []string{ep, "set", "/html", "<a href=\"x\">&</a>"}},
	{args: []string{ep, "-o", "json", "get", "/html"}},
	{args: []string{ep, "set", "/multi", "line1\nline2\n"}},
	{args: []string{ep, "get", "/multi"}},
	{args: []string{ep, "set", "/empty", ""}},
	{args: []string{ep, "get", "/empty"}},
	{args: []string{ep, "set", "--ttl", "-5", "/neg", "x"}, usage: true},
	{args: []string{ep, "set", "--ttl=-5", "/neg", "x"}},
	{args: []string{ep, "set", "--ttl", "abc", "/neg", "x"}, usage: true},
	{args: []string{ep, "rm", "--with-index", "notanumber", "/foo"}, usage: true},
	{args: []string{ep, "watch", "--after-index", "1", "-r", "/a"}},
	{args: []string{"--endpoints", "127.0.0.1:1", "--no-sync", "get", "/foo"}},
	{args: []string{"-C", "{EP}", "ls", "--sort"}},
	{args: []string{"--timeout", "bogus", "get", "/foo"}, usage: true},
	{args: []string{ep, "set", "/sp ace", "1"}},
	{args: []string{ep, "get", "/sp ace"}},
	{args: []string{ep, "set", "/q?x=1&y", "2"}},
	{args: []string{ep, "get", "/q?x=1&y"}},
	{args: []string{ep, "set", "/h#frag", "3"}},
	{args: []string{ep, "get", "/h#frag"}},
	{args: []string{ep, "set", "/pct%20x", "4"}},
	{args: []string{ep, "get", "/pct%20x"}},
	{args: []string{ep, "set", "/ü/ñ", "5"}},
	{args: []string{ep, "set", "noslash", "6"}},
	{args: []string{ep, "get", "//noslash/"}},
	{args: []string{ep, "set", "/dots/../up", "7"}},
	{args: []string{ep, "ls", "--sort", "-r", "-p"}},
	{args: []string{ep, "-o", "json", "get", "/sp ace"}},
	{do: flood(1100)},
	{args: []string{ep, "watch", "--after-index", "1", "/foo"}},
	{args: []string{ep, "-o", "json", "watch", "--after-index", "1", "/foo"}},
	{args: []string{ep, "exec-watch", "--after-index", "1", "/foo", "--", "true"}},
	{args: []string{ep, "--debug", "get", "/foo"}, noCurl: true},
	{args: []string{ep, "--debug", "--no-sync", "set", "/foo", "dbg"}, noCurl: true},
}

// flood writes n keys, moving etcd's 1000-event watch history past the
// script's first events.
func flood(n int) func(t *testing.T, members []*testbed.Member) {
	return func(t *testing.T, members []*testbed.Member) {
		cl, err := client.New(client.Config{Endpoints: []string{members[0].URL()}})
		require.NoError(t, err)
		defer cl.Close()
		kapi := client.NewKeysAPI(cl)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := 0; i < n; i++ {
			_, err := kapi.Set(ctx, fmt.Sprintf("/flood/k%d", i%10), "v", nil)
			require.NoError(t, err)
		}
	}
}

// TestCompatKeys compares the key commands with etcdctl v2's on two fresh
// single-member clusters.
func TestCompatKeys(t *testing.T) {
	ref, ours := newTargets(t, testbed.Options{})
	compare(t, ref, ours, keysScript)
}

// membersScript exercises the member commands and cluster-health.
var membersScript = []step{
	{args: []string{ep, "member", "list"}},
	{args: []string{ep, "member", "list", "extra"}},
	{args: []string{ep, "cluster-health"}},
	{args: []string{ep, "cluster-health", "--forever"}, lines: 5},
	{args: []string{ep, "member", "add", "onlyname"}},
	{args: []string{ep, "member", "add", "m9", "notaurl"}},
	{args: []string{ep, "member", "add", "m9", "{PEER0}"}},
	{args: []string{ep, "member", "remove"}},
	{args: []string{ep, "member", "remove", "abcdef"}},
	{args: []string{ep, "member", "remove", "m0"}},
	{args: []string{ep, "member", "update", "{ID0}"}},
	{args: []string{ep, "member", "update", "{ID0}", "{PEER0}"}},
	{args: []string{ep, "member", "update", "abcdef", "http://127.0.0.1:1"}},
	{args: []string{ep, "member", "list"}},
	{args: []string{"--endpoints", "http://127.0.0.1:1", "member", "list"}},
	{args: []string{"--endpoints", "http://127.0.0.1:1", "cluster-health"}},
	{args: []string{ep, "--no-sync", "member", "list"}},
}

// TestCompatMembers compares the member commands and cluster-health with
// etcdctl v2's on two fresh single-member clusters.
func TestCompatMembers(t *testing.T) {
	ref, ours := newTargets(t, testbed.Options{})
	compare(t, ref, ours, membersScript)
}

// root is the --username flag of the auth script's root user.
const root = "--username=root:rootpw"

// authScript sets up users and roles, enables auth and checks access with
// and without credentials.
var authScript = []step{
	{args: []string{ep, "user", "list"}},
	{args: []string{ep, "user", "add", "root:rootpw"}},
	{args: []string{ep, "user", "add", "alice"}, stdin: "alicepw\n"},
	{args: []string{ep, "user", "add", "alice:again"}},
	{args: []string{ep, "user", "add"}},
	{args: []string{ep, "user", "list"}},
	{args: []string{ep, "user", "get", "alice"}},
	{args: []string{ep, "user", "get", "nobody"}},
	{args: []string{ep, "role", "add", "reader"}},
	{args: []string{ep, "role", "add", "reader"}},
	{args: []string{ep, "role", "add"}},
	{args: []string{ep, "role", "list"}},
	{args: []string{ep, "role", "grant", "--path", "/pub/*", "--read", "reader"}},
	{args: []string{ep, "role", "grant", "--path", "/pub/*", "--read", "reader"}},
	{args: []string{ep, "role", "grant", "--path", "pub/../x", "--read", "reader"}},
	{args: []string{ep, "role", "grant", "--path", "/pub/*", "reader"}},
	{args: []string{ep, "role", "grant", "--read", "reader"}},
	{args: []string{ep, "role", "grant", "--path", "/pub/*", "--read", "--write", "reader"}},
	{args: []string{ep, "role", "grant", "--path", "/pub/*", "--rw", "nosuchrole"}},
	{args: []string{ep, "role", "get", "reader"}},
	{args: []string{ep, "role", "get", "nosuchrole"}},
	{args: []string{ep, "user", "grant", "--roles", "reader", "alice"}},
	{args: []string{ep, "user", "grant", "alice"}},
	{args: []string{ep, "user", "grant", "--roles", "nosuchrole", "alice"}},
	{args: []string{ep, "user", "get", "alice"}},
	{args: []string{ep, "set", "/pub/x", "1"}},
	{args: []string{ep, "auth", "enable", "extra"}},
	{args: []string{ep, "auth", "enable"}},
	{args: []string{ep, root, "auth", "enable"}},
	{args: []string{ep, root, "role", "list"}},
	{args: []string{ep, root, "role", "get", "guest"}},
	{args: []string{ep, root, "role", "revoke", "--path", "/*", "--rw", "guest"}},
	{args: []string{ep, root, "role", "revoke", "--path", "/*", "--rw", "guest"}},
	{args: []string{ep, "get", "/pub/x"}},
	{args: []string{ep, "user", "list"}},
	{args: []string{ep, "--username", "alice:alicepw", "get", "/pub/x"}},
	{args: []string{ep, "-u", "alice:alicepw", "set", "/pub/x", "2"}},
	{args: []string{ep, "-u", "alice:wrong", "get", "/pub/x"}},
	{args: []string{ep, "-u", "alice:alicepw", "user", "list"}},
	{args: []string{ep, "-u", "alice:alicepw", "role", "add", "x"}},
	{args: []string{ep, "-u", "alice:alicepw", "auth", "disable"}},
	{args: []string{ep, "-u", "root:wrong", "user", "get", "alice"}},
	{args: []string{ep, "role", "list"}},
	{args: []string{ep, root, "user", "add", "bob"}, stdin: "bobpw\n"},
	{args: []string{ep, root, "user", "grant", "--roles", "reader,guest", "bob"}},
	{args: []string{ep, root, "user", "get", "bob"}},
	{args: []string{ep, root, "user", "list"}},
	{args: []string{ep, root, "role", "remove", "root"}},
	{args: []string{ep, root, "user", "remove", "root"}},
	{args: []string{ep, "-u", "alice", "get", "/pub/x"}, stdin: "alicepw\n"},
	{args: []string{ep, "get", "/pub/x"}, env: []string{"ETCDCTL_USERNAME=alice:alicepw"}},
	{args: []string{ep, root, "user", "passwd", "alice"}, stdin: "newpw\n"},
	{args: []string{ep, "-u", "alice:newpw", "get", "/pub/x"}},
	{args: []string{ep, root, "user", "revoke", "--roles", "reader", "alice"}},
	{args: []string{ep, root, "user", "revoke", "--roles", "reader", "alice"}},
	{args: []string{ep, root, "user", "get", "alice"}},
	{args: []string{ep, root, "user", "remove", "alice"}},
	{args: []string{ep, root, "user", "remove", "alice"}},
	{args: []string{ep, root, "role", "remove", "reader"}},
	{args: []string{ep, root, "role", "remove", "reader"}},
	{args: []string{ep, "auth", "disable"}},
	{args: []string{ep, root, "auth", "disable"}},
	{args: []string{ep, "get", "/pub/x"}},
}

// TestCompatAuth compares the user, role and auth commands, and access
// with and without credentials, with etcdctl v2's on two fresh
// single-member clusters.
func TestCompatAuth(t *testing.T) {
	ref, ours := newTargets(t, testbed.Options{})
	compare(t, ref, ours, authScript)
}

// cluster3Script runs the member commands and cluster-health on three
// members, adds and removes one, and kills a follower. Member IDs are
// random, and list and health output is ordered by ID, so their lines are
// compared as sets.
var cluster3Script = []step{
	{args: []string{ep, "member", "list"}, unordered: true},
	{args: []string{ep, "cluster-health"}, unordered: true},
	{args: []string{ep, "member", "add", "m9", "http://127.0.0.1:1"}, capture: regexp.MustCompile(`with ID ([0-9a-f]+) to`)},
	{args: []string{ep, "member", "list"}, unordered: true},
	{args: []string{ep, "cluster-health"}, unordered: true},
	{args: []string{ep, "member", "update", "{NEW}", "http://127.0.0.1:2"}},
	{args: []string{ep, "member", "remove", "{NEW}"}},
	{args: []string{ep, "member", "remove", "{NEW}"}},
	{do: func(t *testing.T, members []*testbed.Member) { members[2].Kill(t) }},
	{args: []string{ep, "--no-sync", "cluster-health"}, unordered: true},
	{args: []string{ep, "set", "/k", "v"}},
	{args: []string{ep, "-o", "extended", "get", "--quorum", "/k"}},
	{args: []string{ep, "member", "remove", "{ID2}"}},
	{args: []string{ep, "member", "list"}, unordered: true},
	{args: []string{ep, "cluster-health"}, unordered: true},
}

// TestCompatCluster3 compares etcdctl v2 and etcdv2ctl on two fresh
// three-member clusters, with a member killed midway. The members run with
// --strict-reconfig-check=false: otherwise etcd refuses a new member until
// the others have been up for 5 s, and the two clusters could answer
// differently.
func TestCompatCluster3(t *testing.T) {
	ref, ours := newTargets(t, testbed.Options{Size: 3, ExtraArgs: []string{"--strict-reconfig-check=false"}})
	compare(t, ref, ours, cluster3Script)
}

// hungScript runs commands against a hung (SIGSTOPped) member: the
// timeouts must end them with etcdctl v2's messages and exit codes.
var hungScript = []step{
	{args: []string{ep, "set", "/foo", "bar"}},
	{do: func(t *testing.T, members []*testbed.Member) { members[0].Stop(t) }},
	{args: []string{ep, "--total-timeout", "1s", "get", "/foo"}},
	{args: []string{ep, "--no-sync", "--total-timeout", "1s", "get", "/foo"}},
	{args: []string{ep, "--no-sync", "--timeout", "300ms", "--total-timeout", "2s", "set", "/foo", "x"}},
	{args: []string{ep, "--no-sync", "--timeout", "300ms", "--total-timeout", "2s", "mk", "/new", "x"}},
	{args: []string{ep, "--no-sync", "--timeout", "0", "--total-timeout", "1s", "get", "/foo"}},
	// Default flags: the sync's header timeout is no connection error, and
	// the command reports its own (exit 4; 1 for member list).
	{args: []string{ep, "get", "/foo"}},
	{args: []string{ep, "--timeout", "500ms", "get", "/foo"}},
	{args: []string{ep, "member", "list"}},
	{args: []string{ep, "--timeout", "500ms", "member", "list"}},
	{do: func(t *testing.T, members []*testbed.Member) { members[0].Continue(t) }},
	{args: []string{ep, "get", "/foo"}},
}

// TestCompatHung compares etcdctl v2 and etcdv2ctl against a hung member.
func TestCompatHung(t *testing.T) {
	ref, ours := newTargets(t, testbed.Options{})
	compare(t, ref, ours, hungScript)
}
