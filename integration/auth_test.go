package integration_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
)

const (
	rootPassword  = "root-Pa55"
	alicePassword = "alice-Pa55"
)

// TestAuth sets up auth on a real cluster (root user, a read-only role on
// one prefix, a user holding it) and checks what each identity may do,
// the guest role, and the error types. Each authenticated request costs
// the server a bcrypt check, so the requests are few.
func TestAuth(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 1})
	ctx := ctxFor(t, 2*time.Minute)
	base := cl.ClientURLs()[0]
	anon := newClientAs(t, cl.ClientURLs(), "", "")
	root := newClientAs(t, cl.ClientURLs(), "root", rootPassword)

	if err := client.NewAuthAPI(anon).Enable(ctx); !errors.Is(err, client.ErrAuthConflict) {
		t.Errorf("Enable without a root user: got %v, want ErrAuthConflict (409)", err)
	}
	if err := client.NewAuthUserAPI(anon).AddUser(ctx, "root", rootPassword); err != nil {
		t.Fatal(err)
	}
	if err := client.NewAuthAPI(anon).Enable(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.NewAuthAPI(root).Enable(ctx); !errors.Is(err, client.ErrAuthConflict) {
		t.Errorf("Enable twice: got %v", err)
	}
	users, roles := client.NewAuthUserAPI(root), client.NewAuthRoleAPI(root)

	// Without credentials the user API is closed now.
	if _, err := client.NewAuthUserAPI(anon).ListUsers(ctx); !errors.Is(err, client.ErrInsufficientCredentials) {
		t.Errorf("ListUsers without credentials: %v", err)
	}

	if err := roles.AddRole(ctx, "app-reader"); err != nil {
		t.Fatal(err)
	}
	if err := roles.AddRole(ctx, "app-reader"); !errors.Is(err, client.ErrAuthConflict) {
		t.Errorf("AddRole twice: %v", err)
	}
	r, err := roles.GrantRoleKV(ctx, "app-reader", []string{"/app/*"}, client.ReadPermission)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Permissions.KV.Read, []string{"/app/*"}) || len(r.Permissions.KV.Write) != 0 {
		t.Errorf("GrantRoleKV answered %+v", r)
	}
	if err := users.AddUser(ctx, "alice", alicePassword); err != nil {
		t.Fatal(err)
	}
	u, err := users.GrantUser(ctx, "alice", []string{"app-reader"})
	if err != nil || !slices.Equal(u.Roles, []string{"app-reader"}) {
		t.Fatalf("GrantUser: %+v, %v", u, err)
	}
	// 3.x answers GET with expanded roles; the API gives names.
	if u, err = users.GetUser(ctx, "alice"); err != nil || u.User != "alice" || !slices.Equal(u.Roles, []string{"app-reader"}) {
		t.Errorf("GetUser: %+v, %v", u, err)
	}
	if names, err := users.ListUsers(ctx); err != nil || !slices.Equal(names, []string{"alice", "root"}) {
		t.Errorf("ListUsers: %v, %v", names, err)
	}
	if names, err := roles.ListRoles(ctx); err != nil || !slices.Equal(names, []string{"app-reader", "guest", "root"}) {
		t.Errorf("ListRoles: %v, %v", names, err)
	}
	if _, err := users.GetUser(ctx, "nobody"); !client.IsUserNotFound(err) || client.IsRoleNotFound(err) {
		t.Errorf("GetUser nobody: %v", err)
	}
	if _, err := roles.GetRole(ctx, "nope"); !client.IsRoleNotFound(err) || client.IsUserNotFound(err) {
		t.Errorf("GetRole nope: %v", err)
	}
	if err := users.RemoveUser(ctx, "root"); !errors.Is(err, client.ErrAuthForbidden) {
		t.Errorf("RemoveUser root: %v", err)
	}
	if _, err := roles.RevokeRoleKV(ctx, "app-reader", []string{"/never/*"}, client.WritePermission); err == nil {
		t.Error("RevokeRoleKV of an ungranted permission: no error")
	}
	// Membership changes need root.
	if _, err := client.NewMembersAPI(newClientAs(t, cl.ClientURLs(), "alice", alicePassword)).Add(ctx, "http://127.0.0.1:1"); !errors.Is(err, client.ErrInsufficientCredentials) {
		t.Errorf("member Add as alice: %v", err)
	}

	// Keys: root seeds, alice reads her prefix only.
	for _, k := range []string{"/app/x", "/other/y"} {
		if a := keyRequest(t, base, k, "v", "root", rootPassword); a.Status != 201 {
			t.Fatalf("root PUT %s: %+v", k, a)
		}
	}
	check := func(what string, got keyAnswer, status, code int) {
		t.Helper()
		if got.Status != status || got.ErrorCode != code {
			t.Errorf("%s: got HTTP %d code %d, want HTTP %d code %d", what, got.Status, got.ErrorCode, status, code)
		}
	}
	check("alice reads /app/x", keyRequest(t, base, "/app/x", "", "alice", alicePassword), 200, 0)
	check("alice writes /app/x", keyRequest(t, base, "/app/x", "w", "alice", alicePassword), 401, client.ErrorCodeUnauthorized)
	check("alice reads /other/y", keyRequest(t, base, "/other/y", "", "alice", alicePassword), 401, client.ErrorCodeUnauthorized)
	check("wrong password", keyRequest(t, base, "/app/x", "", "alice", "wrong"), 401, client.ErrorCodeUnauthorized)
	if _, err := client.NewAuthUserAPI(newClientAs(t, cl.ClientURLs(), "root", "wrong")).ListUsers(ctx); !errors.Is(err, client.ErrInsufficientCredentials) {
		t.Errorf("ListUsers with a wrong root password: %v", err)
	}

	// Password change: the old one stops working.
	if u, err := users.ChangePassword(ctx, "alice", "alice-New"); err != nil || u.User != "alice" {
		t.Fatalf("ChangePassword: %+v, %v", u, err)
	}
	check("old password", keyRequest(t, base, "/app/x", "", "alice", alicePassword), 401, client.ErrorCodeUnauthorized)
	check("new password", keyRequest(t, base, "/app/x", "", "alice", "alice-New"), 200, 0)

	// Guest: requests without credentials, read+write /* after enable.
	check("guest reads", keyRequest(t, base, "/other/y", "", "", ""), 200, 0)
	check("guest writes", keyRequest(t, base, "/other/z", "g", "", ""), 201, 0)
	g, err := roles.RevokeRoleKV(ctx, "guest", []string{"/*"}, client.WritePermission)
	if err != nil || len(g.Permissions.KV.Write) != 0 || !slices.Equal(g.Permissions.KV.Read, []string{"/*"}) {
		t.Fatalf("RevokeRoleKV guest: %+v, %v", g, err)
	}
	check("guest writes after revoke", keyRequest(t, base, "/other/z", "h", "", ""), 401, client.ErrorCodeUnauthorized)
	check("guest reads after revoke", keyRequest(t, base, "/other/z", "", "", ""), 200, 0)

	if err := client.NewAuthAPI(newClientAs(t, cl.ClientURLs(), "alice", "alice-New")).Disable(ctx); !errors.Is(err, client.ErrInsufficientCredentials) {
		t.Errorf("Disable as alice: %v", err)
	}
	if err := client.NewAuthAPI(root).Disable(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.NewAuthAPI(root).Disable(ctx); !errors.Is(err, client.ErrAuthConflict) {
		t.Errorf("Disable twice: %v", err)
	}
	check("anyone writes after disable", keyRequest(t, base, "/app/x", "d", "", ""), 200, 0)
}
