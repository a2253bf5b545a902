package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/internal/v2fake"
)

// exampleCluster starts a small in-memory v2 server for the examples and
// returns a KeysAPI on it. A real program passes its members' client URLs.
func exampleCluster() (client.KeysAPI, func()) {
	srv := v2fake.New(v2fake.Options{})
	srv.Start()
	c, err := client.New(client.Config{Endpoints: []string{srv.URL}})
	if err != nil {
		log.Fatal(err)
	}
	return client.NewKeysAPI(c), func() { c.Close(); srv.Close() }
}

func ExampleKeysAPI_Get() {
	kapi, stop := exampleCluster()
	defer stop()
	ctx := context.Background()
	kapi.Set(ctx, "/config/a", "1", nil)
	kapi.Set(ctx, "/config/b", "2", nil)

	resp, err := kapi.Get(ctx, "/config", &client.GetOptions{Recursive: true, Sort: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range resp.Node.Nodes {
		fmt.Printf("%s = %s (modified at %d)\n", n.Key, n.Value, n.ModifiedIndex)
	}

	_, err = kapi.Get(ctx, "/missing", nil)
	fmt.Println(client.IsKeyNotFound(err))
	// Output:
	// /config/a = 1 (modified at 4)
	// /config/b = 2 (modified at 5)
	// true
}

func ExampleKeysAPI_Set() {
	kapi, stop := exampleCluster()
	defer stop()
	ctx := context.Background()

	resp, err := kapi.Set(ctx, "/lock", "owner-1", &client.SetOptions{TTL: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Action, resp.Node.Value, resp.Node.TTLDuration())

	// Compare-and-swap: succeeds only if the value is still owner-1.
	resp, err = kapi.Set(ctx, "/lock", "owner-2", &client.SetOptions{PrevValue: "owner-1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Action, resp.PrevNode.Value, "->", resp.Node.Value)

	_, err = kapi.Set(ctx, "/lock", "owner-3", &client.SetOptions{PrevValue: "owner-1"})
	var e client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code == client.ErrorCodeTestFailed)
	}
	// Output:
	// set owner-1 30s
	// compareAndSwap owner-1 -> owner-2
	// true
}

func ExampleKeysAPI_Create() {
	kapi, stop := exampleCluster()
	defer stop()
	ctx := context.Background()

	resp, err := kapi.Create(ctx, "/leader", "me")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Action, resp.Node.Key, resp.Node.Value)

	_, err = kapi.Create(ctx, "/leader", "someone else")
	fmt.Println(errors.Is(err, client.Error{Code: client.ErrorCodeNodeExist}))
	// Output:
	// create /leader me
	// true
}

func ExampleKeysAPI_CreateInOrder() {
	kapi, stop := exampleCluster()
	defer stop()
	ctx := context.Background()

	for _, job := range []string{"first", "second"} {
		if _, err := kapi.CreateInOrder(ctx, "/queue", job, nil); err != nil {
			log.Fatal(err)
		}
	}
	resp, err := kapi.Get(ctx, "/queue", &client.GetOptions{Sort: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range resp.Node.Nodes {
		fmt.Println(n.Key, n.Value)
	}
	// Output:
	// /queue/00000000000000000004 first
	// /queue/00000000000000000005 second
}

func ExampleKeysAPI_Delete() {
	kapi, stop := exampleCluster()
	defer stop()
	ctx := context.Background()
	kapi.Set(ctx, "/tmp/a", "1", nil)
	kapi.Set(ctx, "/tmp/b", "2", nil)

	resp, err := kapi.Delete(ctx, "/tmp", &client.DeleteOptions{Recursive: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Action, resp.Node.Key, resp.Node.ModifiedIndex)
	// Output:
	// delete /tmp 6
}

func ExampleKeysAPI_Watcher() {
	kapi, stop := exampleCluster()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Watch everything below /jobs from the current index on.
	w := kapi.Watcher("/jobs", &client.WatcherOptions{Recursive: true, AfterIndex: 3})
	kapi.Set(ctx, "/jobs/1", "a", nil)
	kapi.Set(ctx, "/jobs/2", "b", nil)
	kapi.Delete(ctx, "/jobs/1", nil)

	n := 0
	for resp, err := range client.Events(ctx, w) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(resp.Action, resp.Node.Key, resp.Node.ModifiedIndex)
		if n++; n == 3 {
			break
		}
	}
	// Output:
	// set /jobs/1 4
	// set /jobs/2 5
	// delete /jobs/1 6
}
