package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	official "go.etcd.io/etcd/client/v2"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

// apiDriver runs the member and auth calls of one client library; values
// come back as JSON so that both libraries' types compare.
type apiDriver struct {
	list           func(context.Context) (any, error)
	add            func(context.Context, string) (any, error)
	remove         func(context.Context, string) error
	update         func(context.Context, string, []string) error
	leader         func(context.Context) (any, error)
	enable         func(context.Context) error
	disable        func(context.Context) error
	addUser        func(context.Context, string, string) error
	removeUser     func(context.Context, string) error
	getUser        func(context.Context, string) (any, error)
	grantUser      func(context.Context, string, []string) (any, error)
	revokeUser     func(context.Context, string, []string) (any, error)
	changePassword func(context.Context, string, string) (any, error)
	listUsers      func(context.Context) ([]string, error)
	addRole        func(context.Context, string) error
	removeRole     func(context.Context, string) error
	getRole        func(context.Context, string) (any, error)
	grantRole      func(context.Context, string, []string, int) (any, error)
	revokeRole     func(context.Context, string, []string, int) (any, error)
	listRoles      func(context.Context) ([]string, error)
	isUserNotFound func(error) bool
	isRoleNotFound func(error) bool
}

func oursAPI(t *testing.T, urls []string) *apiDriver {
	c := newClientAs(t, urls, "root", rootPassword)
	m, a, u, r := client.NewMembersAPI(c), client.NewAuthAPI(c), client.NewAuthUserAPI(c), client.NewAuthRoleAPI(c)
	return &apiDriver{
		list:           func(ctx context.Context) (any, error) { return m.List(ctx) },
		add:            func(ctx context.Context, p string) (any, error) { return m.Add(ctx, p) },
		remove:         m.Remove,
		update:         m.Update,
		leader:         func(ctx context.Context) (any, error) { return m.Leader(ctx) },
		enable:         a.Enable,
		disable:        a.Disable,
		addUser:        u.AddUser,
		removeUser:     u.RemoveUser,
		getUser:        func(ctx context.Context, n string) (any, error) { return u.GetUser(ctx, n) },
		grantUser:      func(ctx context.Context, n string, rs []string) (any, error) { return u.GrantUser(ctx, n, rs) },
		revokeUser:     func(ctx context.Context, n string, rs []string) (any, error) { return u.RevokeUser(ctx, n, rs) },
		changePassword: func(ctx context.Context, n, p string) (any, error) { return u.ChangePassword(ctx, n, p) },
		listUsers:      u.ListUsers,
		addRole:        r.AddRole,
		removeRole:     r.RemoveRole,
		getRole:        func(ctx context.Context, n string) (any, error) { return r.GetRole(ctx, n) },
		grantRole: func(ctx context.Context, n string, p []string, pt int) (any, error) {
			return r.GrantRoleKV(ctx, n, p, client.PermissionType(pt))
		},
		revokeRole: func(ctx context.Context, n string, p []string, pt int) (any, error) {
			return r.RevokeRoleKV(ctx, n, p, client.PermissionType(pt))
		},
		listRoles:      r.ListRoles,
		isUserNotFound: client.IsUserNotFound,
		isRoleNotFound: client.IsRoleNotFound,
	}
}

func theirsAPI(t *testing.T, urls []string) *apiDriver {
	tr := envHTTPTransport(&http.Transport{Proxy: nil})
	t.Cleanup(tr.CloseIdleConnections)
	c, err := official.New(official.Config{
		Endpoints: urls, Transport: tr, Username: "root", Password: rootPassword,
		HeaderTimeoutPerRequest: 10 * time.Second, // above the server's 7 s write timeout
	})
	if err != nil {
		t.Fatal(err)
	}
	m, a, u, r := official.NewMembersAPI(c), official.NewAuthAPI(c), official.NewAuthUserAPI(c), official.NewAuthRoleAPI(c)
	return &apiDriver{
		list:           func(ctx context.Context) (any, error) { return m.List(ctx) },
		add:            func(ctx context.Context, p string) (any, error) { return m.Add(ctx, p) },
		remove:         m.Remove,
		update:         m.Update,
		leader:         func(ctx context.Context) (any, error) { return m.Leader(ctx) },
		enable:         a.Enable,
		disable:        a.Disable,
		addUser:        u.AddUser,
		removeUser:     u.RemoveUser,
		getUser:        func(ctx context.Context, n string) (any, error) { return u.GetUser(ctx, n) },
		grantUser:      func(ctx context.Context, n string, rs []string) (any, error) { return u.GrantUser(ctx, n, rs) },
		revokeUser:     func(ctx context.Context, n string, rs []string) (any, error) { return u.RevokeUser(ctx, n, rs) },
		changePassword: func(ctx context.Context, n, p string) (any, error) { return u.ChangePassword(ctx, n, p) },
		listUsers:      u.ListUsers,
		addRole:        r.AddRole,
		removeRole:     r.RemoveRole,
		getRole:        func(ctx context.Context, n string) (any, error) { return r.GetRole(ctx, n) },
		grantRole: func(ctx context.Context, n string, p []string, pt int) (any, error) {
			return r.GrantRoleKV(ctx, n, p, official.PermissionType(pt))
		},
		revokeRole: func(ctx context.Context, n string, p []string, pt int) (any, error) {
			return r.RevokeRoleKV(ctx, n, p, official.PermissionType(pt))
		},
		listRoles:      r.ListRoles,
		isUserNotFound: official.IsUserNotFound,
		isRoleNotFound: official.IsRoleNotFound,
	}
}

// normalizer replaces what differs between two clusters (member IDs,
// URLs) by stable names.
type normalizer struct{ repl *strings.Replacer }

func (n normalizer) value(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "unmarshalable " + err.Error()
	}
	// Member lists come in ID order, which differs between clusters.
	var ms []map[string]any
	if json.Unmarshal(b, &ms) == nil && len(ms) > 0 && ms[0]["peerURLs"] != nil {
		out := make([]string, len(ms))
		for i, m := range ms {
			mb, _ := json.Marshal(m)
			out[i] = n.repl.Replace(string(mb))
		}
		sort.Strings(out)
		return "[" + strings.Join(out, ",") + "]"
	}
	return n.repl.Replace(string(b))
}

// runSequence runs the same calls on a fresh 3-member cluster and returns
// one normalized line per call.
func runSequence(t *testing.T, cl *testbed.Cluster, d *apiDriver) []string {
	ctx := ctxFor(t, 3*time.Minute)
	var pairs []string
	for _, m := range cl.Members() {
		pairs = append(pairs, m.ID(), "<id:"+m.Name()+">", m.URL(), "<client:"+m.Name()+">", m.PeerURL(), "<peer:"+m.Name()+">")
	}
	newName, newPeer := cl.ReservePeer(t)
	alt := cl.AltPeerURL(newName)
	pairs = append(pairs, newPeer, "<peer:new>", alt, "<peer:alt>")
	norm := normalizer{strings.NewReplacer(pairs...)}

	var out []string
	rec := func(step string, v any, err error) {
		if err != nil {
			out = append(out, fmt.Sprintf("%s: error %q (user not found %v, role not found %v)", step, norm.repl.Replace(err.Error()), d.isUserNotFound(err), d.isRoleNotFound(err)))
			t.Logf("%s: %v", step, err)
			return
		}
		if v == nil {
			out = append(out, step+": ok")
			return
		}
		out = append(out, step+": "+norm.value(v))
	}

	v, err := d.list(ctx)
	rec("list", v, err)
	v, err = d.leader(ctx)
	if err == nil {
		v = "a member" // which one differs between clusters
	}
	rec("leader", v, err)

	// A fresh member refuses membership changes for 5 s (500, unhealthy
	// cluster); retry until the member shows in the list.
	var newID string
	for deadline := time.Now().Add(30 * time.Second); newID == ""; {
		m, err := d.add(ctx, newPeer)
		if err == nil {
			b, _ := json.Marshal(m)
			var j struct{ ID string }
			_ = json.Unmarshal(b, &j)
			newID = j.ID
			norm = normalizer{strings.NewReplacer(append(pairs, newID, "<id:new>")...)}
			rec("add", m, nil)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("add: %v", err)
		}
		waitTick(ctx, t, 250*time.Millisecond)
	}
	// etcd names a member after its peer URLs and the second it was
	// added in, and checks the name before the URLs: a second add within
	// the same second is refused as "ID exists", a later one as "peerURL
	// exists". Wait for the next second, so that the step does not depend
	// on when it ran.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	v, err = d.add(ctx, newPeer)
	rec("add again", v, err)
	for _, bad := range []string{"foo", "http://127.0.0.1:1/path", "http://127.0.0.1", ""} {
		v, err = d.add(ctx, bad)
		rec("add bad peer URL "+bad, v, err)
	}
	rec("update no peer URL", nil, d.update(ctx, newID, nil))
	rec("update unknown", nil, d.update(ctx, "1234", []string{alt}))
	rec("update", nil, d.update(ctx, newID, []string{alt}))
	v, err = d.list(ctx)
	rec("list after update", v, err)
	for deadline := time.Now().Add(30 * time.Second); ; {
		err := d.remove(ctx, newID)
		if err == nil {
			rec("remove", nil, nil)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remove: %v", err)
		}
		waitTick(ctx, t, 250*time.Millisecond)
	}
	rec("remove again (410)", nil, d.remove(ctx, newID))
	rec("remove unknown", nil, d.remove(ctx, "1234"))
	v, err = d.list(ctx)
	rec("list after remove", v, err)

	v, err = d.getUser(ctx, "root")
	rec("get missing root", v, err)
	rec("add root", nil, d.addUser(ctx, "root", rootPassword))
	rec("enable", nil, d.enable(ctx))
	rec("enable again", nil, d.enable(ctx))
	rec("add role", nil, d.addRole(ctx, "rw"))
	rec("add role again", nil, d.addRole(ctx, "rw"))
	v, err = d.grantRole(ctx, "rw", []string{"/a/*", "/b"}, int(client.ReadWritePermission))
	rec("grant role", v, err)
	v, err = d.revokeRole(ctx, "rw", []string{"/b"}, int(client.WritePermission))
	rec("revoke role", v, err)
	v, err = d.revokeRole(ctx, "rw", []string{"/b"}, int(client.WritePermission))
	rec("revoke role again", v, err)
	v, err = d.getRole(ctx, "rw")
	rec("get role", v, err)
	v, err = d.getRole(ctx, "nope")
	rec("get missing role", v, err)
	rec("add user", nil, d.addUser(ctx, "alice", alicePassword))
	v, err = d.grantUser(ctx, "alice", []string{"rw"})
	rec("grant user", v, err)
	v, err = d.grantUser(ctx, "alice", []string{"rw"})
	rec("grant user again", v, err)
	v, err = d.getUser(ctx, "alice")
	rec("get user", v, err)
	v, err = d.getUser(ctx, "nobody")
	rec("get missing user", v, err)
	lu, err := d.listUsers(ctx)
	rec("list users", lu, err)
	lr, err := d.listRoles(ctx)
	rec("list roles", lr, err)
	v, err = d.changePassword(ctx, "alice", "alice-New")
	rec("change password", v, err)
	v, err = d.revokeUser(ctx, "alice", []string{"rw"})
	rec("revoke user", v, err)
	rec("remove user", nil, d.removeUser(ctx, "alice"))
	rec("remove missing user", nil, d.removeUser(ctx, "alice"))
	rec("remove root user", nil, d.removeUser(ctx, "root"))
	rec("remove role", nil, d.removeRole(ctx, "rw"))
	rec("disable", nil, d.disable(ctx))
	rec("disable again", nil, d.disable(ctx))
	return out
}

// knownDifferences maps a result of this client to the official client's
// result for the same step where the official client is wrong:
//
//   - GetUser: 3.x answers with expanded roles; the official client first
//     decodes them as names, which leaves an empty name in front.
//   - RemoveUser of a missing user: the server says "auth: User alice does
//     not exist" without the final dot its regular expression wants, so
//     IsUserNotFound is false there; this client decides from the 404.
var knownDifferences = map[string]string{
	`get user: {"user":"alice","roles":["rw"]}`:                                                                `get user: {"user":"alice","roles":["","rw"]}`,
	`remove missing user: error "auth: User alice does not exist" (user not found true, role not found false)`: `remove missing user: error "auth: User alice does not exist" (user not found false, role not found false)`,
}

// noLeaderEntry is one entry of a ClusterError's text for a member that
// answered with a 5xx.
var noLeaderEntry = regexp.MustCompile(`error #\d+: client: etcd member <client:m\d+> has no leader\\n`)

// knownResendDifference reports whether ours and official differ only in
// that the official client resent a write that a member answered with a
// 5xx (etcd 3.4 answers a duplicate member add with a 500) to every other
// member, where this client stops at the first: a write whose outcome is
// unknown is not resent.
func knownResendDifference(ours, official string) bool {
	o := noLeaderEntry.FindAllStringIndex(ours, -1)
	f := noLeaderEntry.FindAllStringIndex(official, -1)
	if len(o) != 1 || len(f) < 2 {
		return false
	}
	strip := func(s string) string { return noLeaderEntry.ReplaceAllString(s, "") }
	return strings.HasSuffix(ours, "(user not found false, role not found false)") &&
		strings.ReplaceAll(strip(ours), "; ", "") == strings.ReplaceAll(strip(official), "; ", "")
}

// TestDifferentialMembersAuth runs the same member and auth calls through
// this client and the official v2 client (go.etcd.io/etcd/client/v2
// v2.305.35) against two fresh clusters and compares the results.
func TestDifferentialMembersAuth(t *testing.T) {
	var (
		wg      sync.WaitGroup
		results [2][]string
	)
	for i, name := range []string{"ours", "official"} {
		wg.Add(1)
		t.Run(name, func(t *testing.T) {
			defer wg.Done()
			t.Parallel()
			cl := testbed.NewCluster(t, testbed.Options{Size: 3})
			d := oursAPI(t, cl.ClientURLs())
			if i == 1 {
				d = theirsAPI(t, cl.ClientURLs())
			}
			results[i] = runSequence(t, cl, d)
		})
	}
	// Parallel subtests run once this function returns; compare after.
	t.Cleanup(func() {
		wg.Wait()
		if t.Failed() {
			return
		}
		a, b := results[0], results[1]
		if len(a) != len(b) {
			t.Fatalf("%d results from ours, %d from the official client", len(a), len(b))
		}
		same := 0
		for i := range a {
			if knownResendDifference(a[i], b[i]) {
				t.Logf("known difference at step %d (a write answered with a 5xx is not resent: its outcome is unknown):\n  ours:     %s\n  official: %s", i, a[i], b[i])
				continue
			}
			if want, ok := knownDifferences[a[i]]; ok {
				if b[i] != want {
					t.Errorf("step %d: the official client was expected to answer %s, got %s", i, want, b[i])
				}
				t.Logf("known difference at step %d:\n  ours:     %s\n  official: %s", i, a[i], b[i])
				continue
			}
			if a[i] != b[i] {
				t.Errorf("step %d differs:\n  ours:     %s\n  official: %s", i, a[i], b[i])
			} else {
				same++
			}
		}
		t.Logf("%d steps agree", same)
		for _, l := range a {
			t.Log(l)
		}
	})
}
