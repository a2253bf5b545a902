package client

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/etcdv2/client/internal/v2fake"
)

func TestAuthEnableDisable(t *testing.T) {
	tests := []struct {
		name   string
		method string
		status int
		body   string
		is     error
	}{
		{"enable", "PUT", 200, ``, nil},
		{"enable without root", "PUT", 409, `{"message":"auth: No root user available, please create one"}`, ErrAuthConflict},
		{"enable unauthorized", "PUT", 401, `{"message":"Insufficient credentials"}`, ErrInsufficientCredentials},
		{"disable", "DELETE", 200, ``, nil},
		{"disable twice", "DELETE", 409, `{"message":"auth: already disabled"}`, ErrAuthConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			s.On(tt.method+" /v2/auth/enable", v2fake.Respond(tt.status, tt.body))
			api := NewAuthAPI(newAPIClient(t, Config{}, s))
			var err error
			if tt.method == "PUT" {
				err = api.Enable(testCtx(t))
			} else {
				err = api.Disable(testCtx(t))
			}
			if tt.is == nil && err != nil || tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("got %v, want %v", err, tt.is)
			}
			var ae *AuthError
			if tt.is != nil && (!errors.As(err, &ae) || ae.Resource != AuthResourceAuth || ae.StatusCode != tt.status) {
				t.Errorf("got %#v", err)
			}
		})
	}
}

func TestAuthUserCalls(t *testing.T) {
	s := newFake(t)
	c := newAPIClient(t, Config{}, s)
	api := NewAuthUserAPI(c)
	ctx := testCtx(t)

	s.On("PUT /v2/auth/users/alice", v2fake.Respond(201, `{"user":"alice","roles":null}`))
	if err := api.AddUser(ctx, "alice", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if r := lastRequest(t, s); r.Body != `{"user":"alice","password":"s3cret"}` || r.ContentType != "application/json" {
		t.Errorf("AddUser sent %+v", r)
	}
	// An existing user: the server changes the password and answers 200.
	s.On("PUT /v2/auth/users/alice", v2fake.Respond(200, `{"user":"alice","roles":["app"]}`))
	if err := api.AddUser(ctx, "alice", "s3cret"); err != nil {
		t.Errorf("AddUser on 200: %v", err)
	}

	u, err := api.GrantUser(ctx, "alice", []string{"app", "ops"})
	if err != nil || !reflect.DeepEqual(u, &User{User: "alice", Roles: []string{"app"}}) {
		t.Errorf("GrantUser: %+v, %v", u, err)
	}
	if r := lastRequest(t, s); r.Body != `{"user":"alice","grant":["app","ops"]}` {
		t.Errorf("GrantUser sent %s", r.Body)
	}
	if _, err := api.RevokeUser(ctx, "alice", []string{"ops"}); err != nil {
		t.Error(err)
	}
	if r := lastRequest(t, s); r.Body != `{"user":"alice","revoke":["ops"]}` {
		t.Errorf("RevokeUser sent %s", r.Body)
	}
	if u, err := api.ChangePassword(ctx, "alice", "n3w"); err != nil || u.User != "alice" || u.Password != "" {
		t.Errorf("ChangePassword: %+v, %v", u, err)
	}
	if r := lastRequest(t, s); r.Body != `{"user":"alice","password":"n3w"}` {
		t.Errorf("ChangePassword sent %s", r.Body)
	}

	s.On("PUT /v2/auth/users/alice", v2fake.Respond(409, `{"message":"auth: Granting duplicate role app for user alice"}`))
	if _, err := api.GrantUser(ctx, "alice", []string{"app"}); !errors.Is(err, ErrAuthConflict) {
		t.Errorf("GrantUser 409: %v", err)
	}
	s.On("PUT /v2/auth/users/bob", v2fake.Respond(404, `{"message":"auth: User bob doesn't exist."}`))
	if _, err := api.GrantUser(ctx, "bob", []string{"app"}); !IsUserNotFound(err) || IsRoleNotFound(err) {
		t.Errorf("GrantUser 404: %v", err)
	}
	// ChangePassword of an unknown user: the server creates it.
	s.On("PUT /v2/auth/users/carol", v2fake.Respond(201, `{"user":"carol","roles":null}`))
	if _, err := api.ChangePassword(ctx, "carol", "x"); !IsUserNotFound(err) {
		t.Errorf("ChangePassword 201: %v", err)
	} else {
		wantContains(t, err.Error(), "created")
	}

	s.On("DELETE /v2/auth/users/alice", v2fake.Respond(200, ``))
	if err := api.RemoveUser(ctx, "alice"); err != nil {
		t.Error(err)
	}
	s.On("DELETE /v2/auth/users/root", v2fake.Respond(403, `{"message":"auth: Cannot delete root user while auth is enabled."}`))
	if err := api.RemoveUser(ctx, "root"); !errors.Is(err, ErrAuthForbidden) {
		t.Errorf("RemoveUser root: %v", err)
	}
	s.On("DELETE /v2/auth/users/bob", v2fake.Respond(404, `{"message":"auth: User bob does not exist"}`))
	if err := api.RemoveUser(ctx, "bob"); !IsUserNotFound(err) {
		t.Errorf("RemoveUser bob: %v", err)
	}
}

func TestAuthGetUserDecoding(t *testing.T) {
	tests := []struct {
		name, body string
		want       *User
	}{
		{"expanded roles (3.x)", `{"user":"alice","roles":[{"role":"app","permissions":{"kv":{"read":["/app/*"],"write":[]}}},{"role":"ops","permissions":{"kv":{"read":[],"write":[]}}}]}`,
			&User{User: "alice", Roles: []string{"app", "ops"}}},
		{"role names (2.x)", `{"user":"alice","roles":["app","ops"]}`, &User{User: "alice", Roles: []string{"app", "ops"}}},
		{"no roles", `{"user":"alice"}`, &User{User: "alice"}},
		{"null roles", `{"user":"alice","roles":null}`, &User{User: "alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			s.On("GET /v2/auth/users/alice", v2fake.Respond(200, tt.body))
			u, err := NewAuthUserAPI(newAPIClient(t, Config{}, s)).GetUser(testCtx(t), "alice")
			if err != nil || !reflect.DeepEqual(u, tt.want) {
				t.Errorf("got %+v, %v; want %+v", u, err, tt.want)
			}
		})
	}
}

func TestAuthNotFound(t *testing.T) {
	s := newFake(t)
	c := newAPIClient(t, Config{}, s)
	ctx := testCtx(t)
	s.On("GET /v2/auth/users/bob", v2fake.Respond(404, `{"message":"auth: User bob does not exist."}`))
	_, err := NewAuthUserAPI(c).GetUser(ctx, "bob")
	if !IsUserNotFound(err) || IsRoleNotFound(err) {
		t.Errorf("user: %v", err)
	}
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Name != "bob" || ae.Resource != AuthResourceUser || ae.StatusCode != 404 {
		t.Errorf("user: %#v", err)
	}
	// A user holding a role that is gone: the 404 is about the role.
	s.On("GET /v2/auth/users/eve", v2fake.Respond(404, `{"message":"auth: Role gone doesn't exist."}`))
	_, err = NewAuthUserAPI(c).GetUser(ctx, "eve")
	if IsUserNotFound(err) || !IsRoleNotFound(err) {
		t.Errorf("dangling role: %v", err)
	}
	s.On("GET /v2/auth/roles/r", v2fake.Respond(404, `{"message":"auth: Role r does not exist."}`))
	_, err = NewAuthRoleAPI(c).GetRole(ctx, "r")
	if !IsRoleNotFound(err) || IsUserNotFound(err) {
		t.Errorf("role: %v", err)
	}
	// Not found is decided by status: a 400 mentioning "does not exist" is not.
	s.On("GET /v2/auth/roles/q", v2fake.Respond(400, `{"message":"auth: Role q does not exist."}`))
	if _, err = NewAuthRoleAPI(c).GetRole(ctx, "q"); err == nil || IsRoleNotFound(err) {
		t.Errorf("400: %v", err)
	}
	if IsUserNotFound(nil) || IsRoleNotFound(errors.New("auth: User x does not exist.")) {
		t.Error("predicates match what is not an AuthError")
	}
}

func TestAuthLists(t *testing.T) {
	s := newFake(t)
	c := newAPIClient(t, Config{}, s)
	ctx := testCtx(t)
	for _, body := range []string{
		`{"users":[{"user":"alice","roles":[{"role":"app","permissions":{"kv":{"read":["/a"],"write":[]}}}]},{"user":"root","roles":[{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}]}]}`,
		`{"users":["alice","root"]}`,
	} {
		s.On("GET /v2/auth/users", v2fake.Respond(200, body))
		got, err := NewAuthUserAPI(c).ListUsers(ctx)
		if err != nil || !reflect.DeepEqual(got, []string{"alice", "root"}) {
			t.Errorf("ListUsers(%s): %v, %v", body, got, err)
		}
	}
	for _, body := range []string{
		`{"roles":[{"role":"app","permissions":{"kv":{"read":["/a"],"write":[]}}},{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}]}`,
		`{"roles":["app","root"]}`,
	} {
		s.On("GET /v2/auth/roles", v2fake.Respond(200, body))
		got, err := NewAuthRoleAPI(c).ListRoles(ctx)
		if err != nil || !reflect.DeepEqual(got, []string{"app", "root"}) {
			t.Errorf("ListRoles(%s): %v, %v", body, got, err)
		}
	}
	s.On("GET /v2/auth/users", v2fake.Respond(200, `{"users":null}`))
	if got, err := NewAuthUserAPI(c).ListUsers(ctx); err != nil || len(got) != 0 {
		t.Errorf("null list: %v, %v", got, err)
	}
	s.On("GET /v2/auth/roles", v2fake.Respond(401, `{"message":"Insufficient credentials"}`))
	if _, err := NewAuthRoleAPI(c).ListRoles(ctx); !errors.Is(err, ErrInsufficientCredentials) {
		t.Errorf("401: %v", err)
	}
}

func TestAuthRoleCalls(t *testing.T) {
	s := newFake(t)
	api := NewAuthRoleAPI(newAPIClient(t, Config{}, s))
	ctx := testCtx(t)

	s.On("PUT /v2/auth/roles/app", v2fake.Respond(201, `{"role":"app","permissions":{"kv":{"read":[],"write":[]}}}`))
	if err := api.AddRole(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if r := lastRequest(t, s); r.Body != `{"role":"app","permissions":{"kv":{"read":null,"write":null}}}` {
		t.Errorf("AddRole sent %s", r.Body)
	}
	s.On("PUT /v2/auth/roles/app", v2fake.Respond(409, `{"message":"auth: Role app already exists."}`))
	if err := api.AddRole(ctx, "app"); !errors.Is(err, ErrAuthConflict) {
		t.Errorf("AddRole 409: %v", err)
	}

	s.On("PUT /v2/auth/roles/app", v2fake.Respond(200, `{"role":"app","permissions":{"kv":{"read":["/app/*"],"write":[]}}}`))
	for _, tt := range []struct {
		pt   PermissionType
		sent string
	}{
		{ReadPermission, `{"role":"app","permissions":{"kv":{"read":null,"write":null}},"grant":{"kv":{"read":["/app/*"],"write":null}}}`},
		{WritePermission, `{"role":"app","permissions":{"kv":{"read":null,"write":null}},"grant":{"kv":{"read":null,"write":["/app/*"]}}}`},
		{ReadWritePermission, `{"role":"app","permissions":{"kv":{"read":null,"write":null}},"grant":{"kv":{"read":["/app/*"],"write":["/app/*"]}}}`},
	} {
		r, err := api.GrantRoleKV(ctx, "app", []string{"/app/*"}, tt.pt)
		if err != nil || r.Role != "app" || !reflect.DeepEqual(r.Permissions.KV.Read, []string{"/app/*"}) {
			t.Errorf("GrantRoleKV(%d): %+v, %v", tt.pt, r, err)
		}
		if got := lastRequest(t, s).Body; got != tt.sent {
			t.Errorf("GrantRoleKV(%d) sent %s, want %s", tt.pt, got, tt.sent)
		}
	}
	if _, err := api.RevokeRoleKV(ctx, "app", []string{"/app/*"}, WritePermission); err != nil {
		t.Error(err)
	}
	wantContains(t, lastRequest(t, s).Body, `"revoke":{"kv":{"read":null,"write":["/app/*"]}}`)
	s.On("PUT /v2/auth/roles/app", v2fake.Respond(400, `{"message":"auth: Role not updated. Use grant/revoke to update the role."}`))
	if _, err := api.RevokeRoleKV(ctx, "app", []string{"/x"}, ReadPermission); err == nil {
		t.Error("RevokeRoleKV 400: no error")
	}
	s.On("PUT /v2/auth/roles/root", v2fake.Respond(403, `{"message":"auth: Cannot modify role root: is root role."}`))
	if _, err := api.GrantRoleKV(ctx, "root", []string{"/x"}, ReadPermission); !errors.Is(err, ErrAuthForbidden) {
		t.Errorf("root: %v", err)
	}

	s.On("GET /v2/auth/roles/app", v2fake.Respond(200, `{"role":"app","permissions":{"kv":{"read":["/a/*","/b"],"write":["/a/*"]}}}`))
	r, err := api.GetRole(ctx, "app")
	want := &Role{Role: "app", Permissions: Permissions{KV: rwPermission{Read: []string{"/a/*", "/b"}, Write: []string{"/a/*"}}}}
	if err != nil || !reflect.DeepEqual(r, want) {
		t.Errorf("GetRole: %+v, %v", r, err)
	}

	s.On("DELETE /v2/auth/roles/app", v2fake.Respond(200, ``))
	if err := api.RemoveRole(ctx, "app"); err != nil {
		t.Error(err)
	}
	s.On("DELETE /v2/auth/roles/nope", v2fake.Respond(404, `{"message":"auth: Role nope doesn't exist."}`))
	if err := api.RemoveRole(ctx, "nope"); !IsRoleNotFound(err) {
		t.Errorf("RemoveRole 404: %v", err)
	}

	n := len(s.Requests())
	for _, err := range []error{
		api.AddRole(ctx, ""),
		api.AddRole(ctx, "a/b"),
		api.RemoveRole(ctx, ".."),
		func() error { _, err := api.GrantRoleKV(ctx, "app", nil, ReadPermission); return err }(),
		func() error { _, err := api.GrantRoleKV(ctx, "app", []string{"/x"}, PermissionType(7)); return err }(),
	} {
		var ae *ArgumentError
		if !errors.As(err, &ae) {
			t.Errorf("want an ArgumentError, got %v", err)
		}
	}
	if len(s.Requests()) != n {
		t.Error("invalid arguments were sent")
	}
}

// TestAuthPasswordsNeverShown checks the three places a password could
// leak: log records, the curl debug output, and error strings.
func TestAuthPasswordsNeverShown(t *testing.T) {
	const (
		userSecret = "user-pa55word-XYZ"
		newSecret  = "new-pa55word-QRS"
		rootSecret = "root-pa55word-ABC"
	)
	secrets := []string{userSecret, newSecret, rootSecret, base64.StdEncoding.EncodeToString([]byte("root:" + rootSecret))}

	var logBuf, curlBuf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	curlMu.Lock()
	old := curlOut
	curlOut = &curlBuf
	curlMu.Unlock()
	EnablecURLDebug()
	defer func() {
		DisablecURLDebug()
		curlMu.Lock()
		curlOut = old
		curlMu.Unlock()
	}()

	s, s2 := newFake(t), newFake(t)
	c := newAPIClient(t, Config{Username: "root", Password: rootSecret, Logger: logger}, s, s2)
	api := NewAuthUserAPI(c)
	ctx := testCtx(t)

	var errs []error
	// Rejected by the server.
	s.On("PUT /v2/auth/users/alice", v2fake.Respond(400, `{"message":"auth: Cannot create user alice with an empty password"}`))
	errs = append(errs, api.AddUser(ctx, "alice", userSecret))
	_, err := api.ChangePassword(ctx, "alice", newSecret)
	errs = append(errs, err)
	// A server error: outcome unknown.
	s.On("PUT /v2/auth/users/alice", v2fake.Respond(500, `{"message":"etcdserver: request timed out"}`))
	errs = append(errs, api.AddUser(ctx, "alice", userSecret))
	_, err = api.ChangePassword(ctx, "alice", newSecret)
	errs = append(errs, err)
	// No answer at all.
	s.Close()
	s2.Close()
	errs = append(errs, api.AddUser(ctx, "alice", userSecret))
	_, err = api.ChangePassword(ctx, "alice", newSecret)
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Fatalf("call %d did not fail", i)
		}
		var ae *AuthError
		if i < 2 && !errors.As(err, &ae) {
			t.Errorf("call %d: want an AuthError, got %v", i, err)
		}
		msg := err.Error() + " " + strings.ReplaceAll(strings.ReplaceAll(errorDetail(err), "\n", " "), "\t", " ")
		for _, sec := range secrets {
			if strings.Contains(msg, sec) {
				t.Errorf("error %d shows a secret: %s", i, msg)
			}
		}
	}
	if !strings.Contains(curlBuf.String(), "<redacted>") || !strings.Contains(curlBuf.String(), "/v2/auth/users/alice") {
		t.Errorf("curl output lacks the redacted request:\n%s", curlBuf.String())
	}
	if !strings.Contains(logBuf.String(), "/v2/auth/users/alice") {
		t.Errorf("log lacks the requests:\n%s", logBuf.String())
	}
	for _, sec := range secrets {
		if strings.Contains(curlBuf.String(), sec) {
			t.Errorf("curl output shows %q:\n%s", sec, curlBuf.String())
		}
		if strings.Contains(logBuf.String(), sec) {
			t.Errorf("log shows %q:\n%s", sec, logBuf.String())
		}
	}
	// The bodies did reach the server with the password.
	var sawSecret bool
	for _, r := range s.Requests() {
		sawSecret = sawSecret || strings.Contains(r.Body, userSecret)
		if r.Authorization != "Basic "+secrets[3] {
			t.Errorf("request without the root credentials: %+v", r)
		}
	}
	if !sawSecret {
		t.Error("the password was not sent")
	}
}

// errorDetail prints every wrapped error with %#v, to catch a secret in a
// field that Error() leaves out.
func errorDetail(err error) string {
	var b strings.Builder
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		b.WriteString(strings.ReplaceAll(sprintValue(e), "\n", " "))
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return b.String()
}

func sprintValue(e error) string {
	v := reflect.ValueOf(e)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return e.Error()
	}
	var b strings.Builder
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.String {
			b.WriteString(f.String() + " ")
		}
	}
	return b.String()
}

func TestAuthStatusNames(t *testing.T) {
	// Every status an auth answer can have maps to one predicate at most.
	for status, want := range map[int]error{
		http.StatusUnauthorized: ErrInsufficientCredentials,
		http.StatusForbidden:    ErrAuthForbidden,
		http.StatusConflict:     ErrAuthConflict,
	} {
		e := &AuthError{Op: "x", Resource: AuthResourceUser, StatusCode: status}
		for _, s := range []error{ErrInsufficientCredentials, ErrAuthForbidden, ErrAuthConflict, ErrUserNotFound, ErrRoleNotFound} {
			if got := errors.Is(e, s); got != (s == want) {
				t.Errorf("status %d matches %v: %v", status, s, got)
			}
		}
	}
}
