package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// User is a v2 auth user. Password is only sent, never received; Grant and
// Revoke are used in update requests only.
type User struct {
	User     string   `json:"user"`
	Password string   `json:"password,omitempty"`
	Roles    []string `json:"roles"`
	Grant    []string `json:"grant,omitempty"`
	Revoke   []string `json:"revoke,omitempty"`
}

// UserRoles is a user with its roles expanded, the way etcd 3.x answers
// GET /v2/auth/users/<name> and lists users. AuthUserAPI maps it to a User
// holding the role names.
type UserRoles struct {
	User  string `json:"user"`
	Roles []Role `json:"roles"`
}

// AuthUserAPI manages v2 auth users. Every call needs the credentials of a
// root user once auth is enabled. Errors from the server are *AuthError
// values (IsUserNotFound for 404). Passwords are never part of an error,
// a log record or the curl debug output.
type AuthUserAPI interface {
	// AddUser adds a user.
	AddUser(ctx context.Context, username string, password string) error

	// RemoveUser removes a user.
	RemoveUser(ctx context.Context, username string) error

	// GetUser retrieves user details.
	GetUser(ctx context.Context, username string) (*User, error)

	// GrantUser grants a user some permission roles.
	GrantUser(ctx context.Context, username string, roles []string) (*User, error)

	// RevokeUser revokes some permission roles from a user.
	RevokeUser(ctx context.Context, username string, roles []string) (*User, error)

	// ChangePassword changes the user's password.
	ChangePassword(ctx context.Context, username string, password string) (*User, error)

	// ListUsers lists the users.
	ListUsers(ctx context.Context) ([]string, error)
}

// NewAuthUserAPI constructs a new AuthUserAPI that uses HTTP to interact
// with etcd's user creation and modification features.
func NewAuthUserAPI(c Client) AuthUserAPI {
	return &httpAuthUserAPI{client: c}
}

type httpAuthUserAPI struct {
	client Client
}

func userPath(name string) string { return "/v2/auth/users/" + name }

// userRequest is the body of PUT /v2/auth/users/<name>.
type userRequest struct {
	User     string   `json:"user"`
	Password string   `json:"password,omitempty"`
	Grant    []string `json:"grant,omitempty"`
	Revoke   []string `json:"revoke,omitempty"`
}

// userAnswer is a user as any answer holds it: roles as names or objects.
type userAnswer struct {
	User  string    `json:"user"`
	Roles []roleRef `json:"roles"`
}

func (u *userAnswer) toUser() *User {
	out := &User{User: u.User}
	if u.Roles != nil {
		out.Roles = make([]string, 0, len(u.Roles))
		for _, r := range u.Roles {
			out.Roles = append(out.Roles, r.Role)
		}
	}
	return out
}

// AddUser implements AuthUserAPI. An empty password is answered 400.
//
// Beware of a server quirk kept for compatibility: PUT
// /v2/auth/users/<name> with only a password creates the user (201) or, if
// the user exists, changes its password (200). AddUser reports success in
// both cases, as the original client did.
func (a *httpAuthUserAPI) AddUser(ctx context.Context, username, password string) error {
	if err := checkName("auth: add user", "user", username); err != nil {
		return err
	}
	_, err := authCall{
		op: "add user", resource: AuthResourceUser, name: username,
		method: http.MethodPut, path: userPath(username),
		body: &userRequest{User: username, Password: password}, sensitive: true,
		ok: []int{http.StatusCreated, http.StatusOK},
	}.run(ctx, a.client)
	return err
}

// RemoveUser implements AuthUserAPI. Removing root while auth is enabled
// gives ErrAuthForbidden.
func (a *httpAuthUserAPI) RemoveUser(ctx context.Context, username string) error {
	if err := checkName("auth: remove user", "user", username); err != nil {
		return err
	}
	_, err := authCall{
		op: "remove user", resource: AuthResourceUser, name: username,
		method: http.MethodDelete, path: userPath(username),
		ok: []int{http.StatusOK, http.StatusNoContent},
	}.run(ctx, a.client)
	return err
}

// GetUser implements AuthUserAPI. The roles of the answer are names,
// whether the server sends names (2.x) or role objects (3.x).
func (a *httpAuthUserAPI) GetUser(ctx context.Context, username string) (*User, error) {
	if err := checkName("auth: get user", "user", username); err != nil {
		return nil, err
	}
	var v userAnswer
	_, err := authCall{
		op: "get user", resource: AuthResourceUser, name: username,
		method: http.MethodGet, path: userPath(username),
		ok: []int{http.StatusOK}, out: &v,
	}.run(ctx, a.client)
	if err != nil {
		return nil, err
	}
	return v.toUser(), nil
}

// GrantUser implements AuthUserAPI. It answers the user as it is after the
// grant; a role granted twice gives ErrAuthConflict. The server does not
// check that the roles exist.
func (a *httpAuthUserAPI) GrantUser(ctx context.Context, username string, roles []string) (*User, error) {
	u, err := a.modify(ctx, "grant user", username, &userRequest{User: username, Grant: roles}, false)
	if err != nil {
		return nil, err
	}
	return &u.User, nil
}

// RevokeUser implements AuthUserAPI. Revoking a role the user does not
// hold gives ErrAuthConflict.
func (a *httpAuthUserAPI) RevokeUser(ctx context.Context, username string, roles []string) (*User, error) {
	u, err := a.modify(ctx, "revoke user", username, &userRequest{User: username, Revoke: roles}, false)
	if err != nil {
		return nil, err
	}
	return &u.User, nil
}

// ChangePassword implements AuthUserAPI. The server cannot tell a password
// change from a creation (see AddUser): for a user that did not exist it
// creates one with that password and answers 201. ChangePassword then
// returns an *AuthError with StatusCode 201 that matches ErrUserNotFound
// and says that the user was created, where the original client returned
// an error without a message.
func (a *httpAuthUserAPI) ChangePassword(ctx context.Context, username, password string) (*User, error) {
	u, err := a.modify(ctx, "change password", username, &userRequest{User: username, Password: password}, true)
	if err != nil {
		return nil, err
	}
	if u.created {
		return nil, &AuthError{
			Op: "change password", Resource: AuthResourceUser, Name: username,
			StatusCode: http.StatusCreated, NotFound: AuthResourceUser,
			Message: "the user did not exist; the server created it with the given password",
		}
	}
	return &u.User, nil
}

// modifiedUser is the answer of a user update.
type modifiedUser struct {
	User
	// created is set when the server answered 201: it created the user.
	created bool
}

func (a *httpAuthUserAPI) modify(ctx context.Context, op, username string, body *userRequest, sensitive bool) (*modifiedUser, error) {
	if err := checkName("auth: "+op, "user", username); err != nil {
		return nil, err
	}
	if !sensitive && len(body.Grant) == 0 && len(body.Revoke) == 0 {
		return nil, &ArgumentError{Op: "auth: " + op, Arg: "roles", Reason: "no role given", Err: ErrInvalidName}
	}
	var v userAnswer
	call := authCall{
		op: op, resource: AuthResourceUser, name: username,
		method: http.MethodPut, path: userPath(username), body: body, sensitive: sensitive,
		ok: []int{http.StatusOK}, out: &v,
	}
	if sensitive {
		call.ok = append(call.ok, http.StatusCreated)
	}
	status, err := call.run(ctx, a.client)
	if err != nil {
		return nil, err
	}
	return &modifiedUser{User: *v.toUser(), created: status == http.StatusCreated}, nil
}

// ListUsers implements AuthUserAPI. It accepts the 3.x answer (user
// objects with expanded roles) and the 2.x one (names).
func (a *httpAuthUserAPI) ListUsers(ctx context.Context) ([]string, error) {
	var v struct {
		Users []userRef `json:"users"`
	}
	_, err := authCall{
		op: "list users", resource: AuthResourceUser,
		method: http.MethodGet, path: "/v2/auth/users",
		ok: []int{http.StatusOK}, out: &v,
	}.run(ctx, a.client)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(v.Users))
	for _, u := range v.Users {
		names = append(names, u.User)
	}
	return names, nil
}

// userRef is a user as a list holds it: a name, or a user object.
type userRef userAnswer

// UnmarshalJSON accepts "name" and {"user": "name", ...}.
func (u *userRef) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*u = userRef{}
		return json.Unmarshal(b, &u.User)
	}
	return json.Unmarshal(b, (*userAnswer)(u))
}
