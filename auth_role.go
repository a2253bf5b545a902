package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// Role is a v2 auth role: a name and the key prefixes its holders may read
// and write. Grant and Revoke are used in update requests only.
type Role struct {
	Role        string       `json:"role"`
	Permissions Permissions  `json:"permissions"`
	Grant       *Permissions `json:"grant,omitempty"`
	Revoke      *Permissions `json:"revoke,omitempty"`
}

// Permissions holds the permissions of a role on the key-value store.
type Permissions struct {
	KV rwPermission `json:"kv"`
}

// rwPermission lists key patterns: an exact key, or a prefix ending in '*'
// ("/app/*" matches every key below /app). The server sorts them.
type rwPermission struct {
	Read  []string `json:"read"`
	Write []string `json:"write"`
}

// PermissionType says which access a grant or revoke is about.
type PermissionType int

// The permission types.
const (
	// ReadPermission is read access to keys.
	ReadPermission PermissionType = iota
	// WritePermission is write access to keys.
	WritePermission
	// ReadWritePermission is both.
	ReadWritePermission
)

// ErrInvalidPermission is matched by an ArgumentError for a grant or revoke
// without prefixes or with an unknown PermissionType.
var ErrInvalidPermission = errors.New("client: invalid permission")

// AuthRoleAPI manages v2 auth roles. Every call needs the credentials of a
// root user once auth is enabled. Errors from the server are *AuthError
// values (IsRoleNotFound for 404).
type AuthRoleAPI interface {
	// AddRole adds a role.
	AddRole(ctx context.Context, role string) error

	// RemoveRole removes a role.
	RemoveRole(ctx context.Context, role string) error

	// GetRole retrieves role details.
	GetRole(ctx context.Context, role string) (*Role, error)

	// GrantRoleKV grants a role some permission prefixes for the KV store.
	GrantRoleKV(ctx context.Context, role string, prefixes []string, permType PermissionType) (*Role, error)

	// RevokeRoleKV revokes some permission prefixes for a role on the KV store.
	RevokeRoleKV(ctx context.Context, role string, prefixes []string, permType PermissionType) (*Role, error)

	// ListRoles lists roles.
	ListRoles(ctx context.Context) ([]string, error)
}

// NewAuthRoleAPI constructs a new AuthRoleAPI that uses HTTP to interact
// with etcd's role creation and modification features.
func NewAuthRoleAPI(c Client) AuthRoleAPI {
	return &httpAuthRoleAPI{client: c}
}

type httpAuthRoleAPI struct {
	client Client
}

func rolePath(role string) string { return "/v2/auth/roles/" + role }

// AddRole implements AuthRoleAPI. An existing role gives ErrAuthConflict.
func (a *httpAuthRoleAPI) AddRole(ctx context.Context, role string) error {
	if err := checkName("auth: add role", "role", role); err != nil {
		return err
	}
	_, err := authCall{
		op: "add role", resource: AuthResourceRole, name: role,
		method: http.MethodPut, path: rolePath(role), body: &Role{Role: role},
		ok: []int{http.StatusCreated, http.StatusOK},
	}.run(ctx, a.client)
	return err
}

// RemoveRole implements AuthRoleAPI.
func (a *httpAuthRoleAPI) RemoveRole(ctx context.Context, role string) error {
	if err := checkName("auth: remove role", "role", role); err != nil {
		return err
	}
	_, err := authCall{
		op: "remove role", resource: AuthResourceRole, name: role,
		method: http.MethodDelete, path: rolePath(role),
		ok: []int{http.StatusOK, http.StatusNoContent},
	}.run(ctx, a.client)
	return err
}

// GetRole implements AuthRoleAPI.
func (a *httpAuthRoleAPI) GetRole(ctx context.Context, role string) (*Role, error) {
	if err := checkName("auth: get role", "role", role); err != nil {
		return nil, err
	}
	var out Role
	_, err := authCall{
		op: "get role", resource: AuthResourceRole, name: role,
		method: http.MethodGet, path: rolePath(role),
		ok: []int{http.StatusOK}, out: &out,
	}.run(ctx, a.client)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// GrantRoleKV implements AuthRoleAPI. It answers the role as it is after
// the grant; a prefix granted twice gives ErrAuthConflict.
func (a *httpAuthRoleAPI) GrantRoleKV(ctx context.Context, role string, prefixes []string, permType PermissionType) (*Role, error) {
	return a.modify(ctx, "grant role", role, prefixes, permType, true)
}

// RevokeRoleKV implements AuthRoleAPI. It answers the role as it is after
// the revoke; revoking what was not granted is answered 400 by the server
// ("Role not updated").
func (a *httpAuthRoleAPI) RevokeRoleKV(ctx context.Context, role string, prefixes []string, permType PermissionType) (*Role, error) {
	return a.modify(ctx, "revoke role", role, prefixes, permType, false)
}

func (a *httpAuthRoleAPI) modify(ctx context.Context, op, role string, prefixes []string, permType PermissionType, grant bool) (*Role, error) {
	if err := checkName("auth: "+op, "role", role); err != nil {
		return nil, err
	}
	if len(prefixes) == 0 {
		return nil, &ArgumentError{Op: "auth: " + op, Arg: "prefixes", Reason: "no prefix given", Err: ErrInvalidPermission}
	}
	var p Permissions
	switch permType {
	case ReadPermission:
		p.KV.Read = prefixes
	case WritePermission:
		p.KV.Write = prefixes
	case ReadWritePermission:
		p.KV.Read = prefixes
		p.KV.Write = prefixes
	default:
		return nil, &ArgumentError{Op: "auth: " + op, Arg: "permission type", Value: permTypeString(permType), Reason: "want ReadPermission, WritePermission or ReadWritePermission", Err: ErrInvalidPermission}
	}
	body := &Role{Role: role}
	if grant {
		body.Grant = &p
	} else {
		body.Revoke = &p
	}
	var out Role
	_, err := authCall{
		op: op, resource: AuthResourceRole, name: role,
		method: http.MethodPut, path: rolePath(role), body: body,
		ok: []int{http.StatusOK, http.StatusCreated}, out: &out,
	}.run(ctx, a.client)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func permTypeString(t PermissionType) string {
	b, _ := json.Marshal(int(t))
	return string(b)
}

// ListRoles implements AuthRoleAPI. It accepts the 3.x answer (role
// objects) and the 2.x one (names).
func (a *httpAuthRoleAPI) ListRoles(ctx context.Context) ([]string, error) {
	var v struct {
		Roles []roleRef `json:"roles"`
	}
	_, err := authCall{
		op: "list roles", resource: AuthResourceRole,
		method: http.MethodGet, path: "/v2/auth/roles",
		ok: []int{http.StatusOK}, out: &v,
	}.run(ctx, a.client)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(v.Roles))
	for _, r := range v.Roles {
		names = append(names, r.Role)
	}
	return names, nil
}

// roleRef is a role as some answers list it: a name, or a Role object.
type roleRef Role

// UnmarshalJSON accepts "name" and {"role": "name", ...}.
func (r *roleRef) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*r = roleRef{}
		return json.Unmarshal(b, &r.Role)
	}
	return json.Unmarshal(b, (*Role)(r))
}
