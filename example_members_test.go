package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/etcdv2/client"
)

func ExampleMembersAPI_List() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	members, err := client.NewMembersAPI(c).List(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range members {
		fmt.Println(m.ID, m.Name, m.PeerURLs, m.ClientURLs)
	}
}

func ExampleMembersAPI_Add() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := client.NewMembersAPI(c).Add(ctx, "http://127.0.0.1:12380")
	switch {
	case errors.Is(err, client.ErrMemberExists):
		log.Fatal("a member already uses that peer URL")
	case errors.Is(err, client.ErrOutcomeUnknown):
		log.Fatal("the add may or may not have happened: list the members to find out")
	case err != nil:
		log.Fatal(err)
	}
	// Start the new member with --initial-cluster-state=existing and an
	// --initial-cluster that lists every member's name and peer URLs.
	fmt.Println("added", m.ID)
}

func ExampleMembersAPI_Leader() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379", "http://127.0.0.1:22379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := client.NewMembersAPI(c).Leader(ctx)
	if client.IsElectionInProgress(err) {
		fmt.Println("no leader right now; try again in a moment")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("leader:", m.Name, m.ClientURLs)
}

func ExampleMembersAPI_Remove() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.NewMembersAPI(c).Remove(ctx, "8e9e05c52164694d"); errors.Is(err, client.ErrMemberNotFound) {
		fmt.Println("no such member")
	} else if err != nil {
		log.Fatal(err)
	}
}

func ExampleClusterHealth() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	h, err := client.ClusterHealth(context.Background(), c, &client.HealthOptions{PerMemberTimeout: 2 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range h.Members {
		if m.Healthy {
			fmt.Printf("member %s is healthy: got healthy result from %s in %v\n", m.ID, m.Endpoint, m.Latency)
		} else {
			fmt.Printf("member %s is unhealthy: %s\n", m.ID, m.Reason)
		}
	}
	fmt.Println("leader:", h.LeaderID, "cluster healthy:", h.Healthy)
}

func ExampleAuthUserAPI_AddUser() {
	c, err := client.New(client.Config{
		Endpoints: []string{"http://127.0.0.1:2379"},
		Username:  "root",
		Password:  "root-password",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	users := client.NewAuthUserAPI(c)
	if err := users.AddUser(ctx, "alice", "alice-password"); err != nil {
		log.Fatal(err)
	}
	if _, err := users.GrantUser(ctx, "alice", []string{"app-reader"}); err != nil {
		log.Fatal(err)
	}
	u, err := users.GetUser(ctx, "bob")
	if client.IsUserNotFound(err) {
		fmt.Println("no user bob")
	} else if err == nil {
		fmt.Println(u.User, u.Roles)
	}
}

func ExampleAuthRoleAPI_GrantRoleKV() {
	c, err := client.New(client.Config{
		Endpoints: []string{"http://127.0.0.1:2379"},
		Username:  "root",
		Password:  "root-password",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	roles := client.NewAuthRoleAPI(c)
	if err := roles.AddRole(ctx, "app-reader"); err != nil && !errors.Is(err, client.ErrAuthConflict) {
		log.Fatal(err)
	}
	r, err := roles.GrantRoleKV(ctx, "app-reader", []string{"/app/*"}, client.ReadPermission)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Role, "may read", r.Permissions.KV.Read)
}

func ExampleAuthAPI_Enable() {
	c, err := client.New(client.Config{
		Endpoints: []string{"http://127.0.0.1:2379"},
		Username:  "root",
		Password:  "root-password",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Enabling needs a user named root.
	if err := client.NewAuthUserAPI(c).AddUser(ctx, "root", "root-password"); err != nil {
		log.Fatal(err)
	}
	if err := client.NewAuthAPI(c).Enable(ctx); err != nil && !errors.Is(err, client.ErrAuthConflict) {
		log.Fatal(err)
	}
}
