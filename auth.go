package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// AuthAPI switches etcd's v2 authentication on and off. Both calls need
// the credentials of a root user once auth is enabled (Config.Username and
// Config.Password).
//
// Every request that carries credentials costs the server a bcrypt check
// (about 100 ms): keep auth traffic modest.
type AuthAPI interface {
	// Enable auth.
	Enable(ctx context.Context) error

	// Disable auth.
	Disable(ctx context.Context) error
}

// NewAuthAPI constructs a new AuthAPI that uses HTTP to interact with
// etcd's general auth features.
func NewAuthAPI(c Client) AuthAPI {
	return &httpAuthAPI{client: c}
}

// Errors of the auth API, matched with errors.Is. See AuthError.
var (
	// ErrUserNotFound is matched by an *AuthError for the answer 404 about
	// a user. See IsUserNotFound.
	ErrUserNotFound = errors.New("client: user not found")

	// ErrRoleNotFound is matched by an *AuthError for the answer 404 about
	// a role. See IsRoleNotFound.
	ErrRoleNotFound = errors.New("client: role not found")

	// ErrAuthConflict is matched by an *AuthError for the answer 409
	// Conflict: auth already enabled or disabled, no root user to enable
	// auth with, a role that exists, a role granted twice or revoked while
	// not granted, a permission granted twice.
	ErrAuthConflict = errors.New("client: auth: conflict with the current state")

	// ErrAuthForbidden is matched by an *AuthError for the answer 403
	// Forbidden: changing the root role, or removing the root user while
	// auth is enabled.
	ErrAuthForbidden = errors.New("client: auth: operation forbidden on root")

	// ErrInvalidName is matched by an ArgumentError for a user or role name
	// that cannot be sent: empty, or holding a '/'.
	ErrInvalidName = errors.New("client: invalid user or role name")
)

// IsUserNotFound returns true if the error means user not found of v2 API.
// It is decided from the answer's status (404) on a user endpoint, not by
// matching the message with a regular expression.
func IsUserNotFound(err error) bool {
	return errors.Is(err, ErrUserNotFound)
}

// IsRoleNotFound returns true if the error means role not found of v2 API.
// It is decided from the answer's status (404) on a role endpoint.
func IsRoleNotFound(err error) bool {
	return errors.Is(err, ErrRoleNotFound)
}

// AuthResource is the kind of thing an auth request is about.
type AuthResource string

// The resources of the auth API.
const (
	// AuthResourceAuth is the auth switch (/v2/auth/enable).
	AuthResourceAuth AuthResource = "auth"
	// AuthResourceUser is a user (/v2/auth/users).
	AuthResourceUser AuthResource = "user"
	// AuthResourceRole is a role (/v2/auth/roles).
	AuthResourceRole AuthResource = "role"
)

// AuthError is an error answer of the auth API. It never holds a password:
// the server's messages do not echo them, and the request body is never
// part of the error.
//
// It matches, with errors.Is: ErrUserNotFound and ErrRoleNotFound (404),
// ErrAuthConflict (409), ErrAuthForbidden (403) and
// ErrInsufficientCredentials (401).
type AuthError struct {
	// Op is the operation, like "add user" or "grant role".
	Op string
	// Resource is what the request was about; Name is the user or role
	// name, or "" for lists and the auth switch.
	Resource AuthResource
	Name     string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Message is the server's message, like "auth: User alice does not exist.".
	Message string
	// NotFound is the resource the server did not find, set for a 404
	// (and for the 201 of ChangePassword on an unknown user). It is
	// Resource, except on a user endpoint whose answer is about a role
	// (GetUser of a user that holds a role that no longer exists).
	NotFound AuthResource

	// text is the original client's text for the answer; set is whether
	// it was made.
	text string
	set  bool
}

// Error returns the original client's text for the same answer: the
// server's message (like "auth: User nobody does not exist." or
// "Insufficient credentials"), or "unexpected status code N" for
// ListRoles. Detail tells the operation and the status as well. Neither
// holds a password.
func (e *AuthError) Error() string {
	if e.set {
		return e.text
	}
	return e.Detail()
}

// Detail describes the failed operation and the server's answer; it never
// holds a password.
func (e *AuthError) Detail() string {
	s := "client: auth: " + e.Op
	if e.Name != "" {
		s += " " + strconv.Quote(e.Name)
	}
	s += ": HTTP " + strconv.Itoa(e.StatusCode)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is matches the sentinels of the auth API by HTTP status; see AuthError.
func (e *AuthError) Is(target error) bool {
	switch target {
	case ErrUserNotFound:
		return e.NotFound == AuthResourceUser
	case ErrRoleNotFound:
		return e.NotFound == AuthResourceRole
	case ErrAuthConflict:
		return e.StatusCode == http.StatusConflict
	case ErrAuthForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrInsufficientCredentials:
		return e.StatusCode == http.StatusUnauthorized
	}
	return false
}

// authError reads an unexpected answer into an *AuthError.
func authError(resp *response, op string, res AuthResource, name string) error {
	status, msg, b := readErrorAnswer(resp)
	e := &AuthError{Op: op, Resource: res, Name: name, StatusCode: status, Message: msg, set: true}
	if op == "list roles" {
		e.text = "unexpected status code " + strconv.Itoa(status)
	} else {
		e.text = originalMessage(b)
	}
	if status == http.StatusNotFound {
		e.NotFound = res
		// The server answers a user request with the 404 of a role when
		// the user holds a role that is gone ("auth: Role r doesn't
		// exist."); the status alone cannot tell the two apart.
		if res == AuthResourceUser && strings.HasPrefix(msg, "auth: Role ") {
			e.NotFound = AuthResourceRole
		}
	}
	return e
}

// checkName rejects names that cannot be part of an auth URL.
func checkName(op, arg, name string) error {
	switch {
	case name == "":
		return &ArgumentError{Op: op, Arg: arg, Value: name, Reason: "empty", Err: ErrInvalidName}
	case strings.Contains(name, "/"):
		return &ArgumentError{Op: op, Arg: arg, Value: name, Reason: "a name cannot hold '/'", Err: ErrInvalidName}
	case name == "." || name == "..":
		return &ArgumentError{Op: op, Arg: arg, Value: name, Reason: "not a name", Err: ErrInvalidName}
	}
	return nil
}

// authCall is one auth request and the answers it accepts.
type authCall struct {
	op       string
	resource AuthResource
	name     string
	method   string
	path     string
	// body, when not nil, is sent as JSON.
	body any
	// sensitive marks a body that holds a password.
	sensitive bool
	// ok lists the statuses that mean success.
	ok []int
	// out, when not nil, receives the decoded JSON answer.
	out any
}

// run sends the call and decodes its answer. It returns the status of a
// successful answer.
func (a authCall) run(ctx context.Context, c Client) (int, error) {
	r := &request{
		method:     a.method,
		path:       a.path,
		kind:       KindCluster,
		replayable: a.method == http.MethodGet,
		sensitive:  a.sensitive,
	}
	if a.body != nil {
		b, err := json.Marshal(a.body)
		if err != nil {
			return 0, err
		}
		r.body = b
		r.contentType = "application/json"
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return 0, err
	}
	for _, s := range a.ok {
		if resp.StatusCode != s {
			continue
		}
		if a.out == nil {
			return s, finishBody(resp.Body)
		}
		return s, decodeResponse(resp, s, a.out)
	}
	return 0, authError(resp, a.op, a.resource, a.name)
}

type httpAuthAPI struct {
	client Client
}

// Enable implements AuthAPI. It needs a user "root" to exist; the server
// answers 409 (ErrAuthConflict) when it does not, or when auth is already
// enabled.
func (a *httpAuthAPI) Enable(ctx context.Context) error {
	_, err := authCall{op: "enable", resource: AuthResourceAuth, method: http.MethodPut, path: "/v2/auth/enable", ok: []int{http.StatusOK}}.run(ctx, a.client)
	return err
}

// Disable implements AuthAPI. The server answers 409 (ErrAuthConflict)
// when auth is already disabled.
func (a *httpAuthAPI) Disable(ctx context.Context) error {
	_, err := authCall{op: "disable", resource: AuthResourceAuth, method: http.MethodDelete, path: "/v2/auth/enable", ok: []int{http.StatusOK}}.run(ctx, a.client)
	return err
}
