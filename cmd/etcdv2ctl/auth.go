package main

import (
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"

	"github.com/etcdv2/client"
	"github.com/urfave/cli"
)

func (t *tool) authCommand() cli.Command {
	return cli.Command{
		Name:  "auth",
		Usage: "overall auth controls",
		Subcommands: []cli.Command{
			{
				Name:      "enable",
				Usage:     "enable auth access controls",
				ArgsUsage: " ",
				Description: `Enable turns authentication on; the root user must exist.

   Example:
   $ etcdv2ctl --username root:secret auth enable`,
				Action: func(c *cli.Context) error { t.authEnableDisable(c, true); return nil },
			},
			{
				Name:      "disable",
				Usage:     "disable auth access controls",
				ArgsUsage: " ",
				Description: `Example:
   $ etcdv2ctl --username root:secret auth disable`,
				Action: func(c *cli.Context) error { t.authEnableDisable(c, false); return nil },
			},
		},
	}
}

func (t *tool) authClient(c *cli.Context) client.Client {
	hc := t.mustClient(c)
	if c.GlobalBool("debug") {
		t.errorf("Cluster-Endpoints: %s\n", strings.Join(hc.Endpoints(), ", "))
	}
	return hc
}

func (t *tool) authEnableDisable(c *cli.Context, enable bool) {
	if len(c.Args()) != 0 {
		t.fail("No arguments accepted")
	}
	s := client.NewAuthAPI(t.authClient(c))
	ctx, cancel := t.totalTimeout(c)
	var err error
	if enable {
		err = s.Enable(ctx)
	} else {
		err = s.Disable(ctx)
	}
	cancel()
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	if enable {
		t.println("Authentication Enabled")
	} else {
		t.println("Authentication Disabled")
	}
}

func (t *tool) userCommand() cli.Command {
	roles := func() []cli.Flag {
		return []cli.Flag{cli.StringSliceFlag{Name: "roles", Value: new(cli.StringSlice), Usage: "List of roles to grant or revoke"}}
	}
	return cli.Command{
		Name:  "user",
		Usage: "user add, grant and revoke subcommands",
		Subcommands: []cli.Command{
			{
				Name: "add", Usage: "add a new user for the etcd cluster", ArgsUsage: "<user>",
				Description: `Add creates a user; without ":password" the password is prompted for
   (or read from standard input).

   Example:
   $ etcdv2ctl --username root:secret user add alice:wonderland`,
				Action: t.userAdd,
			},
			{
				Name: "get", Usage: "get details for a user", ArgsUsage: "<user>",
				Description: `Example:
   $ etcdv2ctl --username root:secret user get alice`,
				Action: t.userGet,
			},
			{
				Name: "list", Usage: "list all current users", ArgsUsage: "<user>",
				Description: `Example:
   $ etcdv2ctl --username root:secret user list`,
				Action: t.userList,
			},
			{
				Name: "remove", Usage: "remove a user for the etcd cluster", ArgsUsage: "<user>",
				Description: `Example:
   $ etcdv2ctl --username root:secret user remove alice`,
				Action: t.userRemove,
			},
			{
				Name: "grant", Usage: "grant roles to an etcd user", ArgsUsage: "<user>",
				Description: `Example:
   $ etcdv2ctl --username root:secret user grant --roles reader,writer alice`,
				Flags:  roles(),
				Action: func(c *cli.Context) error { t.userGrantRevoke(c, true); return nil },
			},
			{
				Name: "revoke", Usage: "revoke roles for an etcd user", ArgsUsage: "<user>",
				Description: `Example:
   $ etcdv2ctl --username root:secret user revoke --roles writer alice`,
				Flags:  roles(),
				Action: func(c *cli.Context) error { t.userGrantRevoke(c, false); return nil },
			},
			{
				Name: "passwd", Usage: "change password for a user", ArgsUsage: "<user>",
				Description: `Passwd prompts for the new password (or reads it from standard input).

   Example:
   $ echo newsecret | etcdv2ctl --username root:secret user passwd alice`,
				Action: t.userPasswd,
			},
		},
	}
}

// userAPIAndName checks for exactly one argument, then connects.
func (t *tool) userAPIAndName(c *cli.Context) (client.AuthUserAPI, string) {
	if len(c.Args()) != 1 {
		t.fail("Please provide a username")
	}
	return client.NewAuthUserAPI(t.authClient(c)), c.Args()[0]
}

func (t *tool) userList(c *cli.Context) error {
	if len(c.Args()) != 0 {
		t.fail("No arguments accepted")
	}
	u := client.NewAuthUserAPI(t.authClient(c))
	ctx, cancel := t.totalTimeout(c)
	users, err := u.ListUsers(ctx)
	cancel()
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	for _, user := range users {
		t.printf("%s\n", user)
	}
	return nil
}

func (t *tool) userAdd(c *cli.Context) error {
	api, arg := t.userAPIAndName(c)
	ctx, cancel := t.totalTimeout(c)
	defer cancel()
	user, pass, err := t.usernamePassword("New password: ", arg)
	if err != nil {
		t.fail("Error reading password:", err)
	}
	if err := api.AddUser(ctx, user, pass); err != nil {
		t.fail(t.compat(err).Error())
	}
	t.printf("User %s created\n", user)
	return nil
}

func (t *tool) userRemove(c *cli.Context) error {
	api, user := t.userAPIAndName(c)
	ctx, cancel := t.totalTimeout(c)
	err := api.RemoveUser(ctx, user)
	cancel()
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	t.printf("User %s removed\n", user)
	return nil
}

func (t *tool) userPasswd(c *cli.Context) error {
	api, user := t.userAPIAndName(c)
	ctx, cancel := t.totalTimeout(c)
	defer cancel()
	pass, err := t.askPassword("New password: ")
	if err != nil {
		t.fail("Error reading password:", err)
	}
	if _, err := api.ChangePassword(ctx, user, pass); err != nil {
		t.fail(t.compat(err).Error())
	}
	t.printf("Password updated\n")
	return nil
}

func (t *tool) userGrantRevoke(c *cli.Context, grant bool) {
	roles := c.StringSlice("roles")
	if len(roles) == 0 {
		t.fail("No roles specified; please use `--roles`")
	}
	ctx, cancel := t.totalTimeout(c)
	defer cancel()
	api, user := t.userAPIAndName(c)
	var err error
	if grant {
		_, err = api.GrantUser(ctx, user, roles)
	} else {
		_, err = api.RevokeUser(ctx, user, roles)
	}
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	t.printf("User %s updated\n", user)
}

func (t *tool) userGet(c *cli.Context) error {
	api, name := t.userAPIAndName(c)
	ctx, cancel := t.totalTimeout(c)
	user, err := api.GetUser(ctx, name)
	cancel()
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	t.printf("User: %s\n", user.User)
	t.printf("Roles: %s\n", strings.Join(user.Roles, " "))
	return nil
}

func (t *tool) roleCommand() cli.Command {
	grantFlags := []cli.Flag{
		cli.StringFlag{Name: "path", Value: "", Usage: "Path granted for the role to access"},
		cli.BoolFlag{Name: "read", Usage: "Grant read-only access"},
		cli.BoolFlag{Name: "write", Usage: "Grant write-only access"},
		cli.BoolFlag{Name: "readwrite, rw", Usage: "Grant read-write access"},
	}
	revokeFlags := []cli.Flag{
		cli.StringFlag{Name: "path", Value: "", Usage: "Path revoked for the role to access"},
		cli.BoolFlag{Name: "read", Usage: "Revoke read access"},
		cli.BoolFlag{Name: "write", Usage: "Revoke write access"},
		cli.BoolFlag{Name: "readwrite, rw", Usage: "Revoke read-write access"},
	}
	return cli.Command{
		Name:  "role",
		Usage: "role add, grant and revoke subcommands",
		Subcommands: []cli.Command{
			{
				Name: "add", Usage: "add a new role for the etcd cluster", ArgsUsage: "<role> ",
				Description: `Example:
   $ etcdv2ctl --username root:secret role add reader`,
				Action: t.roleAdd,
			},
			{
				Name: "get", Usage: "get details for a role", ArgsUsage: "<role>",
				Description: `Example:
   $ etcdv2ctl --username root:secret role get reader`,
				Action: t.roleGet,
			},
			{
				Name: "list", Usage: "list all roles", ArgsUsage: " ",
				Description: `Example:
   $ etcdv2ctl --username root:secret role list`,
				Action: t.roleList,
			},
			{
				Name: "remove", Usage: "remove a role from the etcd cluster", ArgsUsage: "<role>",
				Description: `Example:
   $ etcdv2ctl --username root:secret role remove reader`,
				Action: t.roleRemove,
			},
			{
				Name: "grant", Usage: "grant path matches to an etcd role", ArgsUsage: "<role>",
				Description: `Example:
   $ etcdv2ctl --username root:secret role grant --path '/config/*' --read reader`,
				Flags:  grantFlags,
				Action: func(c *cli.Context) error { t.roleGrantRevoke(c, true); return nil },
			},
			{
				Name: "revoke", Usage: "revoke path matches for an etcd role", ArgsUsage: "<role>",
				Description: `Example:
   $ etcdv2ctl --username root:secret role revoke --path '/config/*' --read reader`,
				Flags:  revokeFlags,
				Action: func(c *cli.Context) error { t.roleGrantRevoke(c, false); return nil },
			},
		},
	}
}

// roleAPIAndName checks for exactly one argument, then connects.
func (t *tool) roleAPIAndName(c *cli.Context) (client.AuthRoleAPI, string) {
	if len(c.Args()) != 1 {
		t.fail("Please provide a role name")
	}
	return client.NewAuthRoleAPI(t.authClient(c)), c.Args()[0]
}

func (t *tool) roleList(c *cli.Context) error {
	if len(c.Args()) != 0 {
		t.fail("No arguments accepted")
	}
	r := client.NewAuthRoleAPI(t.authClient(c))
	ctx, cancel := t.totalTimeout(c)
	roles, err := r.ListRoles(ctx)
	cancel()
	var ae *client.AuthError
	if errors.As(err, &ae) {
		// The original client reported a refused role listing by its
		// status alone.
		t.fail(fmt.Sprintf("unexpected status code %d", ae.StatusCode))
	}
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	for _, role := range roles {
		t.printf("%s\n", role)
	}
	return nil
}

func (t *tool) roleAdd(c *cli.Context) error {
	api, role := t.roleAPIAndName(c)
	ctx, cancel := t.totalTimeout(c)
	defer cancel()
	if cur, _ := api.GetRole(ctx, role); cur != nil {
		t.errorf("Role %s already exists\n", role)
		t.exit(exitError)
	}
	if err := api.AddRole(ctx, role); err != nil {
		t.fail(t.compat(err).Error())
	}
	t.printf("Role %s created\n", role)
	return nil
}

func (t *tool) roleRemove(c *cli.Context) error {
	api, role := t.roleAPIAndName(c)
	ctx, cancel := t.totalTimeout(c)
	err := api.RemoveRole(ctx, role)
	cancel()
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	t.printf("Role %s removed\n", role)
	return nil
}

// canonicalURLPath cleans p as etcd does for permission paths, keeping a
// trailing slash.
func canonicalURLPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

func (t *tool) roleGrantRevoke(c *cli.Context, grant bool) {
	p := c.String("path")
	if p == "" {
		t.fail("No path specified; please use `--path`")
	}
	if canonicalURLPath(p) != p {
		t.errorf("Not canonical path; please use `--path=%s`\n", canonicalURLPath(p))
		t.exit(exitError)
	}
	read, write, rw := c.Bool("read"), c.Bool("write"), c.Bool("readwrite")
	n := 0
	for _, v := range []bool{read, write, rw} {
		if v {
			n++
		}
	}
	if n != 1 {
		t.fail("Please specify exactly one of --read, --write or --readwrite")
	}
	var perm client.PermissionType
	switch {
	case read:
		perm = client.ReadPermission
	case write:
		perm = client.WritePermission
	case rw:
		perm = client.ReadWritePermission
	}
	api, role := t.roleAPIAndName(c)
	ctx, cancel := t.totalTimeout(c)
	defer cancel()
	cur, err := api.GetRole(ctx, role)
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	var updated *client.Role
	if grant {
		updated, err = api.GrantRoleKV(ctx, role, []string{p}, perm)
	} else {
		updated, err = api.RevokeRoleKV(ctx, role, []string{p}, perm)
	}
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	if reflect.DeepEqual(updated, cur) {
		if grant {
			t.printf("Role unchanged; already granted")
		} else {
			t.printf("Role unchanged; already revoked")
		}
	}
	t.printf("Role %s updated\n", role)
}

func (t *tool) roleGet(c *cli.Context) error {
	api, name := t.roleAPIAndName(c)
	ctx, cancel := t.totalTimeout(c)
	role, err := api.GetRole(ctx, name)
	cancel()
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	t.printf("Role: %s\n", role.Role)
	t.printf("KV Read:\n")
	for _, v := range role.Permissions.KV.Read {
		t.printf("\t%s\n", v)
	}
	t.printf("KV Write:\n")
	for _, v := range role.Permissions.KV.Write {
		t.printf("\t%s\n", v)
	}
	return nil
}
