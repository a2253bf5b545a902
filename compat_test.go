package client_test

// This file is the API compatibility check: it names every exported
// identifier of the original v2 client with its exact type or signature, so
// that the build fails if one is missing or differs. Code written against
// the original package compiles against this one after the import path is
// changed; these assignments are what such code relies on.

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/etcdv2/client"
)

// Constants.
var (
	_ int = client.ErrorCodeKeyNotFound
	_ int = client.ErrorCodeTestFailed
	_ int = client.ErrorCodeNotFile
	_ int = client.ErrorCodeNotDir
	_ int = client.ErrorCodeNodeExist
	_ int = client.ErrorCodeRootROnly
	_ int = client.ErrorCodeDirNotEmpty
	_ int = client.ErrorCodeUnauthorized
	_ int = client.ErrorCodePrevValueRequired
	_ int = client.ErrorCodeTTLNaN
	_ int = client.ErrorCodeIndexNaN
	_ int = client.ErrorCodeInvalidField
	_ int = client.ErrorCodeInvalidForm
	_ int = client.ErrorCodeRaftInternal
	_ int = client.ErrorCodeLeaderElect
	_ int = client.ErrorCodeWatcherCleared
	_ int = client.ErrorCodeEventIndexCleared

	_ client.PrevExistType = client.PrevIgnore
	_ client.PrevExistType = client.PrevExist
	_ client.PrevExistType = client.PrevNoExist

	_ client.EndpointSelectionMode = client.EndpointSelectionRandom
	_ client.EndpointSelectionMode = client.EndpointSelectionPrioritizeLeader

	_ client.PermissionType = client.ReadPermission
	_ client.PermissionType = client.WritePermission
	_ client.PermissionType = client.ReadWritePermission
)

// Variables.
var (
	_ error = client.ErrNoEndpoints
	_ error = client.ErrTooManyRedirects
	_ error = client.ErrClusterUnavailable
	_ error = client.ErrNoLeaderEndpoint
	_ error = client.ErrInvalidJSON
	_ error = client.ErrEmptyBody

	_ *time.Duration                             = &client.DefaultRequestTimeout
	_ *client.CancelableTransport                = &client.DefaultTransport
	_ *client.CheckRedirectFunc                  = &client.DefaultCheckRedirect
	_ client.CancelableTransport                 = &http.Transport{}
	_ func(via int) error                        = client.CheckRedirectFunc(nil)
	_ func()                                     = client.EnablecURLDebug
	_ func()                                     = client.DisablecURLDebug
	_ func(err error) bool                       = client.IsKeyNotFound
	_ func(err error) bool                       = client.IsRoleNotFound
	_ func(err error) bool                       = client.IsUserNotFound
	_ func(client.Config) (client.Client, error) = client.New
	_ func(client.Client) client.KeysAPI         = client.NewKeysAPI
	_ func(client.Client, string) client.KeysAPI = client.NewKeysAPIWithPrefix
	_ func(client.Client) client.MembersAPI      = client.NewMembersAPI
	_ func(client.Client) client.AuthAPI         = client.NewAuthAPI
	_ func(client.Client) client.AuthUserAPI     = client.NewAuthUserAPI
	_ func(client.Client) client.AuthRoleAPI     = client.NewAuthRoleAPI
	_ func() client.Discoverer                   = client.NewSRVDiscover
)

// Struct types with every field the original had, of the same type.
var (
	_ = client.Config{
		Endpoints:               []string{},
		Transport:               client.CancelableTransport(nil),
		CheckRedirect:           client.CheckRedirectFunc(nil),
		Username:                "",
		Password:                "",
		HeaderTimeoutPerRequest: time.Duration(0),
		SelectionMode:           client.EndpointSelectionMode(0),
	}
	_              = client.ClusterError{Errors: []error{}}
	_              = client.Error{Code: 0, Message: "", Cause: "", Index: uint64(0)}
	_              = client.GetOptions{Recursive: false, Sort: false, Quorum: false}
	_              = client.SetOptions{PrevValue: "", PrevIndex: uint64(0), PrevExist: client.PrevExistType(""), TTL: time.Duration(0), Refresh: false, Dir: false, NoValueOnSuccess: false}
	_              = client.DeleteOptions{PrevValue: "", PrevIndex: uint64(0), Recursive: false, Dir: false}
	_              = client.CreateInOrderOptions{TTL: time.Duration(0)}
	_              = client.WatcherOptions{AfterIndex: uint64(0), Recursive: false}
	_              = client.Response{Action: "", Node: (*client.Node)(nil), PrevNode: (*client.Node)(nil), Index: uint64(0), ClusterID: ""}
	_              = client.Node{Key: "", Dir: false, Value: "", Nodes: client.Nodes(nil), CreatedIndex: uint64(0), ModifiedIndex: uint64(0), Expiration: (*time.Time)(nil), TTL: int64(0)}
	_ client.Nodes = []*client.Node{}
	_              = client.Member{ID: "", Name: "", PeerURLs: []string{}, ClientURLs: []string{}}
	_              = client.User{User: "", Password: "", Roles: []string{}, Grant: []string{}, Revoke: []string{}}
	_              = client.Role{Role: "", Permissions: client.Permissions{}, Grant: (*client.Permissions)(nil), Revoke: (*client.Permissions)(nil)}
	_              = client.UserRoles{User: "", Roles: []client.Role{}}
	_              = client.Permissions{}.KV.Read
	_              = client.Permissions{}.KV.Write
	_ []string     = client.Permissions{}.KV.Read
)

// Methods of the concrete types.
var (
	_ func(*client.ClusterError) string = (*client.ClusterError).Detail
	_ func(*client.ClusterError) string = (*client.ClusterError).Error
	_ func(client.Error) string         = client.Error.Error
	_ func(*client.Node) string         = (*client.Node).String
	_ func(*client.Node) time.Duration  = (*client.Node).TTLDuration
	_ sort.Interface                    = client.Nodes(nil)
	_ func(client.Nodes) int            = client.Nodes.Len
	_ func(client.Nodes, int, int) bool = client.Nodes.Less
	_ func(client.Nodes, int, int)      = client.Nodes.Swap
	_ error                             = client.Error{}
	_ error                             = &client.ClusterError{}
)

// Interfaces, method by method.
var (
	_ func(client.Client, context.Context) error                = client.Client.Sync
	_ func(client.Client, context.Context, time.Duration) error = client.Client.AutoSync
	_ func(client.Client) []string                              = client.Client.Endpoints
	_ func(client.Client, []string) error                       = client.Client.SetEndpoints

	_ func(client.KeysAPI, context.Context, string, *client.GetOptions) (*client.Response, error)                   = client.KeysAPI.Get
	_ func(client.KeysAPI, context.Context, string, string, *client.SetOptions) (*client.Response, error)           = client.KeysAPI.Set
	_ func(client.KeysAPI, context.Context, string, *client.DeleteOptions) (*client.Response, error)                = client.KeysAPI.Delete
	_ func(client.KeysAPI, context.Context, string, string) (*client.Response, error)                               = client.KeysAPI.Create
	_ func(client.KeysAPI, context.Context, string, string, *client.CreateInOrderOptions) (*client.Response, error) = client.KeysAPI.CreateInOrder
	_ func(client.KeysAPI, context.Context, string, string) (*client.Response, error)                               = client.KeysAPI.Update
	_ func(client.KeysAPI, string, *client.WatcherOptions) client.Watcher                                           = client.KeysAPI.Watcher
	_ func(client.Watcher, context.Context) (*client.Response, error)                                               = client.Watcher.Next

	_ func(client.MembersAPI, context.Context) ([]client.Member, error)        = client.MembersAPI.List
	_ func(client.MembersAPI, context.Context, string) (*client.Member, error) = client.MembersAPI.Add
	_ func(client.MembersAPI, context.Context, string) error                   = client.MembersAPI.Remove
	_ func(client.MembersAPI, context.Context, string, []string) error         = client.MembersAPI.Update
	_ func(client.MembersAPI, context.Context) (*client.Member, error)         = client.MembersAPI.Leader

	_ func(client.AuthAPI, context.Context) error = client.AuthAPI.Enable
	_ func(client.AuthAPI, context.Context) error = client.AuthAPI.Disable

	_ func(client.AuthUserAPI, context.Context, string, string) error                   = client.AuthUserAPI.AddUser
	_ func(client.AuthUserAPI, context.Context, string) error                           = client.AuthUserAPI.RemoveUser
	_ func(client.AuthUserAPI, context.Context, string) (*client.User, error)           = client.AuthUserAPI.GetUser
	_ func(client.AuthUserAPI, context.Context, string, []string) (*client.User, error) = client.AuthUserAPI.GrantUser
	_ func(client.AuthUserAPI, context.Context, string, []string) (*client.User, error) = client.AuthUserAPI.RevokeUser
	_ func(client.AuthUserAPI, context.Context, string, string) (*client.User, error)   = client.AuthUserAPI.ChangePassword
	_ func(client.AuthUserAPI, context.Context) ([]string, error)                       = client.AuthUserAPI.ListUsers

	_ func(client.AuthRoleAPI, context.Context, string) error                                                  = client.AuthRoleAPI.AddRole
	_ func(client.AuthRoleAPI, context.Context, string) error                                                  = client.AuthRoleAPI.RemoveRole
	_ func(client.AuthRoleAPI, context.Context, string) (*client.Role, error)                                  = client.AuthRoleAPI.GetRole
	_ func(client.AuthRoleAPI, context.Context, string, []string, client.PermissionType) (*client.Role, error) = client.AuthRoleAPI.GrantRoleKV
	_ func(client.AuthRoleAPI, context.Context, string, []string, client.PermissionType) (*client.Role, error) = client.AuthRoleAPI.RevokeRoleKV
	_ func(client.AuthRoleAPI, context.Context) ([]string, error)                                              = client.AuthRoleAPI.ListRoles

	_ func(client.Discoverer, string) ([]string, error) = client.Discoverer.Discover
)

// The interfaces users implement in their own test doubles must not grow:
// a type with exactly the original methods still satisfies each of them.
type (
	keysDouble     struct{}
	watcherDouble  struct{}
	membersDouble  struct{}
	authDouble     struct{}
	userDouble     struct{}
	roleDouble     struct{}
	discoverDouble struct{}
)

func (keysDouble) Get(context.Context, string, *client.GetOptions) (*client.Response, error) {
	return nil, nil
}
func (keysDouble) Set(context.Context, string, string, *client.SetOptions) (*client.Response, error) {
	return nil, nil
}
func (keysDouble) Delete(context.Context, string, *client.DeleteOptions) (*client.Response, error) {
	return nil, nil
}
func (keysDouble) Create(context.Context, string, string) (*client.Response, error) { return nil, nil }
func (keysDouble) CreateInOrder(context.Context, string, string, *client.CreateInOrderOptions) (*client.Response, error) {
	return nil, nil
}
func (keysDouble) Update(context.Context, string, string) (*client.Response, error) { return nil, nil }
func (keysDouble) Watcher(string, *client.WatcherOptions) client.Watcher            { return watcherDouble{} }
func (watcherDouble) Next(context.Context) (*client.Response, error)                { return nil, nil }

func (membersDouble) List(context.Context) ([]client.Member, error)       { return nil, nil }
func (membersDouble) Add(context.Context, string) (*client.Member, error) { return nil, nil }
func (membersDouble) Remove(context.Context, string) error                { return nil }
func (membersDouble) Update(context.Context, string, []string) error      { return nil }
func (membersDouble) Leader(context.Context) (*client.Member, error)      { return nil, nil }
func (authDouble) Enable(context.Context) error                           { return nil }
func (authDouble) Disable(context.Context) error                          { return nil }
func (userDouble) AddUser(context.Context, string, string) error          { return nil }
func (userDouble) RemoveUser(context.Context, string) error               { return nil }
func (userDouble) GetUser(context.Context, string) (*client.User, error)  { return nil, nil }
func (userDouble) GrantUser(context.Context, string, []string) (*client.User, error) {
	return nil, nil
}
func (userDouble) RevokeUser(context.Context, string, []string) (*client.User, error) {
	return nil, nil
}
func (userDouble) ChangePassword(context.Context, string, string) (*client.User, error) {
	return nil, nil
}
func (userDouble) ListUsers(context.Context) ([]string, error)           { return nil, nil }
func (roleDouble) AddRole(context.Context, string) error                 { return nil }
func (roleDouble) RemoveRole(context.Context, string) error              { return nil }
func (roleDouble) GetRole(context.Context, string) (*client.Role, error) { return nil, nil }
func (roleDouble) GrantRoleKV(context.Context, string, []string, client.PermissionType) (*client.Role, error) {
	return nil, nil
}
func (roleDouble) RevokeRoleKV(context.Context, string, []string, client.PermissionType) (*client.Role, error) {
	return nil, nil
}
func (roleDouble) ListRoles(context.Context) ([]string, error) { return nil, nil }
func (discoverDouble) Discover(string) ([]string, error)       { return nil, nil }

var (
	_ client.KeysAPI     = keysDouble{}
	_ client.Watcher     = watcherDouble{}
	_ client.MembersAPI  = membersDouble{}
	_ client.AuthAPI     = authDouble{}
	_ client.AuthUserAPI = userDouble{}
	_ client.AuthRoleAPI = roleDouble{}
	_ client.Discoverer  = discoverDouble{}
)

// Code of the original README: errors compared with ==, ClusterError by
// type assertion, Error by type assertion.
func handleErrorsTheOldWay(kapi client.KeysAPI, ctx context.Context) string {
	_, err := kapi.Set(ctx, "test", "bar", nil)
	if err != nil {
		if err == context.Canceled {
			return "canceled"
		} else if err == context.DeadlineExceeded {
			return "deadline"
		} else if cerr, ok := err.(*client.ClusterError); ok {
			return cerr.Detail()
		} else if eerr, ok := err.(client.Error); ok {
			return eerr.Message
		}
		return errors.Unwrap(err).Error()
	}
	return ""
}

var _ = handleErrorsTheOldWay
