package v3adapter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/v3adapter"
)

// A v2 program keeps its KeysAPI code; only the constructor changes. Here
// on an etcd 3.7 server, which has no v2 API.
func ExampleNewKeysAPI() {
	endpoints, stop := exampleCluster("3.7")
	defer stop()
	cli := exampleV3(endpoints)
	defer cli.Close()
	kapi := v3adapter.NewKeysAPI(cli, v3adapter.WithPrefix("/v2keys/"))
	ctx := context.Background()

	if _, err := kapi.Set(ctx, "/services/web/1", "10.0.0.1:80", &client.SetOptions{TTL: 30 * time.Second}); err != nil {
		log.Fatal(err)
	}
	if _, err := kapi.Set(ctx, "/services/web/2", "10.0.0.2:80", nil); err != nil {
		log.Fatal(err)
	}
	_, err := kapi.Create(ctx, "/services/web/1", "again")
	fmt.Println(errors.Is(err, client.Error{Code: client.ErrorCodeNodeExist}), err.(client.Error).Message)

	resp, err := kapi.Get(ctx, "/services", &client.GetOptions{Recursive: true, Sort: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range resp.Node.Nodes[0].Nodes {
		fmt.Println(n.Key, n.Value, n.TTL > 0)
	}
	// Output:
	// true Key already exists
	// /services/web/1 10.0.0.1:80 true
	// /services/web/2 10.0.0.2:80 false
}

// Watch a directory from the index of a read, as with v2; a 401 means the
// revision was compacted and the program reads again.
func ExampleNewKeysAPI_watch() {
	endpoints, stop := exampleCluster("3.7")
	defer stop()
	cli := exampleV3(endpoints)
	defer cli.Close()
	kapi := v3adapter.NewKeysAPI(cli)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	r, err := kapi.Set(ctx, "/config/a", "1", nil)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		kapi.Set(ctx, "/config/b", "2", nil)
		kapi.Delete(ctx, "/config", &client.DeleteOptions{Recursive: true})
	}()
	w := kapi.Watcher("/config", &client.WatcherOptions{AfterIndex: r.Index, Recursive: true})
	for i := 0; i < 2; i++ {
		ev, err := w.Next(ctx)
		if errors.Is(err, client.Error{Code: client.ErrorCodeEventIndexCleared}) {
			return // read again, then watch from the new index
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Action, ev.Node.Key, ev.Node.Dir)
	}
	// Output:
	// set /config/b false
	// delete /config true
}

// Copy a live v2 tree into the adapter's layout on the same cluster (etcd
// 3.5 with v2 enabled). Running it again resumes or refreshes the copy.
func ExampleMigrate() {
	endpoints, stop := exampleCluster("")
	defer stop()
	v2, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer v2.Close()
	cli := exampleV3(endpoints)
	defer cli.Close()
	ctx := context.Background()
	src := client.NewKeysAPI(v2)
	src.Set(ctx, "/coreos.com/network/config", `{"Network":"10.1.0.0/16"}`, nil)
	src.Set(ctx, "/_private/token", "s3cret", nil)
	src.CreateInOrder(ctx, "/jobs", "first", nil)

	n, err := v3adapter.Migrate(ctx, src, cli, v3adapter.MigrateOptions{
		Hidden: []string{"/_private"}, // hidden paths are not in a v2 listing
		Quiet:  200 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("copied", n, "nodes")
	kapi := v3adapter.NewKeysAPI(cli)
	r, err := kapi.Get(ctx, "/coreos.com/network/config", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Node.Value)
	r, err = kapi.Get(ctx, "/_private/token", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Node.Value)
	// Output:
	// copied 7 nodes
	// {"Network":"10.1.0.0/16"}
	// s3cret
}

// The members API keeps v2's hexadecimal member IDs.
func ExampleNewMembersAPI() {
	endpoints, stop := exampleCluster("3.6")
	defer stop()
	cli := exampleV3(endpoints)
	defer cli.Close()
	mapi := v3adapter.NewMembersAPI(cli)
	ms, err := mapi.List(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	leader, err := mapi.Leader(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(ms), ms[0].Name, leader.ID == ms[0].ID)
	// Output:
	// 1 m0 true
}
