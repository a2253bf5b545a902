package v2fake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"reflect"
	"sort"
	"strings"
)

type rwPerm struct {
	Read  []string `json:"read"`
	Write []string `json:"write"`
}

type perms struct {
	KV rwPerm `json:"kv"`
}

type role struct {
	Role        string `json:"role"`
	Permissions perms  `json:"permissions"`
	Grant       *perms `json:"grant,omitempty"`
	Revoke      *perms `json:"revoke,omitempty"`
}

type user struct {
	User     string   `json:"user"`
	Password string   `json:"password,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	Grant    []string `json:"grant,omitempty"`
	Revoke   []string `json:"revoke,omitempty"`
}

type authState struct {
	enabled bool
	users   map[string]*user
	roles   map[string]*role
}

func newAuthState() authState {
	return authState{users: map[string]*user{}, roles: map[string]*role{}}
}

var rootRole = role{Role: "root", Permissions: perms{KV: rwPerm{Read: []string{"/*"}, Write: []string{"/*"}}}}

func (a *authState) role(name string) (*role, bool) {
	if name == "root" {
		r := rootRole
		return &r, true
	}
	r, ok := a.roles[name]
	return r, ok
}

// authErr is a v2 auth error: {"message":"auth: ..."}.
func authErr(w http.ResponseWriter, status int, format string, args ...any) {
	httpError(w, status, "auth: "+fmt.Sprintf(format, args...))
}

// basicUser is the user whose credentials r carries, or nil.
func (s *Server) basicUser(r *http.Request) *user {
	name, pass, ok := r.BasicAuth()
	if !ok {
		return nil
	}
	u := s.auth.users[name]
	if u == nil || u.Password != pass {
		return nil
	}
	return u
}

// rootAccess tells whether r may use the members and auth APIs.
func (s *Server) rootAccess(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.auth.enabled {
		return true
	}
	u := s.basicUser(r)
	if u == nil {
		return false
	}
	for _, name := range u.Roles {
		if name == "root" {
			return true
		}
	}
	return false
}

func hasAccess(list []string, key string, recursive bool) bool {
	for _, pat := range list {
		if strings.HasSuffix(pat, "*") {
			if strings.HasPrefix(key, pat[:len(pat)-1]) {
				return true
			}
		} else if !recursive && key == pat {
			return true
		}
	}
	return false
}

// writeRootAccess is rootAccess for writes; anyone may read.
func (s *Server) writeRootAccess(r *http.Request) bool {
	return r.Method == "GET" || r.Method == "HEAD" || s.rootAccess(r)
}

// keyAccess tells whether r may read or write key, as etcd's v2 auth
// decides.
func (s *Server) keyAccess(r *http.Request, key string, recursive bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.auth.enabled {
		return true
	}
	write := r.Method != "GET" && r.Method != "HEAD"
	list := func(ro *role) []string {
		if write {
			return ro.Permissions.KV.Write
		}
		return ro.Permissions.KV.Read
	}
	if r.Header.Get("Authorization") == "" {
		g, ok := s.auth.role("guest")
		return ok && hasAccess(list(g), key, false)
	}
	u := s.basicUser(r)
	if u == nil {
		return false
	}
	for _, name := range u.Roles {
		if ro, ok := s.auth.role(name); ok && hasAccess(list(ro), key, recursive) {
			return true
		}
	}
	return false
}

func (s *Server) authAPI(w http.ResponseWriter, r *http.Request) {
	sub := path.Clean(strings.TrimPrefix(r.URL.Path, "/v2/auth"))
	parts := strings.Split(sub, "/")
	switch {
	case sub == "/enable":
		s.authEnable(w, r)
	case len(parts) >= 2 && parts[1] == "users":
		s.authUsers(w, r, parts)
	case len(parts) >= 2 && parts[1] == "roles":
		s.authRoles(w, r, parts)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) authEnable(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET", "PUT", "DELETE") {
		return
	}
	if !s.writeRootAccess(r) {
		httpError(w, http.StatusUnauthorized, "Insufficient credentials")
		return
	}
	s.setClusterHeader(w)
	w.Header().Set("Content-Type", "application/json")
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &s.auth
	switch r.Method {
	case "GET":
		json.NewEncoder(w).Encode(struct {
			Enabled bool `json:"enabled"`
		}{a.enabled})
	case "PUT":
		if a.enabled {
			authErr(w, http.StatusConflict, "already enabled")
			return
		}
		if a.users["root"] == nil {
			authErr(w, http.StatusConflict, "No root user available, please create one")
			return
		}
		if _, ok := a.roles["guest"]; !ok {
			a.roles["guest"] = &role{Role: "guest", Permissions: perms{KV: rwPerm{Read: []string{"/*"}, Write: []string{"/*"}}}}
			s.store.index++
		}
		a.enabled = true
		s.store.index++
	case "DELETE":
		if !a.enabled {
			authErr(w, http.StatusConflict, "already disabled")
			return
		}
		a.enabled = false
		s.store.index++
	}
}

type userWithRoles struct {
	User  string `json:"user"`
	Roles []role `json:"roles,omitempty"`
}

func (s *Server) withRoles(u *user) userWithRoles {
	out := userWithRoles{User: u.User}
	for _, name := range u.Roles {
		if ro, ok := s.auth.role(name); ok {
			out.Roles = append(out.Roles, *ro)
		}
	}
	return out
}

// authEntry checks what /v2/auth/users and /v2/auth/roles share: the path's
// length, the method (only GET on the list) and root access, and sets the
// answer's headers. It reports false when it has answered already.
func (s *Server) authEntry(w http.ResponseWriter, r *http.Request, parts []string) bool {
	if len(parts) > 3 {
		httpError(w, http.StatusBadRequest, "Invalid path")
		return false
	}
	methods := []string{"GET", "PUT", "DELETE"}
	if len(parts) == 2 {
		methods = []string{"GET"}
	}
	if !allowMethod(w, r, methods...) {
		return false
	}
	if !s.rootAccess(r) {
		httpError(w, http.StatusUnauthorized, "Insufficient credentials")
		return false
	}
	s.setClusterHeader(w)
	w.Header().Set("Content-Type", "application/json")
	return true
}

func (s *Server) authUsers(w http.ResponseWriter, r *http.Request, parts []string) {
	if !s.authEntry(w, r, parts) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &s.auth
	if len(parts) == 2 {
		names := make([]string, 0, len(a.users))
		for n := range a.users {
			names = append(names, n)
		}
		sort.Strings(names)
		var out struct {
			Users []userWithRoles `json:"users"`
		}
		for _, n := range names {
			out.Users = append(out.Users, s.withRoles(a.users[n]))
		}
		json.NewEncoder(w).Encode(out)
		return
	}
	name := parts[2]
	switch r.Method {
	case "GET":
		u := a.users[name]
		if u == nil {
			authErr(w, http.StatusNotFound, "User %s does not exist.", name)
			return
		}
		json.NewEncoder(w).Encode(s.withRoles(u))
	case "PUT":
		var in user
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			httpError(w, http.StatusBadRequest, "Invalid JSON in request body.")
			return
		}
		if in.User != name {
			httpError(w, http.StatusBadRequest, "User JSON name does not match the name in the URL")
			return
		}
		old := a.users[name]
		var out user
		created := false
		switch {
		case len(in.Grant) == 0 && len(in.Revoke) == 0 && (len(in.Roles) != 0 || old == nil):
			if in.Password == "" {
				authErr(w, http.StatusBadRequest, "Cannot create user %s with an empty password", name)
				return
			}
			if old != nil {
				authErr(w, http.StatusConflict, "User %s already exists.", name)
				return
			}
			u := &user{User: name, Password: in.Password, Roles: in.Roles}
			if name == "root" && !contains(u.Roles, "root") {
				u.Roles = append(u.Roles, "root")
			}
			a.users[name] = u
			s.store.index++
			out, created = *u, old == nil && len(in.Roles) == 0
		case len(in.Roles) != 0:
			httpError(w, http.StatusBadRequest, "User JSON contains both roles and grant/revoke")
			return
		default:
			if old == nil {
				authErr(w, http.StatusNotFound, "User %s doesn't exist.", name)
				return
			}
			nu := *old
			nu.Roles = append([]string(nil), old.Roles...)
			// etcd stores a salted hash: a password given is always a
			// change.
			changed := in.Password != ""
			if changed {
				nu.Password = in.Password
			}
			for _, g := range in.Grant {
				if contains(nu.Roles, g) {
					authErr(w, http.StatusConflict, "Granting duplicate role %s for user %s", g, name)
					return
				}
				if _, ok := a.role(g); !ok {
					authErr(w, http.StatusNotFound, "Role %s does not exist.", g)
					return
				}
				nu.Roles = append(nu.Roles, g)
			}
			for _, rv := range in.Revoke {
				if !contains(nu.Roles, rv) {
					authErr(w, http.StatusConflict, "Revoking ungranted role %s for user %s", rv, name)
					return
				}
				nu.Roles = remove(nu.Roles, rv)
			}
			sort.Strings(nu.Roles)
			if !changed && reflect.DeepEqual(*old, nu) {
				authErr(w, http.StatusBadRequest, "User not updated. Use grant/revoke/password to update the user.")
				return
			}
			a.users[name] = &nu
			s.store.index++
			out = nu
		}
		if created {
			w.WriteHeader(http.StatusCreated)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		out.Password = ""
		json.NewEncoder(w).Encode(out)
	case "DELETE":
		if name == "root" && a.enabled {
			authErr(w, http.StatusForbidden, "Cannot delete root user while auth is enabled.")
			return
		}
		if a.users[name] == nil {
			authErr(w, http.StatusNotFound, "User %s does not exist", name)
			return
		}
		delete(a.users, name)
		s.store.index++
	}
}

func (s *Server) authRoles(w http.ResponseWriter, r *http.Request, parts []string) {
	if !s.authEntry(w, r, parts) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &s.auth
	if len(parts) == 2 {
		names := []string{"root"}
		for n := range a.roles {
			names = append(names, n)
		}
		sort.Strings(names)
		var out struct {
			Roles []role `json:"roles"`
		}
		for _, n := range names {
			ro, _ := a.role(n)
			out.Roles = append(out.Roles, *ro)
		}
		json.NewEncoder(w).Encode(out)
		return
	}
	name := parts[2]
	switch r.Method {
	case "GET":
		ro, ok := a.role(name)
		if !ok {
			authErr(w, http.StatusNotFound, "Role %s does not exist.", name)
			return
		}
		json.NewEncoder(w).Encode(ro)
	case "PUT":
		var in role
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			httpError(w, http.StatusBadRequest, "Invalid JSON in request body.")
			return
		}
		if in.Role != name {
			httpError(w, http.StatusBadRequest, "Role JSON name does not match the name in the URL")
			return
		}
		if name == "root" {
			authErr(w, http.StatusForbidden, "Cannot modify role %s: is root role.", name)
			return
		}
		old, exists := a.roles[name]
		if in.Grant == nil && in.Revoke == nil {
			if exists {
				authErr(w, http.StatusConflict, "Role %s already exists.", name)
				return
			}
			nr := &role{Role: name, Permissions: in.Permissions}
			a.roles[name] = nr
			s.store.index++
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(nr)
			return
		}
		if !exists {
			authErr(w, http.StatusNotFound, "Role %s doesn't exist.", name)
			return
		}
		nr := &role{Role: name, Permissions: perms{KV: rwPerm{
			Read: append([]string(nil), old.Permissions.KV.Read...), Write: append([]string(nil), old.Permissions.KV.Write...),
		}}}
		if g := in.Grant; g != nil {
			for _, p := range g.KV.Read {
				if contains(nr.Permissions.KV.Read, p) {
					authErr(w, http.StatusConflict, "Granting duplicate read permission %s", p)
					return
				}
				nr.Permissions.KV.Read = append(nr.Permissions.KV.Read, p)
			}
			for _, p := range g.KV.Write {
				if contains(nr.Permissions.KV.Write, p) {
					authErr(w, http.StatusConflict, "Granting duplicate write permission %s", p)
					return
				}
				nr.Permissions.KV.Write = append(nr.Permissions.KV.Write, p)
			}
		}
		if rv := in.Revoke; rv != nil {
			for _, p := range rv.KV.Read {
				nr.Permissions.KV.Read = remove(nr.Permissions.KV.Read, p)
			}
			for _, p := range rv.KV.Write {
				nr.Permissions.KV.Write = remove(nr.Permissions.KV.Write, p)
			}
		}
		a.roles[name] = nr
		s.store.index++
		w.WriteHeader(http.StatusOK)
		json.NewEncoder(w).Encode(nr)
	case "DELETE":
		if name == "root" {
			authErr(w, http.StatusForbidden, "Cannot modify role %s: is root role.", name)
			return
		}
		if _, ok := a.roles[name]; !ok {
			authErr(w, http.StatusNotFound, "Role %s doesn't exist.", name)
			return
		}
		delete(a.roles, name)
		s.store.index++
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func remove(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
